//! A Gmail target under "labels as folders": a message is APPENDed once, into its first
//! label's folder; each further label is a `UID COPY` of that copy (on Gmail a COPY adds
//! a label, it does not store a second message). Runs after the folders are copied.
//!
//! Each COPY is journalled like an APPEND: a pending row first (so a crash leaves
//! something `settle_pending` can look for), then done with the COPYUID answer.

use super::super::error::Result;
use super::super::uidmap::{MapRow, UidMap, DONE, PENDING};
use super::LabelPlan;
use crate::engine::imap::conn::Conn;
use crate::engine::imap::wire::{parse_uid_set, uid_set, CommandBuilder, Status};
use crate::engine::plan::folders::FolderPlan;
use std::collections::{BTreeMap, HashMap};

/// (home target folder, further target folder, further source folder), wire names for
/// the target, display name for the source.
type CopyRoute = (String, String, String);

/// What the COPYs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FurtherOutcome {
    pub added: u64,
    /// Labels not added this run, in words (a first copy missing, a refused COPY); the
    /// next run tries them again.
    pub problems: Vec<String>,
}

/// Sends the COPYs.
pub async fn copy_further_labels(
    dst: &mut Conn,
    labels: &LabelPlan,
    plans: &[FolderPlan],
    map: &UidMap,
) -> Result<FurtherOutcome> {
    let mut outcome = FurtherOutcome::default();
    if labels.decision.further.is_empty() {
        return Ok(outcome);
    }
    let target_of: HashMap<String, String> = plans
        .iter()
        .map(|p| (p.source.map_key(), p.target_wire.clone()))
        .collect();
    let rows = map.all_rows().await?;
    let home_copy: HashMap<(&str, &str), &MapRow> = rows
        .iter()
        .filter(|r| r.state == DONE && r.target_uid.is_some())
        .filter_map(|r| {
            r.identity
                .as_deref()
                .map(|i| ((r.source_folder.as_str(), i), r))
        })
        .collect();
    let already: std::collections::HashSet<(&str, u32, u32)> = rows
        .iter()
        .filter(|r| r.state == DONE)
        .map(|r| (r.source_folder.as_str(), r.source_uidvalidity, r.source_uid))
        .collect();
    let mut groups: BTreeMap<CopyRoute, Vec<(u32, &MapRow)>> = BTreeMap::new();
    let mut without_first = 0;
    for f in &labels.decision.further {
        let validity = labels.validity.get(&f.folder).copied().unwrap_or(0);
        if already.contains(&(f.folder.as_str(), validity, f.uid)) {
            continue;
        }
        let (Some(home), Some(dest)) = (
            home_copy.get(&(f.home.as_str(), f.identity.as_str())),
            target_of.get(&f.folder),
        ) else {
            tracing::warn!(folder = %f.folder, uid = f.uid, "no first copy to add this label to");
            without_first += 1;
            continue;
        };
        groups
            .entry((home.target_folder.clone(), dest.clone(), f.folder.clone()))
            .or_default()
            .push((f.uid, home));
    }
    if without_first > 0 {
        outcome.problems.push(format!(
            "{without_first} labels not added: their message's first copy is not on the target yet (the next run adds them)"
        ));
    }
    for ((home_wire, dest_wire, folder), items) in groups {
        let validity = labels.validity.get(&folder).copied().unwrap_or(0);
        let intents: Vec<MapRow> = items
            .iter()
            .map(|(uid, home)| MapRow {
                source_folder: folder.clone(),
                source_uidvalidity: validity,
                source_uid: *uid,
                target_folder: dest_wire.clone(),
                target_uidvalidity: None,
                target_uid: None,
                state: PENDING.to_owned(),
                target_uidnext_before: None,
                identity: labels.identity_of(&folder, *uid),
                ..(*home).clone()
            })
            .collect();
        map.write_intents(&intents).await?;
        dst.select(&home_wire, true).await?;
        let home_uids: Vec<u32> = items.iter().filter_map(|(_, h)| h.target_uid).collect();
        let session = dst.session().await?;
        let reply = session
            .run(
                CommandBuilder::new("UID COPY ")
                    .raw(&uid_set(&home_uids))
                    .raw(" ")
                    .string(dest_wire.as_bytes())
                    .build(),
            )
            .await?;
        if reply.done.status != Status::Ok {
            let words = reply.done.words();
            tracing::warn!(folder, words = %words, "the target refused UID COPY");
            outcome.problems.push(format!(
                "{folder}: {} labels not added, the target refused UID COPY: {words}",
                items.len()
            ));
            let uids: Vec<u32> = items.iter().map(|(u, _)| *u).collect();
            map.drop_intents(&folder, validity, &uids).await?;
            continue;
        }
        // COPYUID validity source-set target-set: the sets pair up in order.
        let copyuid = (reply.done.code.as_deref() == Some("COPYUID"))
            .then(|| {
                let args = &reply.done.code_args;
                let v = args.first()?.as_u64()? as u32;
                let from = parse_uid_set(&args.get(1)?.as_text()?, home_uids.len())?;
                let to = parse_uid_set(&args.get(2)?.as_text()?, home_uids.len())?;
                Some((v, from.into_iter().zip(to).collect::<HashMap<u32, u32>>()))
            })
            .flatten();
        let target_validity = match &copyuid {
            Some((v, _)) => *v,
            None => session.status(&dest_wire).await?.uidvalidity,
        };
        let pairs: Vec<(u32, Option<u32>)> = items
            .iter()
            .map(|(uid, home)| {
                let to = copyuid
                    .as_ref()
                    .and_then(|(_, m)| home.target_uid.and_then(|h| m.get(&h).copied()));
                (*uid, to)
            })
            .collect();
        map.mark_done(&folder, validity, target_validity, &pairs)
            .await?;
        tracing::info!(folder, labels = pairs.len(), "labels added by UID COPY");
        outcome.added += pairs.len() as u64;
    }
    Ok(outcome)
}
