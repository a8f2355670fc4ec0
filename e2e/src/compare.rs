//! Snapshots of whole accounts and a comparer that says in plain words what differs.
//!
//! A migration is right when every message of every selectable source folder is on the
//! target with the same bytes, flags and INTERNALDATE, exactly as often as on the source.
//! Message identity is (SHA-256 of the bytes, INTERNALDATE as an instant): Message-ID is not
//! used, since some messages have none and duplicates share it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};

use crate::imap_client::{connect, decode_mutf7, Account};

/// One message as seen on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub uid: u32,
    /// Hex SHA-256 of the exact bytes of `BODY[]`.
    pub sha256: String,
    pub size: usize,
    /// Flags and keywords, without `\Recent`.
    pub flags: BTreeSet<String>,
    /// INTERNALDATE as the server sent it.
    pub internal_date: String,
    /// INTERNALDATE as seconds since 1970 UTC (servers may change the zone shown).
    pub internal_date_utc: i64,
    /// Subject header (raw, unfolded) for reports; empty if none.
    pub subject: String,
    /// Message-ID header, if any.
    pub message_id: Option<String>,
}

/// One selectable folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSnapshot {
    /// Name as sent by the server.
    pub server_name: String,
    /// LIST attributes.
    pub attributes: Vec<String>,
    pub messages: Vec<MessageInfo>,
}

/// Everything in an account, keyed by normalised folder name: decoded from modified UTF-7,
/// personal namespace prefix removed, separator replaced by `/` (`INBOX` stays `INBOX`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub folders: BTreeMap<String, FolderSnapshot>,
    /// Normalised names of `\Noselect` / `\NonExistent` folders (parents only).
    pub noselect: Vec<String>,
}

/// Source folder name -> target folder name, for folders that change name in a migration
/// (e.g. `Sent Items` -> `Sent`). Names not in the map are expected under the same name.
#[derive(Debug, Clone, Default)]
pub struct FolderMap(pub BTreeMap<String, String>);

impl FolderMap {
    /// The identity map.
    pub fn identity() -> FolderMap {
        FolderMap::default()
    }

    /// A map from `(source, target)` pairs, e.g. the folders a migration job reports
    /// (names with `/` between levels).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> FolderMap {
        pairs
            .into_iter()
            .fold(FolderMap::identity(), |map, (source, target)| {
                map.with(source, target)
            })
    }

    /// Adds `source -> target`.
    pub fn with(mut self, source: &str, target: &str) -> FolderMap {
        self.0.insert(source.to_string(), target.to_string());
        self
    }

    fn target_of<'a>(&'a self, source: &'a str) -> &'a str {
        self.0.get(source).map(String::as_str).unwrap_or(source)
    }
}

/// One difference between source and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    FolderMissing {
        folder: String,
        target_folder: String,
    },
    MessageMissing {
        folder: String,
        subject: String,
        size: usize,
        internal_date: String,
    },
    /// The target holds the message more often than the source.
    MessageDuplicated {
        folder: String,
        subject: String,
        source_copies: usize,
        target_copies: usize,
    },
    /// On the target only.
    MessageUnexpected {
        folder: String,
        subject: String,
        size: usize,
    },
    FlagsDiffer {
        folder: String,
        subject: String,
        source_uid: u32,
        target_uid: u32,
        missing_on_target: Vec<String>,
        extra_on_target: Vec<String>,
    },
    InternalDateDiffers {
        folder: String,
        subject: String,
        source: String,
        target: String,
    },
    /// A `\Noselect` parent on the source became a real (selectable) folder on the target.
    NoselectBecameFolder { folder: String },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::FolderMissing {
                folder,
                target_folder,
            } => write!(f, "folder {folder:?} is missing on the target (expected as {target_folder:?})"),
            Difference::MessageMissing {
                folder,
                subject,
                size,
                internal_date,
            } => write!(
                f,
                "in {folder:?}: message {subject:?} ({size} bytes, {internal_date}) is missing on the target"
            ),
            Difference::MessageDuplicated {
                folder,
                subject,
                source_copies,
                target_copies,
            } => write!(
                f,
                "in {folder:?}: message {subject:?} is on the target {target_copies} times but {source_copies} times on the source"
            ),
            Difference::MessageUnexpected {
                folder,
                subject,
                size,
            } => write!(
                f,
                "in {folder:?}: message {subject:?} ({size} bytes) is on the target but not on the source"
            ),
            Difference::FlagsDiffer {
                folder,
                subject,
                source_uid,
                target_uid,
                missing_on_target,
                extra_on_target,
            } => write!(
                f,
                "in {folder:?}: flags of {subject:?} (source UID {source_uid}, target UID {target_uid}) differ: missing on target {missing_on_target:?}, extra on target {extra_on_target:?}"
            ),
            Difference::InternalDateDiffers {
                folder,
                subject,
                source,
                target,
            } => write!(
                f,
                "in {folder:?}: INTERNALDATE of {subject:?} differs: source {source}, target {target}"
            ),
            Difference::NoselectBecameFolder { folder } => write!(
                f,
                "{folder:?} is only a \\Noselect parent on the source but a real folder on the target"
            ),
        }
    }
}

