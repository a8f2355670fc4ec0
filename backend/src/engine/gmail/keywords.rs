//! Labels a message gained after an earlier run copied it, when the folder of that copy
//! no longer shows it (its label was removed): the message is not copied again (its
//! identity is in the map); the new labels are added to the existing copy as keywords.
//! (While the copy's folder still shows the message, the folder copy keeps its flags and
//! keywords up to date like any other flag change.)

use super::super::error::Result;
use super::super::uidmap::{MapRow, UidMap};
use super::policy::{keyword_atom, Occurrence};
use crate::engine::copy::flags;
use crate::engine::imap::conn::Conn;
use std::collections::{BTreeMap, HashSet};

/// Keywords to add to one copy already on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordUpdate {
    pub row: MapRow,
    pub add: Vec<String>,
}

/// Pure: the updates for copies whose source message left the folder they came from.
pub fn updates_for_moved(
    done_rows: &[&MapRow],
    groups: &BTreeMap<String, Vec<Occurrence>>,
) -> Vec<KeywordUpdate> {
    let mut out = Vec::new();
    for row in done_rows {
        let Some(identity) = &row.identity else {
            continue;
        };
        let Some(occurrences) = groups.get(identity) else {
            continue; // gone from the source altogether
        };
        let still_there = occurrences
            .iter()
            .any(|o| o.folder == row.source_folder && o.uid == row.source_uid);
        if still_there {
            continue;
        }
        let have: HashSet<&str> = row.flags.split_whitespace().collect();
        let mut add: Vec<String> = occurrences
            .iter()
            .filter(|o| o.role.is_label() && o.folder != row.source_folder)
            .map(|o| keyword_atom(&o.folder))
            .filter(|k| !have.contains(k.as_str()))
            .collect();
        add.sort();
        add.dedup();
        if !add.is_empty() {
            out.push(KeywordUpdate {
                row: (*row).clone(),
                add,
            });
        }
    }
    out
}

/// Adds the keywords on the target (`UID STORE +FLAGS`) and records the new flags.
pub async fn apply(dst: &mut Conn, updates: &[KeywordUpdate], map: &UidMap) -> Result<u64> {
    let mut done = 0;
    for u in updates {
        let (Some(target_uid), Some(validity)) = (u.row.target_uid, u.row.target_uidvalidity)
        else {
            continue;
        };
        let info = dst.select(&u.row.target_folder, false).await?;
        if info.uidvalidity != validity {
            continue; // the target folder was recreated: that copy is not there any more
        }
        let add = flags::flags_for_target(&u.add, info.permanent_flags.as_deref());
        if add.is_empty() {
            continue;
        }
        let session = dst.session().await?;
        let line = session
            .uid_store(&target_uid.to_string(), "+FLAGS", &add)
            .await?;
        if line.status != crate::engine::imap::wire::Status::Ok {
            tracing::warn!(words = %line.words(), "target refused new label keywords");
            continue;
        }
        let mut all: Vec<String> = u.row.flags.split_whitespace().map(str::to_owned).collect();
        all.extend(add);
        map.set_flags(
            &u.row.source_folder,
            u.row.source_uidvalidity,
            &[(u.row.source_uid, flags::canonical(&all))],
        )
        .await?;
        done += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::super::policy::Role;
    use super::*;
    use crate::engine::uidmap::DONE;

    #[test]
    fn a_copy_whose_label_went_gets_the_new_labels_as_keywords() {
        let row = MapRow {
            source_folder: "INBOX".into(),
            source_uidvalidity: 1,
            source_uid: 5,
            target_folder: "INBOX".into(),
            target_uidvalidity: Some(9),
            target_uid: Some(2),
            state: DONE.into(),
            target_uidnext_before: None,
            size: 10,
            internal_date: 0,
            content_hash: "h".into(),
            flags: "Work \\seen".into(),
            identity: Some("m1".into()),
        };
        let occ = |folder: &str, role, uid| Occurrence {
            folder: folder.into(),
            role,
            uid,
        };
        let moved = BTreeMap::from([(
            "m1".to_string(),
            vec![
                occ("Work", Role::User, 1),
                occ("Reisen 2024", Role::User, 4),
                occ("[Gmail]/All Mail", Role::AllMail, 7),
            ],
        )]);
        let u = updates_for_moved(&[&row], &moved);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].add, vec!["Reisen_2024"]);
        // Still in INBOX: the folder copy keeps its keywords itself.
        let mut here = moved.clone();
        here.get_mut("m1")
            .unwrap()
            .push(occ("INBOX", Role::Inbox, 5));
        assert!(updates_for_moved(&[&row], &here).is_empty());
    }
}
