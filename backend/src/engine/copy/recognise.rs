//! Finding a message we appended on a target that stored it changed (Exchange converts
//! messages, Courier and Cyrus rewrite some bytes), where "same size and same hash" finds
//! nothing. The evidence must survive a rewrite: the Message-ID, the INTERNALDATE we gave,
//! and a size window; a message without a Message-ID needs the date, the size window and
//! the same Subject. A candidate must pass every check, else the message is taken as not
//! stored. Two commands per look, whatever the batch: the UIDs, dates and sizes above the
//! floor, then the Message-ID and Subject fields of those that fit (not a SEARCH per
//! message: one round trip, and no server-side index that may lag behind the APPEND).

use super::flags::parse_internal_date;
use crate::engine::error::Result;
use crate::engine::imap::session::Session;
use crate::engine::imap::wire::{uid_set, Status};
use std::collections::{HashMap, HashSet};

/// What is known of a message sent to the target, from the bytes and date we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sought {
    pub source_uid: u32,
    pub size: u64,
    /// The INTERNALDATE we gave (unix seconds); `None` when the target stamped its own.
    pub internal_date: Option<i64>,
    pub message_id: Option<String>,
    pub subject: Option<Vec<u8>>,
}

impl Sought {
    pub fn of(source_uid: u32, bytes: &[u8], internal_date: &str) -> Sought {
        Sought::from_header(
            source_uid,
            header_of(bytes),
            bytes.len() as u64,
            parse_internal_date(internal_date),
        )
    }

    /// From the header fields alone, with the size and date of the bytes that were sent
    /// (as a map row keeps them): for a message an earlier run sent.
    pub fn from_header(
        source_uid: u32,
        header: &[u8],
        size: u64,
        internal_date: Option<i64>,
    ) -> Sought {
        let header = header_of(header);
        Sought {
            source_uid,
            size,
            internal_date,
            message_id: field(header, b"message-id")
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .filter(|id| !id.is_empty() && id.is_ascii() && !id.contains(['\r', '\n'])),
            subject: field(header, b"subject"),
        }
    }
}

/// What survives a rewrite of messages an earlier run sent, of which the map keeps only
/// the size, date and hash of the bytes (`(source UID, size, date)` each): their
/// Message-ID and Subject, read again from the source folder (selected). A message the
/// source no longer has is left out (so it is not recognised).
pub async fn sought_from_source(
    session: &mut Session,
    sent: &[(u32, u64, Option<i64>)],
) -> Result<Vec<Sought>> {
    let uids: Vec<u32> = sent.iter().map(|s| s.0).collect();
    let headers = id_headers(
        session,
        &uids,
        "UID FETCH (headers of messages sent before)",
    )
    .await?;
    Ok(sent
        .iter()
        .filter_map(|&(uid, size, date)| {
            let h = headers.get(&uid)?;
            Some(Sought::from_header(uid, h, size, date))
        })
        .collect())
}

/// The Message-ID and Subject fields of these messages of the selected folder, by UID, in
/// one command (`what` names it in a refusal).
async fn id_headers(
    session: &mut Session,
    uids: &[u32],
    what: &str,
) -> Result<HashMap<u32, Vec<u8>>> {
    let mut headers: HashMap<u32, Vec<u8>> = HashMap::new();
    let done = session
        .uid_fetch(
            &uid_set(uids),
            "UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)]",
            |item| {
                if let (Some(uid), Some(h)) = (item.uid, item.header) {
                    headers.insert(uid, h.to_vec());
                }
            },
        )
        .await?;
    if done.status != Status::Ok {
        return Err(session.refused(what, &done));
    }
    Ok(headers)
}

/// How far a target's size may be from what was sent and still be the same message: a
/// converting server adds or rewrites headers and re-encodes, it does not halve a message.
fn size_fits(sent: u64, held: u64) -> bool {
    sent.abs_diff(held) <= 2048 + sent / 5
}

/// The header part of a message (up to the blank line).
fn header_of(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| bytes.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(bytes.len());
    &bytes[..end]
}

/// The first header field `name` (lower case), unfolded and trimmed.
fn field(header: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut value: Option<Vec<u8>> = None;
    for line in header.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = value.as_mut() {
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                if !v.is_empty() {
                    v.push(b' ');
                }
                v.extend_from_slice(line.trim_ascii());
                continue;
            }
            break;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            if line[..colon].trim_ascii().eq_ignore_ascii_case(name) {
                value = Some(line[colon + 1..].trim_ascii().to_vec());
            }
        }
    }
    value
}

/// Our Subject and the target's are the same: equal, or, where ours has raw 8-bit bytes
/// (which a server may rewrite, as Cyrus does), theirs starts with ours' ASCII part
/// before them and is as long.
fn same_subject(ours: &[u8], theirs: &[u8]) -> bool {
    if ours == theirs {
        return true;
    }
    match ours.iter().position(|b| *b >= 0x80) {
        Some(at) => theirs.starts_with(&ours[..at]) && theirs.len() == ours.len(),
        None => false,
    }
}

/// One message on the target above the floor.
struct Present {
    uid: u32,
    date: Option<i64>,
    size: u64,
}

impl Present {
    fn fits(&self, s: &Sought) -> bool {
        size_fits(s.size, self.size) && s.internal_date.is_none_or(|d| self.date == Some(d))
    }
}

