//! A message's identity across the folders of a label-style source, where one message
//! shows up in every folder of its labels and again in All Mail.
//!
//! The rule: with X-GM-EXT-1 the identity is `gm:<X-GM-MSGID>` (Gmail's own id). Without
//! it, messages with the same RFC822.SIZE and INTERNALDATE are candidates, confirmed by a
//! SHA-256 of their header block (`BODY.PEEK[HEADER]`, cheap): `c:<size>:<date>:<hash>`.
//! Two equal messages inside one folder are two messages: the n-th of a folder (by UID)
//! pairs with the n-th of another folder, and the identity ends in `#n`. Every message not
//! yet in the UID map is hashed (a later run may give it a label, and must then recognise
//! it); mapped messages keep the identity stored with them. A message for which neither
//! works (no header came back, a date that does not parse) is a message of its own,
//! `u:<folder>:<uidvalidity>:<uid>`: copied where it is rather than lost.

use super::super::error::Result;
use crate::engine::copy::fetch::SourceMessage;
use crate::engine::copy::flags;
use crate::engine::imap::conn::Conn;
use crate::engine::imap::wire::{uid_set, Status};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// One message as the label pass lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub meta: SourceMessage,
    pub gm_msgid: Option<u64>,
}

/// Lists the selected folder with Gmail's items when the server offers them.
pub async fn list_folder(src: &mut Conn, gmail_items: bool) -> Result<Vec<Listed>> {
    if src.mailbox.exists == 0 {
        return Ok(Vec::new());
    }
    let items = if gmail_items {
        "UID FLAGS INTERNALDATE RFC822.SIZE X-GM-MSGID X-GM-LABELS"
    } else {
        "UID FLAGS INTERNALDATE RFC822.SIZE"
    };
    let session = src.session().await?;
    let mut out = Vec::new();
    let done = session
        .uid_fetch("1:*", items, |item| {
            if let (Some(uid), Some(date), Some(size)) = (item.uid, item.internal_date, item.size) {
                out.push(Listed {
                    meta: SourceMessage {
                        uid,
                        flags: item.flags.unwrap_or_default(),
                        internal_date: date,
                        size,
                    },
                    gm_msgid: item.gm_msgid,
                });
            }
        })
        .await?;
    if done.status != Status::Ok {
        return Err(session.refused("UID FETCH (label listing)", &done));
    }
    out.sort_by_key(|m| m.meta.uid);
    out.dedup_by_key(|m| m.meta.uid);
    Ok(out)
}

/// SHA-256 (hex, first 32 digits) of each message's header block, in the selected folder.
pub async fn header_hashes(src: &mut Conn, uids: &[u32]) -> Result<HashMap<u32, String>> {
    let mut out = HashMap::new();
    for chunk in uids.chunks(500) {
        let session = src.session().await?;
        let done = session
            .uid_fetch(&uid_set(chunk), "UID BODY.PEEK[HEADER]", |item| {
                if let (Some(uid), Some(header)) = (item.uid, item.header) {
                    out.insert(uid, hash_header(&header));
                }
            })
            .await?;
        if done.status != Status::Ok {
            return Err(session.refused("UID FETCH (headers)", &done));
        }
    }
    Ok(out)
}

pub fn hash_header(header: &[u8]) -> String {
    hex::encode(Sha256::digest(header))[..32].to_owned()
}

/// The identity without its `#n` occurrence mark.
pub fn base_of(identity: &str) -> &str {
    identity.rsplit_once('#').map_or(identity, |(b, _)| b)
}

/// The base identity of a listed message: Gmail's id, else size, date and header hash.
pub fn base_identity(m: &Listed, header_hash: Option<&str>) -> Option<String> {
    if let Some(id) = m.gm_msgid {
        return Some(format!("gm:{id}"));
    }
    let date = flags::parse_internal_date(&m.meta.internal_date)?;
    Some(format!("c:{}:{date}:{}", m.meta.size, header_hash?))
}

