//! Re-runs that ask the source what changed (RFC 7162 CONDSTORE) instead of listing
//! every message again.
//!
//! Each source folder's UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT and message count, taken by
//! STATUS before a pass lists it, are kept (with the target folder and its UIDVALIDITY)
//! once that pass copied everything it listed (see [`crate::engine::uidmap::SyncState`]).
//! The next run asks the same STATUS first:
//! - all the same, and the target folder still the one filled then (same name, existed
//!   before this run, same UIDVALIDITY): the folder is not selected, listed or fetched
//!   on either side ([`Decision::Unchanged`]);
//! - only HIGHESTMODSEQ (and UIDNEXT, the count) moved: the pass lists just the messages
//!   changed since (`CHANGEDSINCE`: new flags, new messages) and otherwise goes as
//!   always ([`Decision::Since`]);
//! - anything else (no CONDSTORE, NOMODSEQ, a new UIDVALIDITY on either side, another
//!   target folder, no complete pass yet): a full pass, as without CONDSTORE.
//!
//! Messages expunged on the source are left on the target, as a full pass leaves them.

use crate::engine::error::{EngineError, Result};
use crate::engine::imap::conn::Conn;
use crate::engine::imap::name::WireName;
use crate::engine::imap::session::MailboxInfo;
use crate::engine::plan::folders::FolderPlan;
use crate::engine::uidmap::{SyncState, UidMap};
use crate::engine::{with_retries, Settings};
use std::collections::{HashMap, HashSet};

/// What a run does with one source folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing changed on either side since the last complete pass: no SELECT, no FETCH.
    Unchanged { messages: u32 },
    /// Only mod-sequences moved: list what changed since this HIGHESTMODSEQ.
    Since(u64),
    /// A full pass.
    Full,
}

/// One folder's decision, and what to keep once its pass is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    pub decision: Decision,
    /// The source folder as STATUS saw it before the pass (`None`: it keeps no
    /// mod-sequences, so nothing is kept).
    pub observed: Option<MailboxInfo>,
}

impl Look {
    /// The state to keep after a complete pass that filled `target_wire`, whose
    /// UIDVALIDITY was `target_uidvalidity`.
    pub fn state_after(&self, target_wire: &str, target_uidvalidity: u32) -> Option<SyncState> {
        let seen = self.observed.as_ref()?;
        Some(SyncState {
            source_uidvalidity: seen.uidvalidity,
            highest_modseq: seen.highest_modseq?,
            uidnext: seen.uidnext?,
            messages: seen.exists,
            target_folder: target_wire.to_owned(),
            target_uidvalidity,
        })
    }
}

/// The decision from the source's STATUS and what the last complete pass kept, before
/// the target is looked at: `Unchanged` here still needs the target's UIDVALIDITY to be
/// the one kept (see [`look_all`]).
pub fn decide(
    now: &MailboxInfo,
    kept: Option<&SyncState>,
    target_wire: &str,
    target_existed: bool,
) -> Decision {
    let (Some(modseq), Some(uidnext)) = (now.highest_modseq.filter(|m| *m > 0), now.uidnext) else {
        return Decision::Full;
    };
    let Some(kept) = kept else {
        return Decision::Full;
    };
    if kept.source_uidvalidity != now.uidvalidity
        || kept.target_folder != target_wire
        || !target_existed
        || kept.highest_modseq == 0
        || modseq < kept.highest_modseq
        || uidnext < kept.uidnext
    {
        return Decision::Full;
    }
    if modseq == kept.highest_modseq {
        if uidnext == kept.uidnext && now.exists == kept.messages {
            return Decision::Unchanged {
                messages: now.exists,
            };
        }
        // Something moved without a new mod-sequence: do not trust them here.
        return Decision::Full;
    }
    Decision::Since(kept.highest_modseq)
}

/// What STATUS says of the source folders: HIGHESTMODSEQ too.
const SOURCE_ITEMS: &str = "UIDNEXT UIDVALIDITY MESSAGES HIGHESTMODSEQ";

