//! Listing a source folder's messages (UID, flags, internal date, size) before copying.
//!
//! A server may split one message's items over several FETCH responses, or leave some
//! out: the pieces are merged by UID (or by sequence number, for a piece without its
//! UID), the messages still incomplete are asked for again, and those that stay
//! incomplete are returned with the reason, never silently dropped.

use super::fetch::SourceMessage;
use crate::engine::error::Result;
use crate::engine::imap::conn::Conn;
use crate::engine::imap::session::FetchItem;
use crate::engine::imap::wire::{uid_set, Status};
use std::collections::{BTreeMap, HashMap};

const ITEMS: &str = "UID FLAGS INTERNALDATE RFC822.SIZE";

/// How many times the incomplete messages are asked for again.
const REFETCHES: usize = 2;

/// A folder's messages, and those whose listing stayed incomplete.
#[derive(Debug, Default)]
pub struct Listing {
    pub messages: Vec<SourceMessage>,
    pub incomplete: Vec<Incomplete>,
}

/// A message the server would not describe fully: what it did say, and what it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    pub uid: u32,
    pub size: Option<u64>,
    pub internal_date: Option<String>,
    pub reason: String,
}

/// What the responses said about one message so far.
#[derive(Debug, Default, Clone)]
struct Pieces {
    flags: Option<Vec<String>>,
    internal_date: Option<String>,
    size: Option<u64>,
}

impl Pieces {
    fn add(&mut self, item: FetchItem) {
        if item.flags.is_some() {
            self.flags = item.flags;
        }
        if item.internal_date.is_some() {
            self.internal_date = item.internal_date;
        }
        if item.size.is_some() {
            self.size = item.size;
        }
    }

    fn is_complete(&self) -> bool {
        self.flags.is_some() && self.internal_date.is_some() && self.size.is_some()
    }

    /// The message, once nothing is lacking; otherwise the pieces as they are.
    fn into_message(self, uid: u32) -> std::result::Result<SourceMessage, Pieces> {
        match self {
            Pieces {
                flags: Some(flags),
                internal_date: Some(internal_date),
                size: Some(size),
            } => Ok(SourceMessage {
                uid,
                flags,
                internal_date,
                size,
            }),
            lacking => Err(lacking),
        }
    }

    fn lacking(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.flags.is_none() {
            out.push("FLAGS");
        }
        if self.internal_date.is_none() {
            out.push("INTERNALDATE");
        }
        if self.size.is_none() {
            out.push("RFC822.SIZE");
        }
        out
    }
}

/// Merges FETCH responses into pieces per UID; a response without a UID joins the UID
/// another response gave for its sequence number.
fn merge(items: Vec<FetchItem>, into: &mut BTreeMap<u32, Pieces>) {
    let by_seq: HashMap<u32, u32> = items
        .iter()
        .filter_map(|i| i.uid.map(|u| (i.seq, u)))
        .collect();
    for item in items {
        let Some(uid) = item.uid.or_else(|| by_seq.get(&item.seq).copied()) else {
            continue;
        };
        into.entry(uid).or_default().add(item);
    }
}

/// The UIDs still lacking something (sorted).
fn incomplete_uids(pieces: &BTreeMap<u32, Pieces>) -> Vec<u32> {
    pieces
        .iter()
        .filter(|(_, p)| !p.is_complete())
        .map(|(uid, _)| *uid)
        .collect()
}

/// Complete messages (sorted by UID) and the pieces of those still lacking something.
fn split(pieces: BTreeMap<u32, Pieces>) -> (Vec<SourceMessage>, Vec<(u32, Pieces)>) {
    let mut done = Vec::new();
    let mut lacking = Vec::new();
    for (uid, p) in pieces {
        match p.into_message(uid) {
            Ok(m) => done.push(m),
            Err(p) => lacking.push((uid, p)),
        }
    }
    (done, lacking)
}