/// Looks for each of `sought` among the target folder's messages with UID >= `floor`
/// (not `taken`). Returns (source UID, target UID if confidently found) for each.
pub async fn recognise(
    session: &mut Session,
    floor: u32,
    sought: &[Sought],
    taken: &HashSet<u32>,
) -> Result<Vec<(u32, Option<u32>)>> {
    let mut present: Vec<Present> = Vec::new();
    let done = session
        .uid_fetch(
            &format!("{}:*", floor.max(1)),
            "UID INTERNALDATE RFC822.SIZE",
            |item| {
                if let (Some(uid), Some(size)) = (item.uid, item.size) {
                    present.push(Present {
                        uid,
                        date: item.internal_date.as_deref().and_then(parse_internal_date),
                        size,
                    });
                }
            },
        )
        .await?;
    if done.status != Status::Ok {
        return Err(session.refused("UID FETCH (recognising appended messages)", &done));
    }
    present.retain(|p| p.uid >= floor && !taken.contains(&p.uid));
    present.sort_by_key(|p| p.uid);
    let mut used: HashSet<u32> = HashSet::new();
    let mut result: HashMap<u32, u32> = HashMap::new();

    // One look at the header fields of every message that fits one we look for (by our
    // date and the size window): one command for the batch, not a SEARCH per message.
    let candidates: Vec<u32> = present
        .iter()
        .filter(|p| sought.iter().any(|s| p.fits(s)))
        .map(|p| p.uid)
        .collect();
    if candidates.is_empty() {
        return Ok(sought.iter().map(|s| (s.source_uid, None)).collect());
    }
    let headers = id_headers(
        session,
        &candidates,
        "UID FETCH (recognising appended messages)",
    )
    .await?;
    for s in sought {
        // With a Message-ID: the same one. Without: our date (never the target's own),
        // and the same Subject, on a message that has no Message-ID either.
        if s.message_id.is_none() && (s.internal_date.is_none() || s.subject.is_none()) {
            continue;
        }
        let hit = present.iter().find(|p| {
            if used.contains(&p.uid) || !p.fits(s) {
                return false;
            }
            let Some(h) = headers.get(&p.uid) else {
                return false;
            };
            let theirs = field(h, b"message-id").map(|v| String::from_utf8_lossy(&v).into_owned());
            match &s.message_id {
                Some(id) => theirs.as_deref() == Some(id.as_str()),
                None => {
                    theirs.is_none()
                        && field(h, b"subject").is_some_and(|t| {
                            same_subject(s.subject.as_deref().unwrap_or_default(), &t)
                        })
                }
            }
        });
        if let Some(p) = hit {
            used.insert(p.uid);
            result.insert(s.source_uid, p.uid);
        }
    }
    Ok(sought
        .iter()
        .map(|s| (s.source_uid, result.get(&s.source_uid).copied()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_comes_from_the_header_we_sent() {
        let m = b"From: a@b\r\nMessage-ID:\r\n <x.1@example.org>\r\nSubject: Hi\r\n there\r\n\r\nMessage-ID: <not@body>\r\n";
        let s = Sought::of(7, m, "05-Mar-2024 10:00:00 +0000");
        assert_eq!(s.message_id.as_deref(), Some("<x.1@example.org>"));
        assert_eq!(s.subject.as_deref(), Some(&b"Hi there"[..]));
        assert_eq!(s.internal_date, Some(1_709_632_800));
        let none = Sought::of(8, b"Subject: x\n\nMessage-ID: <body@x>\n", "");
        assert_eq!(none.message_id, None);
        assert_eq!(none.internal_date, None);
    }

    #[test]
    fn what_an_earlier_run_sent_is_known_again_from_the_source_header() {
        // The seed's 8-bit message: no Message-ID, raw bytes in the Subject (Cyrus rewrites
        // them). A later run has only the map row (size, date) and the header fields read
        // again from the source; it must look for the message as the run that sent it did.
        let m = b"From: z@example.org\r\nSubject: [8bit] Gr\xfc\xdfe\r\n\r\n\xe4\xf6\xfc\r\n";
        let sent = Sought::of(6, m, "06-Mar-2010 05:15:00 +0000");
        let fields = b"Subject: [8bit] Gr\xfc\xdfe\r\n\r\n";
        let again = Sought::from_header(6, fields, m.len() as u64, sent.internal_date);
        assert_eq!(again, sent);
        assert_eq!(again.message_id, None);
        assert!(again.internal_date.is_some() && again.subject.is_some());
        // What Cyrus stored (same length, the 8-bit bytes replaced) is still its Subject.
        assert!(same_subject(
            again.subject.as_deref().unwrap(),
            b"[8bit] GrXXe"
        ));
    }

    #[test]
    fn sizes_and_subjects_compare_across_a_rewrite() {
        assert!(size_fits(1210, 1203));
        assert!(size_fits(100_000, 118_000));
        assert!(!size_fits(100_000, 130_000));
        assert!(!size_fits(500, 3000));
        assert!(same_subject(b"Gr\xc3\xbc\xc3\x9fe", b"GrXXXXe"));
        assert!(!same_subject(b"Gr\xc3\xbc\xc3\x9fe", b"GrXXe"));
        assert!(!same_subject(b"plain", b"plain too"));
    }
}