/// Reads every selectable folder of `account` (EXAMINE + `UID FETCH 1:* (UID FLAGS
/// INTERNALDATE BODY.PEEK[])`, so nothing changes on the server, tagged replies checked).
pub async fn snapshot(account: &Account) -> Result<Snapshot> {
    let mut conn = connect(account).await?;
    let (prefix, _) = conn.personal_namespace().await?;
    let list = conn.list().await?;
    let mut snap = Snapshot::default();
    for entry in list {
        let decoded = decode_mutf7(&entry.name)?;
        let stripped = if !prefix.is_empty() && decoded.starts_with(&prefix) {
            &decoded[prefix.len()..]
        } else {
            &decoded
        };
        let name = match entry.delimiter {
            Some(d) if d != '/' => stripped.replace(d, "/"),
            _ => stripped.to_string(),
        };
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else {
            name
        };
        if entry.has("\\Noselect") || entry.has("\\NonExistent") {
            snap.noselect.push(name);
            continue;
        }
        conn.examine(&entry.name).await?;
        let fetched = conn
            .fetch_all()
            .await
            .with_context(|| format!("reading {}", entry.name))?;
        let mut messages = Vec::with_capacity(fetched.len());
        for m in fetched {
            let internal_date_utc = parse_internal_date(&m.internal_date)?;
            let (subject, message_id) = header_fields(&m.body);
            messages.push(MessageInfo {
                uid: m.uid,
                sha256: hex::encode(Sha256::digest(&m.body)),
                size: m.body.len(),
                flags: m
                    .flags
                    .into_iter()
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .collect(),
                internal_date: m.internal_date,
                internal_date_utc,
                subject,
                message_id,
            });
        }
        snap.folders.insert(
            name,
            FolderSnapshot {
                server_name: entry.name,
                attributes: entry.attributes,
                messages,
            },
        );
    }
    conn.logout().await;
    Ok(snap)
}