async fn fetch_into(
    src: &mut Conn,
    set: &str,
    changed_since: Option<u64>,
    pieces: &mut BTreeMap<u32, Pieces>,
) -> Result<()> {
    let session = src.session().await?;
    let mut items = Vec::new();
    let done = match changed_since {
        Some(modseq) => {
            session
                .uid_fetch_changed(set, ITEMS, modseq, |item| items.push(item))
                .await?
        }
        None => {
            session
                .uid_fetch(set, ITEMS, |item| items.push(item))
                .await?
        }
    };
    if done.status != Status::Ok {
        return Err(session.refused("UID FETCH (listing)", &done));
    }
    merge(items, pieces);
    Ok(())
}

/// Lists the selected folder's messages, checking the tagged reply.
pub async fn list_messages(src: &mut Conn) -> Result<Listing> {
    list(src, None).await
}

/// Lists only the messages of the selected folder whose mod-sequence is above `modseq`
/// (RFC 7162 CHANGEDSINCE): those whose flags changed and those added since a pass that
/// saw that HIGHESTMODSEQ. The others are as that pass left them.
pub async fn list_changed(src: &mut Conn, modseq: u64) -> Result<Listing> {
    list(src, Some(modseq)).await
}

async fn list(src: &mut Conn, changed_since: Option<u64>) -> Result<Listing> {
    if src.mailbox.exists == 0 {
        return Ok(Listing::default());
    }
    let mut pieces = BTreeMap::new();
    fetch_into(src, "1:*", changed_since, &mut pieces).await?;
    for _ in 0..REFETCHES {
        let lacking = incomplete_uids(&pieces);
        if lacking.is_empty() {
            break;
        }
        tracing::info!(
            messages = lacking.len(),
            "the source listed some messages incompletely; asking for them again"
        );
        fetch_into(src, &uid_set(&lacking), None, &mut pieces).await?;
    }
    let (messages, lacking) = split(pieces);
    let incomplete = lacking
        .into_iter()
        .map(|(uid, p)| Incomplete {
            reason: format!(
                "the source server did not give its {} (asked {} times)",
                p.lacking().join(" and "),
                REFETCHES + 1
            ),
            uid,
            size: p.size,
            internal_date: p.internal_date,
        })
        .collect();
    Ok(Listing {
        messages,
        incomplete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u32, uid: Option<u32>) -> FetchItem {
        FetchItem {
            seq,
            uid,
            ..FetchItem::default()
        }
    }

    #[test]
    fn split_responses_are_merged_by_uid_and_by_sequence_number() {
        let mut flags = item(1, Some(7));
        flags.flags = Some(vec!["\\Seen".into()]);
        let mut rest = item(1, Some(7));
        rest.internal_date = Some("01-Jan-2020 10:00:00 +0000".into());
        rest.size = Some(42);
        let mut second_flags = item(2, None);
        second_flags.flags = Some(vec![]);
        let mut second = item(2, Some(9));
        second.internal_date = Some("02-Jan-2020 10:00:00 +0000".into());
        second.size = Some(5);
        let mut no_date = item(3, Some(11));
        no_date.flags = Some(vec![]);
        no_date.size = Some(8);
        let mut pieces = BTreeMap::new();
        merge(
            vec![flags, rest, second_flags, second, no_date],
            &mut pieces,
        );
        let (done, lacking) = split(pieces);
        assert_eq!(
            done,
            vec![
                SourceMessage {
                    uid: 7,
                    flags: vec!["\\Seen".into()],
                    internal_date: "01-Jan-2020 10:00:00 +0000".into(),
                    size: 42
                },
                SourceMessage {
                    uid: 9,
                    flags: vec![],
                    internal_date: "02-Jan-2020 10:00:00 +0000".into(),
                    size: 5
                }
            ]
        );
        let [(uid, pieces)] = lacking.as_slice() else {
            panic!("{lacking:?}")
        };
        assert_eq!(*uid, 11);
        assert_eq!(pieces.lacking(), vec!["INTERNALDATE"]);
    }
}