/// Every folder's STATUS in one LIST-STATUS command (RFC 5819) where the server offers
/// it; `None` where it does not, or refused it (then each folder is asked alone).
async fn all_statuses(
    settings: &Settings,
    conn: &mut Conn,
    items: &'static str,
) -> Result<Option<HashMap<WireName, MailboxInfo>>> {
    if !conn.session().await?.capabilities().has("LIST-STATUS") {
        return Ok(None);
    }
    match with_retries(settings, conn, |s| Box::pin(s.list_status(items))).await {
        Ok(all) => Ok(Some(all)),
        Err(EngineError::Refused { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Looks at every planned folder (STATUS with HIGHESTMODSEQ on the source; for those
/// unchanged there, the target folder's UIDVALIDITY). Empty when the source offers no
/// CONDSTORE: then every folder gets a full pass, as before.
pub async fn look_all(
    settings: &Settings,
    src: &mut Conn,
    dst: &mut Conn,
    map: &UidMap,
    plans: &[FolderPlan],
    existed: &HashSet<String>,
) -> Result<HashMap<String, Look>> {
    let mut looks = HashMap::new();
    if !src.session().await?.capabilities().condstore() {
        return Ok(looks);
    }
    let kept = map.sync_states().await?;
    let listed = all_statuses(settings, src, SOURCE_ITEMS).await?;
    for plan in plans {
        let folder = plan.source.map_key();
        let now = match listed.as_ref().and_then(|all| all.get(&plan.source.wire)) {
            Some(now) => now.clone(),
            None => {
                let wire = plan.source.wire.clone();
                with_retries(settings, src, |s| Box::pin(s.status_modseq(wire.clone()))).await?
            }
        };
        let decision = decide(
            &now,
            kept.get(&folder),
            &plan.target_wire,
            existed.contains(&folder),
        );
        let observed = now.highest_modseq.filter(|m| *m > 0).map(|_| now.clone());
        looks.insert(folder, Look { decision, observed });
    }
    // Unchanged on the source: the target folder must still be the one filled then.
    let unchanged: Vec<&FolderPlan> = plans
        .iter()
        .filter(|p| {
            matches!(
                looks.get(&p.source.map_key()).map(|l| l.decision),
                Some(Decision::Unchanged { .. })
            )
        })
        .collect();
    if unchanged.is_empty() {
        return Ok(looks);
    }
    let there_all = all_statuses(settings, dst, "UIDVALIDITY").await?;
    for plan in unchanged {
        let folder = plan.source.map_key();
        let there = match there_all
            .as_ref()
            .and_then(|all| all.get(&WireName::from(plan.target_wire.as_str())))
        {
            Some(there) => Ok(there.clone()),
            None => {
                let target = plan.target_wire.clone();
                with_retries(settings, dst, |s| {
                    Box::pin(s.status_owned(target.clone().into()))
                })
                .await
            }
        };
        let same = match there {
            Ok(there) => kept
                .get(&folder)
                .is_some_and(|k| k.target_uidvalidity == there.uidvalidity),
            // No answer for it: the full pass finds out what the target holds.
            Err(EngineError::Refused { .. }) => false,
            Err(e) => return Err(e),
        };
        if !same {
            // Another UIDVALIDITY (the folder was made again), or none.
            if let Some(look) = looks.get_mut(&folder) {
                look.decision = Decision::Full;
            }
        }
    }
    Ok(looks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(uidvalidity: u32, modseq: u64, uidnext: u32, exists: u32) -> MailboxInfo {
        MailboxInfo {
            uidvalidity,
            uidnext: Some(uidnext),
            exists,
            highest_modseq: Some(modseq),
            ..MailboxInfo::default()
        }
    }

    fn kept(uidvalidity: u32, modseq: u64, uidnext: u32, messages: u32) -> SyncState {
        SyncState {
            source_uidvalidity: uidvalidity,
            highest_modseq: modseq,
            uidnext,
            messages,
            target_folder: "INBOX".into(),
            target_uidvalidity: 9,
        }
    }

    #[test]
    fn only_an_identical_folder_over_the_same_target_is_skipped() {
        let k = kept(1, 50, 11, 10);
        let same = status(1, 50, 11, 10);
        assert_eq!(
            decide(&same, Some(&k), "INBOX", true),
            Decision::Unchanged { messages: 10 }
        );
        // Flags changed or mail came: only what changed since 50 is listed.
        assert_eq!(
            decide(&status(1, 60, 12, 11), Some(&k), "INBOX", true),
            Decision::Since(50)
        );
        // Everything else is a full pass.
        for (now, target, existed) in [
            (status(2, 50, 11, 10), "INBOX", true),   // new UIDVALIDITY
            (status(1, 0, 11, 10), "INBOX", true),    // NOMODSEQ
            (status(1, 40, 11, 10), "INBOX", true),   // modseq went back
            (status(1, 50, 12, 11), "INBOX", true),   // mail without a new modseq
            (status(1, 50, 11, 10), "Archive", true), // another target folder
            (status(1, 50, 11, 10), "INBOX", false),  // the target folder was made now
            (status(1, 60, 10, 10), "INBOX", true),   // UIDNEXT went back
        ] {
            assert_eq!(
                decide(&now, Some(&k), target, existed),
                Decision::Full,
                "{now:?}"
            );
        }
        assert_eq!(decide(&same, None, "INBOX", true), Decision::Full);
        let mut no_modseq = same.clone();
        no_modseq.highest_modseq = None;
        assert_eq!(decide(&no_modseq, Some(&k), "INBOX", true), Decision::Full);
    }
}
