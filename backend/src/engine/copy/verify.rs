//! Reading back what the target holds after APPEND: one `UID FETCH <uids> (FLAGS
//! RFC822.SIZE)` per appended batch. Flags the target dropped are given again with
//! `UID STORE +FLAGS` (system flags always; keywords only where PERMANENTFLAGS names them
//! or `\*`); what it still lacks, and a message stored with another size than was sent
//! (or, for a header with raw 8-bit bytes, another header), is an alteration for the
//! report. The UID map then records the flags the target holds.

use crate::engine::error::Result;
use crate::engine::events::with_commas;
use crate::engine::imap::conn::Conn;
use crate::engine::imap::wire::{uid_set, CommandBuilder, Status};
use std::collections::{BTreeMap, HashMap};

/// One message the target took, as it was sent.
pub struct Appended<'a> {
    pub source_uid: u32,
    pub target_uid: u32,
    pub flags: &'a [String],
    pub bytes: &'a [u8],
}

/// What the target holds of one appended message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub source_uid: u32,
    /// The flags it holds (without `\Recent`).
    pub flags: Vec<String>,
    /// How it differs from what was sent, in words for the report (empty: exact).
    pub altered: Vec<String>,
}

const SYSTEM_FLAGS: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

fn is_system(flag: &str) -> bool {
    SYSTEM_FLAGS.iter().any(|s| s.eq_ignore_ascii_case(flag))
}

/// A flag the engine may give again with STORE: a standard system flag, or a keyword the
/// target's PERMANENTFLAGS names (itself, or `\*`).
pub fn may_store(flag: &str, permanent: Option<&[String]>) -> bool {
    if is_system(flag) {
        return true;
    }
    let perm = permanent.unwrap_or(&[]);
    !flag.starts_with('\\')
        && perm
            .iter()
            .any(|p| p == "\\*" || p.eq_ignore_ascii_case(flag))
}

fn lacks<'f>(sent: &'f [String], held: &[String]) -> Vec<&'f String> {
    sent.iter()
        .filter(|f| !held.iter().any(|h| h.eq_ignore_ascii_case(f)))
        .collect()
}

/// The header of a message (up to and with the blank line), if it holds raw 8-bit bytes:
/// a server may rewrite those (Cyrus' munge8bit) without changing the size.
fn eight_bit_header(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| bytes.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(bytes.len());
    let header = &bytes[..end];
    header.iter().any(|b| *b >= 0x80).then_some(header)
}