/// Full identities of one folder's messages (sorted by UID): each base gets `#n`, its
/// occurrence number in the folder (Gmail ids are unique and get none). A message with
/// a stored identity keeps it.
pub fn number_occurrences(
    bases: &[(u32, String)],
    stored: &HashMap<u32, String>,
) -> BTreeMap<u32, String> {
    let mut seen: HashMap<&str, u32> = HashMap::new();
    let mut out = BTreeMap::new();
    let mut sorted: Vec<&(u32, String)> = bases.iter().collect();
    sorted.sort_by_key(|(uid, _)| *uid);
    for (uid, base) in sorted {
        let n = seen.entry(base.as_str()).or_insert(0);
        let identity = match stored.get(uid) {
            Some(s) => s.clone(),
            None if base.starts_with("gm:") => base.clone(),
            None => format!("{base}#{n}"),
        };
        *n += 1;
        out.insert(*uid, identity);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::imap::session::FetchItem;
    use crate::engine::imap::wire::{parse_response, Response};

    fn listed(uid: u32, size: u64, date: &str, gm: Option<u64>) -> Listed {
        Listed {
            meta: SourceMessage {
                uid,
                flags: vec![],
                internal_date: date.into(),
                size,
            },
            gm_msgid: gm,
        }
    }

    #[test]
    fn identities_group_equal_messages_across_folders_but_not_within_one() {
        let date = "01-Mar-2020 10:00:00 +0000";
        let a = listed(1, 100, date, None);
        let base = base_identity(&a, Some("h1")).unwrap();
        assert_eq!(base, "c:100:1583056800:h1");
        // Same size and date but other headers: another message.
        assert_ne!(base_identity(&a, Some("h2")).unwrap(), base);
        // No header hash, no content identity.
        assert_eq!(base_identity(&a, None), None);
        // Gmail's id wins and needs no hash.
        assert_eq!(
            base_identity(&listed(1, 100, date, Some(42)), None).unwrap(),
            "gm:42"
        );

        // Folder A holds the message twice (an exact duplicate), folder B once.
        let folder_a = number_occurrences(
            &[(9, base.clone()), (3, base.clone()), (4, "c:5:6:x".into())],
            &HashMap::new(),
        );
        let folder_b = number_occurrences(&[(1, base.clone())], &HashMap::new());
        assert_eq!(folder_a[&3], format!("{base}#0"));
        assert_eq!(folder_a[&9], format!("{base}#1"));
        assert_eq!(folder_b[&1], folder_a[&3]);
        assert_eq!(base_of(&folder_a[&9]), base);

        // A stored identity is kept, and still counts as an occurrence.
        let stored = HashMap::from([(3, "gm:7".to_string())]);
        let again = number_occurrences(&[(3, base.clone()), (9, base.clone())], &stored);
        assert_eq!(again[&3], "gm:7");
        assert_eq!(again[&9], format!("{base}#1"));
    }

    #[test]
    fn the_wire_parser_reads_gmail_items() {
        let raw = b"* 3 FETCH (UID 17 X-GM-MSGID 1278455344230334865 X-GM-LABELS (\\Inbox \"Reisen 2024\" Work) FLAGS (\\Seen) INTERNALDATE \"01-Mar-2020 10:00:00 +0000\" RFC822.SIZE 120)\r\n";
        let Ok(Response::Untagged(values)) = parse_response(raw) else {
            panic!("not parsed");
        };
        let item = FetchItem::from_values(values).unwrap();
        assert_eq!(item.uid, Some(17));
        assert_eq!(item.gm_msgid, Some(1_278_455_344_230_334_865));
        assert_eq!(
            item.gm_labels.unwrap(),
            vec!["\\Inbox", "Reisen 2024", "Work"]
        );
        assert_eq!(item.size, Some(120));
    }
}