/// Subject and Message-ID from the header (unfolded, raw bytes lossily decoded).
fn header_fields(body: &[u8]) -> (String, Option<String>) {
    let end = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| body.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(body.len());
    let header = String::from_utf8_lossy(&body[..end]);
    let mut fields: Vec<String> = Vec::new();
    for line in header.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            fields.push(line.to_string());
        }
    }
    let get = |name: &str| {
        fields.iter().find_map(|f| {
            let (k, v) = f.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    (get("Subject").unwrap_or_default(), get("Message-ID"))
}

/// `dd-Mon-yyyy hh:mm:ss +zzzz` to seconds since 1970 UTC.
pub fn parse_internal_date(s: &str) -> Result<i64> {
    let bad = || anyhow!("bad INTERNALDATE {s:?}");
    let s = s.trim();
    let (date, rest) = s.split_once(' ').ok_or_else(bad)?;
    let (time, zone) = rest.trim().split_once(' ').ok_or_else(bad)?;
    let mut dp = date.split('-');
    let day: i64 = dp
        .next()
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let mon = dp.next().ok_or_else(bad)?;
    let year: i64 = dp.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(mon))
    .ok_or_else(bad)? as i64
        + 1;
    let mut tp = time.split(':').map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (h, mi, se) = (
        tp.next().ok_or_else(bad)??,
        tp.next().ok_or_else(bad)??,
        tp.next().ok_or_else(bad)??,
    );
    let sign = match zone.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(bad()),
    };
    let z: i64 = zone[1..].parse().map_err(|_| bad())?;
    let offset = sign * ((z / 100) * 60 + z % 100) * 60;
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

type Key = (String, i64);

/// Compares `source` with `target` folder by folder (through `map`) and lists every
/// difference. Folders only on the target are not reported (targets have their own).
pub fn compare(source: &Snapshot, target: &Snapshot, map: &FolderMap) -> Vec<Difference> {
    let mut out = Vec::new();
    // Several source folders may land in one target folder (e.g. `Sent` and
    // `Gesendete Objekte` both in the target's Sent): compare their union with it.
    let mut by_target: BTreeMap<&str, (Vec<&str>, Vec<MessageInfo>)> = BTreeMap::new();
    for (name, src) in &source.folders {
        let entry = by_target.entry(map.target_of(name)).or_default();
        entry.0.push(name);
        entry.1.extend(src.messages.iter().cloned());
    }
    for (tname, (names, messages)) in by_target {
        let label = names.join(" + ");
        let Some(tgt) = target.folders.get(tname) else {
            for name in names {
                out.push(Difference::FolderMissing {
                    folder: name.to_string(),
                    target_folder: tname.to_string(),
                });
            }
            continue;
        };
        compare_folder(&label, &messages, &tgt.messages, &mut out);
    }
    for name in &source.noselect {
        let tname = map.target_of(name);
        if target.folders.contains_key(tname) && !source.folders.contains_key(name) {
            out.push(Difference::NoselectBecameFolder {
                folder: name.clone(),
            });
        }
    }
    out
}

fn group(messages: &[MessageInfo]) -> BTreeMap<String, Vec<&MessageInfo>> {
    let mut g: BTreeMap<String, Vec<&MessageInfo>> = BTreeMap::new();
    for m in messages {
        g.entry(m.sha256.clone()).or_default().push(m);
    }
    for v in g.values_mut() {
        v.sort_by(|a, b| {
            (a.internal_date_utc, &a.flags, a.uid).cmp(&(b.internal_date_utc, &b.flags, b.uid))
        });
    }
    g
}

fn compare_folder(
    folder: &str,
    src: &[MessageInfo],
    tgt: &[MessageInfo],
    out: &mut Vec<Difference>,
) {
    let sg = group(src);
    let mut tg = group(tgt);
    for (hash, s_list) in &sg {
        let t_list = tg.remove(hash).unwrap_or_default();
        let (s_count, t_count) = (s_list.len(), t_list.len());
        // Pair exact identities (hash, date) first, then same bytes with another date.
        let mut t_left: Vec<Option<&MessageInfo>> = t_list.iter().copied().map(Some).collect();
        let mut s_unpaired = Vec::new();
        let mut pairs = Vec::new();
        for s in s_list {
            let key: Key = (s.sha256.clone(), s.internal_date_utc);
            let found = t_left
                .iter_mut()
                .find(|t| t.is_some_and(|t| (t.sha256.clone(), t.internal_date_utc) == key));
            match found.and_then(Option::take) {
                Some(t) => pairs.push((*s, t)),
                None => s_unpaired.push(*s),
            }
        }
        let mut t_rest: Vec<&MessageInfo> = t_left.into_iter().flatten().collect();
        for s in s_unpaired {
            if t_rest.is_empty() {
                out.push(Difference::MessageMissing {
                    folder: folder.to_string(),
                    subject: s.subject.clone(),
                    size: s.size,
                    internal_date: s.internal_date.clone(),
                });
            } else {
                let t = t_rest.remove(0);
                out.push(Difference::InternalDateDiffers {
                    folder: folder.to_string(),
                    subject: s.subject.clone(),
                    source: s.internal_date.clone(),
                    target: t.internal_date.clone(),
                });
                pairs.push((s, t));
            }
        }
        if !t_rest.is_empty() {
            out.push(Difference::MessageDuplicated {
                folder: folder.to_string(),
                subject: t_rest[0].subject.clone(),
                source_copies: s_count,
                target_copies: t_count,
            });
        }
        for (s, t) in pairs {
            if s.flags != t.flags {
                out.push(Difference::FlagsDiffer {
                    folder: folder.to_string(),
                    subject: s.subject.clone(),
                    source_uid: s.uid,
                    target_uid: t.uid,
                    missing_on_target: s.flags.difference(&t.flags).cloned().collect(),
                    extra_on_target: t.flags.difference(&s.flags).cloned().collect(),
                });
            }
        }
    }
    for t_list in tg.values() {
        for t in t_list {
            out.push(Difference::MessageUnexpected {
                folder: folder.to_string(),
                subject: t.subject.clone(),
                size: t.size,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_dates_become_instants() {
        assert_eq!(
            parse_internal_date("01-Jan-1970 01:00:00 +0100").unwrap(),
            0
        );
        assert_eq!(
            parse_internal_date(" 5-Mar-2019 10:00:00 +0100").unwrap(),
            1_551_776_400
        );
        assert_eq!(
            parse_internal_date("05-Mar-2019 04:00:00 -0500").unwrap(),
            1_551_776_400
        );
    }
}