/// Reads back `appended` (all in the selected target folder), gives dropped flags again
/// and says what each message holds. A read-back the server refuses or a connection
/// lost meanwhile leaves the messages as sent (they are stored either way): `None`.
pub async fn read_back(
    dst: &mut Conn,
    permanent: Option<&[String]>,
    appended: &[Appended<'_>],
) -> Result<Option<Vec<Held>>> {
    if appended.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let uids: Vec<u32> = appended.iter().map(|a| a.target_uid).collect();
    let Some(mut first) = fetch(dst, &uids, "UID FLAGS RFC822.SIZE").await? else {
        return Ok(None);
    };
    let unseen: Vec<u32> = uids
        .iter()
        .copied()
        .filter(|u| !first.contains_key(u))
        .collect();
    if !unseen.is_empty() {
        // Not in this session's view yet (Courier shows appended messages only after a
        // NOOP): bring them in, then ask once more.
        let session = dst.session().await?;
        if let Err(e) = session.run(CommandBuilder::new("NOOP").build()).await {
            dst.note_error(&e);
            return if e.is_connection_failure() {
                Ok(None)
            } else {
                Err(e)
            };
        }
        match fetch(dst, &unseen, "UID FLAGS RFC822.SIZE").await? {
            Some(more) => first.extend(more),
            None => return Ok(None),
        }
    }
    // Dropped flags that may be given again, grouped by the set to give.
    let mut to_store: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
    for a in appended {
        let Some((held, _, _)) = first.get(&a.target_uid) else {
            continue;
        };
        let fix: Vec<String> = lacks(a.flags, held)
            .into_iter()
            .filter(|f| may_store(f, permanent))
            .cloned()
            .collect();
        if !fix.is_empty() {
            to_store.entry(fix).or_default().push(a.target_uid);
        }
    }
    let mut after = first.clone();
    if !to_store.is_empty() {
        let mut touched = Vec::new();
        for (flags, uids) in &to_store {
            tracing::info!(
                messages = uids.len(),
                flags = flags.join(" "),
                "the target dropped flags given at APPEND; storing them again"
            );
            let session = dst.session().await?;
            match session.uid_store(&uid_set(uids), "+FLAGS", flags).await {
                Ok(done) if done.status == Status::Ok => touched.extend(uids),
                Ok(done) => {
                    tracing::warn!(words = %done.words(), "the target refused to store dropped flags")
                }
                Err(e) => {
                    dst.note_error(&e);
                    return Ok(None);
                }
            }
        }
        if !touched.is_empty() {
            match fetch(dst, &touched, "UID FLAGS").await? {
                Some(again) => {
                    for (uid, (flags, _, _)) in again {
                        if let Some(entry) = after.get_mut(&uid) {
                            entry.0 = flags;
                        }
                    }
                }
                None => return Ok(None),
            }
        }
    }
    // Headers with raw 8-bit bytes and the size sent: compare the header itself.
    let suspect: Vec<u32> = appended
        .iter()
        .filter(|a| {
            eight_bit_header(a.bytes).is_some()
                && after.get(&a.target_uid).and_then(|e| e.1) == Some(a.bytes.len() as u64)
        })
        .map(|a| a.target_uid)
        .collect();
    let headers = if suspect.is_empty() {
        HashMap::new()
    } else {
        match fetch(dst, &suspect, "UID BODY.PEEK[HEADER]").await? {
            Some(h) => h,
            None => return Ok(None),
        }
    };

    let mut out = Vec::new();
    for a in appended {
        let Some((flags, size, _)) = after.get(&a.target_uid) else {
            tracing::warn!(
                uid = a.target_uid,
                "the target did not describe an appended message"
            );
            continue;
        };
        let mut altered = Vec::new();
        let sent = a.bytes.len() as u64;
        match size {
            Some(size) if *size != sent => altered.push(format!(
                "the target stored {} bytes of {} sent: it changed the message",
                with_commas(*size),
                with_commas(sent)
            )),
            _ => {}
        }
        if let (Some(ours), Some((_, _, Some(theirs)))) =
            (eight_bit_header(a.bytes), headers.get(&a.target_uid))
        {
            if ours != theirs.as_slice() {
                altered.push(
                    "the target rewrote the header's raw 8-bit bytes: it changed the message"
                        .to_owned(),
                );
            }
        }
        for f in lacks(a.flags, flags) {
            let what = if f.starts_with('\\') {
                "flag"
            } else {
                "keyword"
            };
            altered.push(format!("{what} {f} not kept by the target"));
        }
        out.push(Held {
            source_uid: a.source_uid,
            flags: flags
                .iter()
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .cloned()
                .collect(),
            altered,
        });
    }
    Ok(Some(out))
}

type Described = HashMap<u32, (Vec<String>, Option<u64>, Option<Vec<u8>>)>;

/// One UID FETCH of `items` for `uids`: UID -> (flags, size, header). `None` when the
/// server refused it or the connection was lost (noted on `dst`).
async fn fetch(dst: &mut Conn, uids: &[u32], items: &str) -> Result<Option<Described>> {
    let session = dst.session().await?;
    let mut out: Described = HashMap::new();
    let done = session
        .uid_fetch(&uid_set(uids), items, |item| {
            if let Some(uid) = item.uid {
                let entry = out.entry(uid).or_default();
                if let Some(flags) = item.flags {
                    entry.0 = flags;
                }
                if item.size.is_some() {
                    entry.1 = item.size;
                }
                if item.header.is_some() {
                    entry.2 = item.header.map(|h| h.to_vec());
                }
            }
        })
        .await;
    match done {
        Ok(d) if d.status == Status::Ok => Ok(Some(out)),
        Ok(d) => {
            tracing::warn!(words = %d.words(), "the target refused to describe appended messages");
            Ok(None)
        }
        Err(e) if e.is_connection_failure() => {
            dst.note_error(&e);
            tracing::warn!(error = %e, "connection lost while reading back appended messages");
            Ok(None)
        }
        Err(e) => {
            dst.note_error(&e);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn only_system_flags_and_permitted_keywords_are_stored_again() {
        assert!(may_store("\\Flagged", None));
        assert!(may_store("\\seen", Some(&s(&["\\Seen"]))));
        assert!(!may_store("$Foo", None));
        assert!(!may_store("$Foo", Some(&s(&["\\Seen", "\\Flagged"]))));
        assert!(may_store("$Foo", Some(&s(&["\\Seen", "$foo"]))));
        assert!(may_store("$Foo", Some(&s(&["\\Seen", "\\*"]))));
        assert!(!may_store("\\Recent", Some(&s(&["\\*"]))));
    }

    #[test]
    fn numbers_read_with_commas() {
        assert_eq!(with_commas(7), "7");
        assert_eq!(with_commas(999), "999");
        assert_eq!(with_commas(1_203), "1,203");
        assert_eq!(with_commas(1_234_567), "1,234,567");
    }

    #[test]
    fn only_headers_with_raw_8bit_bytes_are_suspect() {
        assert!(eight_bit_header(b"Subject: plain\r\n\r\nbody \xc3\xa9\r\n").is_none());
        assert_eq!(
            eight_bit_header(b"Subject: caf\xc3\xa9\r\n\r\nbody\r\n"),
            Some(&b"Subject: caf\xc3\xa9\r\n\r\n"[..])
        );
        assert!(eight_bit_header(b"Subject: x\xff\n\nbody").is_some());
    }
}
