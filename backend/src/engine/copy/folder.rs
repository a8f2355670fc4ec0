//! Copying one folder: settle what a previous run left pending, re-match after a source
//! UIDVALIDITY change, propagate flag changes, then copy what is not mapped yet in
//! batches (the next batch is fetched while the current one is appended).

use super::append::{self, content_hash, AppendReply, Outgoing, Wanted};
use super::budget::{self, Reservation};
use super::fetch::{self, FetchOutcome, Fetched, ServerProfile, SourceMessage};
use super::flags;
use super::listing::{self, Incomplete};
use super::recognise::{self, Sought};
use super::rematch;
use super::verify::{self, Appended};
use crate::engine::error::{EngineError, Result};
use crate::engine::events::{Event, Events, SkippedMessage};
use crate::engine::gmail::LabelPlan;
use crate::engine::imap::conn::Conn;
use crate::engine::imap::wire::{uid_set, Status};
use crate::engine::plan::folders::{self, FolderPlan, FolderTree};
use crate::engine::retry::{classify, CommandKind, Refusal};
use crate::engine::uidmap::{MapRow, SkipRecord, UidMap, DONE, PENDING};
use crate::engine::Settings;
use std::collections::{HashMap, HashSet};

/// What happened in one folder (kept up to date as it goes, so a failure keeps counts).
#[derive(Debug, Default, Clone)]
pub struct FolderTally {
    pub messages: u64,
    pub to_copy: u64,
    pub copied: u64,
    pub already_present: u64,
    pub flags_updated: u64,
    pub bytes_copied: u64,
    pub skipped: Vec<SkippedMessage>,
    /// Source UIDs copied or skipped by this run (a retried folder must not count twice).
    pub handled: HashSet<u32>,
    /// Source UIDs (with size) this run sent an APPEND for: if a retry finds them on the
    /// target, this run copied them.
    pub sent: HashMap<u32, u64>,
    /// What survives a rewrite of each message this run sent (see [`recognise`]): a
    /// retried folder still finds them on a target that stored them changed.
    pub sought: HashMap<u32, Sought>,
    /// What the label policy could not do here, for the report.
    pub notes: Vec<String>,
    /// Messages copied without a keyword or the date the target refused (see
    /// [`super::Report::altered`]).
    pub altered: Vec<String>,
    /// The target folder's UIDVALIDITY as this run's pass saw it.
    pub target_uidvalidity: Option<u32>,
}

pub struct FolderContext<'a> {
    pub settings: &'a Settings,
    pub map: &'a UidMap,
    pub events: &'a Events,
    pub profile: &'a ServerProfile,
    pub target_tree: &'a FolderTree,
    /// The label policy of a label-style source (Gmail): which messages of each folder
    /// to copy and which keywords they carry.
    pub labels: Option<&'a LabelPlan>,
}

/// The target folder as this run sees it.
struct TargetState {
    wire: String,
    uidvalidity: u32,
    permanent: Option<Vec<String>>,
    /// A UID no newer message can be below: where to look for messages we appended.
    floor: u32,
    /// Target UIDs that already belong to mapped messages.
    taken: HashSet<u32>,
}

pub async fn copy_folder(
    src: &mut Conn,
    dst: &mut Conn,
    ctx: &FolderContext<'_>,
    plan: &FolderPlan,
    since: Option<u64>,
    tally: &mut FolderTally,
) -> Result<()> {
    // The UID map's name of the folder (exact bytes for an old server's raw name).
    let folder = plan.source.map_key();
    let sinfo = src.select(&plan.source.wire, true).await?;
    // `since`: the source says only what changed since that HIGHESTMODSEQ needs listing
    // (see `changes`), if the map holds nothing a full listing is needed for.
    let (listing, tinfo, mut rows, partial) = match since {
        Some(modseq) => {
            let tinfo = dst.select(&plan.target_wire, false).await?;
            let rows = ctx.map.folder_rows(&folder).await?;
            let narrow = rows.iter().all(|r| {
                r.state == DONE
                    && r.source_uidvalidity == sinfo.uidvalidity
                    && (r.target_folder != plan.target_wire
                        || r.target_uidvalidity == Some(tinfo.uidvalidity))
            });
            let changed = if narrow {
                tracing::debug!(folder, modseq, "listing only what changed (CHANGEDSINCE)");
                match listing::list_changed(src, modseq).await {
                    // A server that offers CONDSTORE yet refuses CHANGEDSINCE here: the
                    // folder is listed whole instead.
                    Err(e) if !e.is_connection_failure() && e.transient().is_none() => {
                        tracing::warn!(folder, error = %e, "CHANGEDSINCE refused; listing the folder whole");
                        None
                    }
                    other => Some(other?),
                }
            } else {
                None
            };
            let narrow = changed.is_some();
            let listing = match changed {
                Some(listing) => listing,
                None => listing::list_messages(src).await?,
            };
            (listing, tinfo, rows, narrow)
        }
        None => {
            let listing = listing::list_messages(src).await?;
            let tinfo = dst.select(&plan.target_wire, false).await?;
            let rows = ctx.map.folder_rows(&folder).await?;
            (listing, tinfo, rows, false)
        }
    };
    let mut messages = listing.messages;
    tally.messages = if partial {
        u64::from(sinfo.exists)
    } else {
        messages.len() as u64
    };
    tally.target_uidvalidity = Some(tinfo.uidvalidity);
    let mut target = TargetState {
        wire: plan.target_wire.clone(),
        uidvalidity: tinfo.uidvalidity,
        permanent: tinfo.permanent_flags.clone(),
        floor: tinfo.uidnext.unwrap_or(1),
        taken: HashSet::new(),
    };

    if rows.iter().any(|r| r.state == PENDING) {
        settle_pending(
            (src, sinfo.uidvalidity),
            dst,
            ctx,
            &folder,
            &mut target,
            &rows,
            tally,
        )
        .await?;
        rows = ctx.map.folder_rows(&folder).await?;
    }
    if rows.iter().any(|r| stale_copy(r, &target)) {
        refill_recreated_target(
            (src, sinfo.uidvalidity),
            dst,
            ctx,
            &folder,
            &mut target,
            tinfo.exists,
            &rows,
            tally,
        )
        .await?;
        rows = ctx.map.folder_rows(&folder).await?;
    }
    if rows
        .iter()
        .any(|r| r.state == DONE && r.source_uidvalidity != sinfo.uidvalidity)
    {
        rematch_after_uidvalidity_change(src, ctx, &folder, sinfo.uidvalidity, &messages, &rows)
            .await?;
        rows = ctx.map.folder_rows(&folder).await?;
    }
    target.taken = rows
        .iter()
        .filter(|r| r.state == DONE && r.target_uidvalidity == Some(target.uidvalidity))
        .filter_map(|r| r.target_uid)
        .collect();
    let mapped: HashMap<u32, &MapRow> = rows
        .iter()
        .filter(|r| r.state == DONE && r.source_uidvalidity == sinfo.uidvalidity)
        .map(|r| (r.source_uid, r))
        .collect();
    if let Some(selection) = ctx.labels.and_then(|l| l.selection(&folder)) {
        // The label policy: only this folder's share is copied here (the rest is copied
        // in another folder, or was before); other labels ride along as keywords.
        messages.retain(|m| mapped.contains_key(&m.uid) || selection.copy.contains(&m.uid));
        let mut dropped = 0;
        for m in &mut messages {
            if let Some(keywords) = selection.keywords.get(&m.uid) {
                let before = keywords.len();
                let kept = flags::flags_for_target(keywords, target.permanent.as_deref());
                dropped += before - kept.len();
                m.flags.extend(kept);
            }
        }
        if dropped > 0 {
            let note = format!(
                "{folder}: the target folder keeps no keywords (PERMANENTFLAGS), {dropped} labels not kept as keywords"
            );
            tracing::warn!(note);
            if !tally.notes.contains(&note) {
                tally.notes.push(note.clone());
                ctx.events.emit(Event::LabelPolicy { note });
            }
        }
        tally.messages = messages.len() as u64;
    }

    // Classify: mapped (maybe with new flags), too large, to copy.
    let append_limit = dst.session().await?.capabilities().append_limit();
    // The largest message the target's profile takes (a provider's limit), if lower.
    let profile_limit = ctx
        .settings
        .pacing
        .target_max_message()
        .filter(|p| append_limit.is_none_or(|a| *p < a));
    let append_limit = profile_limit.or(append_limit);
    let mut flag_changes: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
    let mut to_copy: Vec<SourceMessage> = Vec::new();
    let mut too_large: Vec<SourceMessage> = Vec::new();
    tally.already_present = 0;
    for m in &messages {
        if tally.handled.contains(&m.uid) && !mapped.contains_key(&m.uid) {
            continue; // skipped earlier in this run
        }
        if let Some(row) = mapped.get(&m.uid) {
            if !tally.handled.contains(&m.uid) {
                tally.already_present += 1;
            }
            let want = flags::flags_for_target(&m.flags, target.permanent.as_deref());
            let canon = flags::canonical(&want);
            if canon != row.flags && row.target_uidvalidity == Some(target.uidvalidity) {
                if let Some(t) = row.target_uid {
                    flag_changes
                        .entry(want.join(" "))
                        .or_default()
                        .push((m.uid, t));
                }
            }
        } else if append_limit.is_some_and(|limit| m.size > limit) {
            too_large.push(m.clone());
        } else {
            to_copy.push(m.clone());
        }
    }
    if partial {
        // The messages not listed are as the last complete pass left them: copied.
        let listed = (messages.len() + listing.incomplete.len()) as u64;
        tally.already_present += u64::from(sinfo.exists).saturating_sub(listed);
    }
    // Messages the source would not describe fully: reported, unless copied before.
    for lacking in &listing.incomplete {
        if !partial {
            tally.messages += 1;
        }
        if mapped.contains_key(&lacking.uid) {
            if !tally.handled.contains(&lacking.uid) {
                tally.already_present += 1;
            }
            continue;
        }
        if tally.handled.insert(lacking.uid) {
            skip_incomplete(ctx, &folder, sinfo.uidvalidity, lacking, tally).await?;
        }
    }

    tally.to_copy = to_copy.len() as u64;
    ctx.events.emit(Event::FolderPlanned {
        source: folder.clone(),
        target: plan.target_display(),
        messages: tally.messages,
        to_copy: tally.to_copy,
        bytes_to_copy: to_copy.iter().map(|m| m.size).sum(),
    });

    if !flag_changes.is_empty() {
        propagate_flags(dst, ctx, &folder, sinfo.uidvalidity, flag_changes, tally).await?;
    }
    for m in too_large {
        let limit = append_limit.unwrap_or(0);
        let reason = match profile_limit {
            Some(_) => format!(
                "{} bytes, larger than the largest message the target takes ({limit} bytes, provider limit)",
                m.size
            ),
            None => format!("larger than the target's APPENDLIMIT ({limit} bytes)"),
        };
        skip(src, ctx, &folder, sinfo.uidvalidity, &m, reason, 1, tally).await?;
    }

    // Batches bounded by count and bytes (never above the node's budget); two batches
    // per folder are in memory at most, each reserved from the budget before its fetch
    // and given back once its APPENDs are done.
    let batch_bytes = ctx.settings.pacing.batch_bytes(ctx.settings.batch_bytes);
    let mut batches = budget::batches(
        to_copy,
        ctx.settings.batch_messages,
        batch_bytes,
        &ctx.settings.budget,
    )
    .into_iter();
    let mut in_hand: Option<(FetchOutcome, Reservation)> = match batches.next() {
        Some(b) => Some(paced_fetch(src, ctx, &b).await?),
        None => None,
    };
    while let Some((outcome, reserved)) = in_hand.take() {
        let FetchOutcome { fetched, failed } = outcome;
        for f in failed {
            let attempts = f.attempts;
            skip(
                src,
                ctx,
                &folder,
                sinfo.uidvalidity,
                &f.meta,
                f.reason,
                attempts,
                tally,
            )
            .await?;
        }
        let next = batches.next();
        let (fetched_next, stored) = tokio::join!(
            async {
                match &next {
                    Some(b) => Some(paced_fetch(src, ctx, b).await),
                    None => None,
                }
            },
            async {
                let stored = store_batch(
                    dst,
                    ctx,
                    &folder,
                    sinfo.uidvalidity,
                    plan,
                    &mut target,
                    fetched,
                    tally,
                )
                .await;
                // Appended (or refused): its bytes are no longer in flight, and the
                // next batch's fetch may be waiting for them.
                drop(reserved);
                stored
            }
        );
        let refused = stored?;
        for (meta, words) in refused {
            skip(src, ctx, &folder, sinfo.uidvalidity, &meta, words, 1, tally).await?;
        }
        in_hand = fetched_next.transpose()?;
    }
    ctx.events.emit(Event::FolderDone {
        folder,
        copied: tally.copied,
        already_present: tally.already_present,
        skipped: tally.skipped.len() as u64,
    });
    Ok(())
}

/// Records a message as skipped (with its subject, best effort) and tells the listeners.
#[allow(clippy::too_many_arguments)]
async fn skip(
    src: &mut Conn,
    ctx: &FolderContext<'_>,
    folder: &str,
    uidvalidity: u32,
    meta: &SourceMessage,
    reason: String,
    attempts: u32,
    tally: &mut FolderTally,
) -> Result<()> {
    let subject = fetch::subject_of(src, meta.uid).await;
    let date = flags::parse_internal_date(&meta.internal_date);
    tracing::warn!(folder, uid = meta.uid, size = meta.size, reason = %reason, "message skipped");
    ctx.map
        .record_skip(&SkipRecord {
            folder: folder.to_owned(),
            uidvalidity,
            uid: meta.uid,
            size: Some(meta.size),
            internal_date: date,
            subject: subject.clone(),
            reason: reason.clone(),
            attempts,
        })
        .await?;
    ctx.events.emit(Event::MessageSkipped {
        folder: folder.to_owned(),
        uid: meta.uid,
        reason: reason.clone(),
    });
    tally.handled.insert(meta.uid);
    tally.skipped.push(SkippedMessage {
        folder: folder.to_owned(),
        uid: meta.uid,
        reason,
        size: Some(meta.size),
        date,
        subject,
    });
    Ok(())
}

/// Fetches a batch once the source account's pacing lets its bytes through and the
/// node's budget has room for them (not held during a pacing wait: other jobs may use
/// it meanwhile); the reservation goes with the bytes.
async fn paced_fetch(
    src: &mut Conn,
    ctx: &FolderContext<'_>,
    batch: &[SourceMessage],
) -> Result<(FetchOutcome, Reservation)> {
    {
        // Waiting for the account's caps is a pacing pause, not a stall.
        let _pause = ctx.events.pausing();
        ctx.settings
            .pacing
            .before_fetch(batch.iter().map(|m| m.size))
            .await?;
    }
    let reserved = reserve(ctx, batch).await;
    let outcome = fetch::fetch_batch(src, ctx.profile, batch, ctx.settings.max_attempts).await?;
    Ok((outcome, reserved))
}

/// Reserves a batch's listed bytes from the node's budget. Waiting for room is a pause
/// (other jobs hold it), not a stall.
async fn reserve(ctx: &FolderContext<'_>, batch: &[SourceMessage]) -> Reservation {
    let _pause = ctx.events.pausing();
    ctx.settings
        .budget
        .reserve(batch.iter().map(|m| m.size).sum())
        .await
}

/// Records a message whose listing stayed incomplete as skipped, and tells the listeners.
async fn skip_incomplete(
    ctx: &FolderContext<'_>,
    folder: &str,
    uidvalidity: u32,
    lacking: &Incomplete,
    tally: &mut FolderTally,
) -> Result<()> {
    let date = lacking
        .internal_date
        .as_deref()
        .and_then(flags::parse_internal_date);
    tracing::warn!(folder, uid = lacking.uid, reason = %lacking.reason, "message skipped");
    ctx.map
        .record_skip(&SkipRecord {
            folder: folder.to_owned(),
            uidvalidity,
            uid: lacking.uid,
            size: lacking.size,
            internal_date: date,
            subject: None,
            reason: lacking.reason.clone(),
            attempts: 1,
        })
        .await?;
    ctx.events.emit(Event::MessageSkipped {
        folder: folder.to_owned(),
        uid: lacking.uid,
        reason: lacking.reason.clone(),
    });
    tally.skipped.push(SkippedMessage {
        folder: folder.to_owned(),
        uid: lacking.uid,
        reason: lacking.reason.clone(),
        size: lacking.size,
        date,
        subject: None,
    });
    Ok(())
}

/// A copy recorded in this target folder under an earlier UIDVALIDITY: the folder was
/// made again (or renumbered) since, and the copy may be gone.
fn stale_copy(row: &MapRow, target: &TargetState) -> bool {
    row.state == DONE
        && row.target_folder == target.wire
        && row
            .target_uidvalidity
            .is_some_and(|v| v != target.uidvalidity)
}

/// The target folder has a new UIDVALIDITY: copies recorded under the old one are looked
/// for in it (by size and content, like unsettled APPENDs) and re-mapped where found;
/// the others are forgotten, so this run copies them again.
#[allow(clippy::too_many_arguments)]
async fn refill_recreated_target(
    src: (&mut Conn, u32),
    dst: &mut Conn,
    ctx: &FolderContext<'_>,
    folder: &str,
    target: &mut TargetState,
    exists: u32,
    rows: &[MapRow],
    tally: &mut FolderTally,
) -> Result<()> {
    let stale = rows.iter().filter(|r| stale_copy(r, target)).count();
    tracing::warn!(
        folder,
        target = %target.wire,
        stale,
        "the target folder has a new UIDVALIDITY (made again?); checking what it still holds"
    );
    if exists > 0 {
        // As if each were an APPEND whose reply was lost, anywhere in the folder.
        let as_pending: Vec<MapRow> = rows
            .iter()
            .filter(|r| r.state != PENDING)
            .map(|r| {
                let mut r = r.clone();
                if stale_copy(&r, target) {
                    r.state = PENDING.to_owned();
                    r.target_uidnext_before = Some(1);
                }
                r
            })
            .collect();
        settle_pending(src, dst, ctx, folder, target, &as_pending, tally).await?;
    }
    let rows = ctx.map.folder_rows(folder).await?;
    let mut gone: HashMap<u32, Vec<u32>> = HashMap::new();
    for r in rows.iter().filter(|r| stale_copy(r, target)) {
        gone.entry(r.source_uidvalidity)
            .or_default()
            .push(r.source_uid);
    }
    for (validity, uids) in gone {
        tracing::info!(
            folder,
            messages = uids.len(),
            "copies gone from the recreated target folder; copying them again"
        );
        ctx.map.forget_done(folder, validity, &uids).await?;
    }
    Ok(())
}

/// After a crash or a lost reply: which pending APPENDs did arrive? `src`: the source
/// connection (the folder selected) and its UIDVALIDITY.
async fn settle_pending(
    src: (&mut Conn, u32),
    dst: &mut Conn,
    ctx: &FolderContext<'_>,
    folder: &str,
    target: &mut TargetState,
    rows: &[MapRow],
    tally: &mut FolderTally,
) -> Result<()> {
    let taken: HashSet<u32> = rows
        .iter()
        .filter(|r| r.state == DONE && r.target_uidvalidity == Some(target.uidvalidity))
        .filter_map(|r| r.target_uid)
        .collect();
    let pending: Vec<&MapRow> = rows.iter().filter(|r| r.state == PENDING).collect();
    let mut by_validity: HashMap<u32, Vec<&MapRow>> = HashMap::new();
    for r in &pending {
        by_validity.entry(r.source_uidvalidity).or_default().push(r);
    }
    let mut taken = taken;
    let (src, source_validity) = src;
    for (validity, group) in by_validity {
        let (here, elsewhere): (Vec<&MapRow>, Vec<&MapRow>) = group
            .into_iter()
            .partition(|r| r.target_folder == target.wire);
        if !elsewhere.is_empty() {
            // The folder map changed since: these cannot be checked here; copy them again.
            let uids: Vec<u32> = elsewhere.iter().map(|r| r.source_uid).collect();
            ctx.map.drop_intents(folder, validity, &uids).await?;
        }
        if here.is_empty() {
            continue;
        }
        let floor = here
            .iter()
            .filter_map(|r| r.target_uidnext_before)
            .min()
            .unwrap_or(1);
        let wanted: Vec<Wanted> = here
            .iter()
            .map(|r| Wanted {
                source_uid: r.source_uid,
                size: r.size,
                hash: r.content_hash.clone(),
            })
            .collect();
        // What survives a rewrite of the unmatched ones, looked up once (see `recognise_unmatched`).
        let mut sought: HashMap<u32, Sought> = HashMap::new();
        let mut found = scan(dst, floor, &wanted, &taken).await?;
        recognise_unmatched(
            (&mut *src, validity == source_validity),
            dst,
            floor,
            &here,
            &mut found,
            &taken,
            &mut sought,
            tally,
        )
        .await?;
        if found.iter().any(|(_, t)| t.is_none()) {
            // A killed run's last APPEND may still be being saved by the server (it got the
            // whole command; the client was gone before the reply). Give it time, then
            // look again: re-sending too early is how duplicates are made.
            tokio::time::sleep(ctx.settings.settle_delay).await;
            // A fresh view: servers (Dovecot) do not bring new messages into a session's
            // view during FETCH, so without a new SELECT the second look sees nothing new.
            dst.select(&target.wire, false).await?;
            found = scan(dst, floor, &wanted, &taken).await?;
            recognise_unmatched(
                (&mut *src, validity == source_validity),
                dst,
                floor,
                &here,
                &mut found,
                &taken,
                &mut sought,
                tally,
            )
            .await?;
        }
        let mut done = Vec::new();
        let mut lost = Vec::new();
        for (src_uid, t) in found {
            match t {
                Some(t) => {
                    taken.insert(t);
                    done.push((src_uid, Some(t)));
                    if let Some(bytes) = tally.sent.get(&src_uid) {
                        if tally.handled.insert(src_uid) {
                            tally.copied += 1;
                            tally.bytes_copied += bytes;
                            ctx.events.emit(Event::MessageCopied {
                                folder: folder.to_owned(),
                                uid: src_uid,
                                bytes: *bytes,
                            });
                        }
                    }
                }
                None => lost.push(src_uid),
            }
        }
        tracing::info!(
            folder,
            arrived = done.len(),
            missing = lost.len(),
            "settled APPENDs left pending by an earlier run"
        );
        ctx.map
            .mark_done(folder, validity, target.uidvalidity, &done)
            .await?;
        ctx.map.drop_intents(folder, validity, &lost).await?;
    }
    Ok(())
}

/// Settling pending APPENDs: those of `found` no stored message has the bytes of may be
/// stored changed; looks for them by what survives a rewrite ([`recognise`]). What that is
/// comes from this run's `tally` when this run sent them, else (sent by an earlier run,
/// a process that ended: the map kept only the size, date and hash of the bytes) their
/// Message-ID and Subject are read again from the source (`src`, when the rows are of
/// its current UIDVALIDITY). `sought` keeps it for a second look.
#[allow(clippy::too_many_arguments)]
async fn recognise_unmatched(
    src: (&mut Conn, bool),
    dst: &mut Conn,
    floor: u32,
    rows: &[&MapRow],
    found: &mut [(u32, Option<u32>)],
    taken: &HashSet<u32>,
    sought: &mut HashMap<u32, Sought>,
    tally: &FolderTally,
) -> Result<()> {
    let (src, same_source) = src;
    let unmatched: Vec<u32> = found
        .iter()
        .filter(|(_, t)| t.is_none())
        .map(|(uid, _)| *uid)
        .collect();
    if unmatched.is_empty() {
        return Ok(());
    }
    let mut earlier: Vec<(u32, u64, Option<i64>)> = Vec::new();
    for uid in &unmatched {
        if sought.contains_key(uid) {
            continue;
        }
        if let Some(s) = tally.sought.get(uid) {
            sought.insert(*uid, s.clone());
        } else if let Some(r) = rows.iter().find(|r| r.source_uid == *uid) {
            earlier.push((
                r.source_uid,
                r.size,
                (r.internal_date != 0).then_some(r.internal_date),
            ));
        }
    }
    if !earlier.is_empty() && same_source {
        let session = src.session().await?;
        match recognise::sought_from_source(session, &earlier).await {
            Ok(read) => sought.extend(read.into_iter().map(|s| (s.source_uid, s))),
            Err(e) => {
                src.note_error(&e);
                return Err(e);
            }
        }
    }
    let looked_for: Vec<Sought> = unmatched
        .iter()
        .filter_map(|uid| sought.get(uid).cloned())
        .collect();
    if looked_for.is_empty() {
        return Ok(());
    }
    let mut seen: HashSet<u32> = taken.clone();
    seen.extend(found.iter().filter_map(|(_, t)| *t));
    let session = dst.session().await?;
    let recognised = match recognise::recognise(session, floor, &looked_for, &seen).await {
        Ok(r) => r,
        Err(e) => {
            dst.note_error(&e);
            return Err(e);
        }
    };
    for (src_uid, t) in recognised {
        if let (Some(t), Some(slot)) = (t, found.iter_mut().find(|(u, _)| *u == src_uid)) {
            tracing::info!(
                uid = src_uid,
                target_uid = t,
                "a pending APPEND found on the target stored changed"
            );
            slot.1 = Some(t);
        }
    }
    Ok(())
}

async fn scan(
    dst: &mut Conn,
    floor: u32,
    wanted: &[Wanted],
    taken: &HashSet<u32>,
) -> Result<Vec<(u32, Option<u32>)>> {
    let session = dst.session().await?;
    match append::find_appended(session, floor, wanted, taken).await {
        Ok(found) => Ok(found),
        Err(e) => {
            dst.note_error(&e);
            Err(e)
        }
    }
}

/// The source folder was recreated (new UIDVALIDITY): find the already-copied messages
/// among the new UIDs by their bytes' size and content hash instead of copying them again.
///
/// A map row records the size of the bytes fetched, not the listed `RFC822.SIZE` (an
/// estimate on some servers): the listing only narrows the candidates (same date or same
/// listed size as a copied message), and the fetched bytes decide, through a map keyed by
/// (size, hash), so thousands of messages cost no more than a look-up each.
async fn rematch_after_uidvalidity_change(
    src: &mut Conn,
    ctx: &FolderContext<'_>,
    folder: &str,
    validity: u32,
    messages: &[SourceMessage],
    rows: &[MapRow],
) -> Result<()> {
    let current: HashSet<u32> = rows
        .iter()
        .filter(|r| r.source_uidvalidity == validity)
        .map(|r| r.source_uid)
        .collect();
    let mut old = rematch::CopiedIndex::new(
        rows.iter()
            .filter(|r| r.state == DONE && r.source_uidvalidity != validity),
    );
    let candidates: Vec<SourceMessage> = messages
        .iter()
        .filter(|m| !current.contains(&m.uid))
        .filter(|m| old.may_hold(m.size, flags::parse_internal_date(&m.internal_date)))
        .cloned()
        .collect();
    tracing::info!(
        folder,
        candidates = candidates.len(),
        "source UIDVALIDITY changed; re-matching by content"
    );
    let mut rematched = 0;
    let chunks = budget::batches(
        candidates,
        ctx.settings.batch_messages,
        ctx.settings.batch_bytes,
        &ctx.settings.budget,
    );
    for chunk in &chunks {
        let _reserved = reserve(ctx, chunk).await;
        let outcome =
            fetch::fetch_batch(src, ctx.profile, chunk, ctx.settings.max_attempts).await?;
        for Fetched { meta, bytes } in outcome.fetched {
            if let Some(row) = old.take(bytes.len() as u64, &content_hash(&bytes)) {
                ctx.map
                    .rekey(
                        folder,
                        (row.source_uidvalidity, row.source_uid),
                        (validity, meta.uid),
                    )
                    .await?;
                rematched += 1;
            }
        }
    }
    tracing::info!(folder, rematched, "re-matched after UIDVALIDITY change");
    Ok(())
}

async fn propagate_flags(
    dst: &mut Conn,
    ctx: &FolderContext<'_>,
    folder: &str,
    source_validity: u32,
    changes: HashMap<String, Vec<(u32, u32)>>,
    tally: &mut FolderTally,
) -> Result<()> {
    for (flag_text, pairs) in changes {
        let flag_list: Vec<String> = flag_text.split_whitespace().map(str::to_owned).collect();
        let target_uids: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let mut patience = dst.patience();
        let done = loop {
            let session = dst.session().await?;
            let done = match session
                .uid_store(&uid_set(&target_uids), "FLAGS", &flag_list)
                .await
            {
                Ok(d) => d,
                Err(e) => {
                    dst.note_error(&e);
                    return Err(e);
                }
            };
            match classify(
                done.status,
                done.code.as_deref(),
                &done.text,
                CommandKind::Store,
            ) {
                Refusal::Transient { suggested } => {
                    dst.wait_out(&mut patience, &done.words(), suggested)
                        .await?
                }
                _ => break done,
            }
        };
        if done.status != Status::Ok {
            tracing::warn!(folder, words = %done.words(), "target refused a flag update");
            continue;
        }
        let canon = flags::canonical(&flag_list);
        let updates: Vec<(u32, String)> = pairs.iter().map(|p| (p.0, canon.clone())).collect();
        ctx.map.set_flags(folder, source_validity, &updates).await?;
        tally.flags_updated += pairs.len() as u64;
    }
    if tally.flags_updated > 0 {
        ctx.events.emit(Event::FlagsUpdated {
            folder: folder.to_owned(),
            messages: tally.flags_updated,
        });
    }
    Ok(())
}

/// Appends a fetched batch. Intents first; then MULTIAPPEND (or APPEND one by one);
/// after a lost connection, looks on the target before sending anything again.
/// Returns the messages the target refused, with its words.
#[allow(clippy::too_many_arguments)]
async fn store_batch(
    dst: &mut Conn,
    ctx: &FolderContext<'_>,
    folder: &str,
    source_validity: u32,
    plan: &FolderPlan,
    target: &mut TargetState,
    fetched: Vec<Fetched>,
    tally: &mut FolderTally,
) -> Result<Vec<(SourceMessage, String)>> {
    if fetched.is_empty() {
        return Ok(Vec::new());
    }
    let mut outgoing: Vec<Outgoing<'_>> = fetched
        .iter()
        .map(|f| Outgoing {
            source_uid: f.meta.uid,
            flags: flags::flags_for_target(&f.meta.flags, target.permanent.as_deref()),
            internal_date: &f.meta.internal_date,
            bytes: &f.bytes,
            hash: content_hash(&f.bytes),
        })
        .collect();
    let intents: Vec<MapRow> = outgoing
        .iter()
        .zip(&fetched)
        .map(|(o, f)| MapRow {
            source_folder: folder.to_owned(),
            source_uidvalidity: source_validity,
            source_uid: o.source_uid,
            target_folder: target.wire.clone(),
            target_uidvalidity: None,
            target_uid: None,
            state: PENDING.to_owned(),
            target_uidnext_before: Some(target.floor),
            size: o.bytes.len() as u64,
            internal_date: flags::parse_internal_date(&f.meta.internal_date).unwrap_or(0),
            content_hash: o.hash.clone(),
            flags: flags::canonical(&o.flags),
            identity: ctx.labels.and_then(|l| l.identity_of(folder, o.source_uid)),
        })
        .collect();
    ctx.map.write_intents(&intents).await?;
    for (r, o) in intents.iter().zip(&outgoing) {
        tally.sent.insert(r.source_uid, r.size);
        tally.sought.insert(
            r.source_uid,
            Sought::of(o.source_uid, o.bytes, o.internal_date),
        );
    }

    let mut remaining: Vec<usize> = (0..outgoing.len()).collect();
    let mut refused: Vec<(SourceMessage, String)> = Vec::new();
    let mut tries: HashMap<usize, u32> = HashMap::new();
    let mut created = false;
    let mut multi = remaining.len() > 1;
    let mut patience = dst.patience();
    let mut admitted: HashSet<usize> = HashSet::new();
    // (index, target UID) of every message stored with a known UID: read back at the end.
    let mut landed: Vec<(usize, u32)> = Vec::new();
    while !remaining.is_empty() {
        let mut group: Vec<usize> = if multi && dst.session().await?.capabilities().multiappend() {
            remaining.clone()
        } else {
            multi = false;
            vec![remaining[0]]
        };
        // Within the target account's upload caps (a pause when nothing more may go).
        // A message is counted once, however often a throttled APPEND sends it again.
        let fresh: Vec<usize> = group
            .iter()
            .copied()
            .filter(|i| !admitted.contains(i))
            .collect();
        if !fresh.is_empty() {
            let pause = ctx.events.pausing();
            let n = ctx
                .settings
                .pacing
                .before_append(fresh.iter().map(|&i| outgoing[i].bytes.len() as u64))
                .await?;
            drop(pause);
            admitted.extend(&fresh[..n]);
            group.retain(|i| admitted.contains(i));
        }
        let msgs: Vec<Outgoing<'_>> = group.iter().map(|&i| outgoing[i].clone()).collect();
        let session = dst.session().await?;
        let uidplus = session.capabilities().uidplus();
        let result = append::append(session, &target.wire, &msgs).await;
        let stored: Vec<(usize, Option<u32>)> = match result {
            Ok(AppendReply::Stored(Some((validity, uids))))
                if uidplus && uids.len() == group.len() && validity == target.uidvalidity =>
            {
                group
                    .iter()
                    .copied()
                    .zip(uids.into_iter().map(Some))
                    .collect()
            }
            Ok(AppendReply::Stored(_)) => {
                // The server took them but did not say where: look. A message it stored
                // but changed (so no hash matches) is still stored: never send it twice.
                let (found, missing) =
                    look_again(dst, ctx, target, &outgoing, &group, false).await?;
                let mut all: Vec<(usize, Option<u32>)> =
                    found.into_iter().map(|(i, u)| (i, Some(u))).collect();
                all.extend(missing.into_iter().map(|i| (i, None)));
                all
            }
            Ok(AppendReply::TryCreate(words)) => {
                if created {
                    for &i in &group {
                        refused.push((fetched[i].meta.clone(), words.clone()));
                    }
                    remaining.retain(|i| !group.contains(i));
                    continue;
                }
                created = true;
                let session = dst.session().await?;
                folders::create_folder(session, ctx.target_tree, &plan.target_path).await?;
                dst.select(&target.wire, false).await?;
                continue;
            }
            Ok(AppendReply::Throttled { words, suggested }) => {
                // Refused for now: wait, then send the same messages again.
                dst.wait_out(&mut patience, &words, suggested).await?;
                continue;
            }
            Ok(AppendReply::Refused(words)) => {
                if group.len() > 1 {
                    // One message spoils a MULTIAPPEND (it is all or nothing): go one by one.
                    multi = false;
                    continue;
                }
                if let Some(what) = drop_what_was_named(&mut outgoing[group[0]], &words, folder) {
                    let uid = outgoing[group[0]].source_uid;
                    tally.altered.push(format!("{folder} UID {uid}: {what}"));
                    ctx.events.emit(Event::MessageAltered {
                        folder: folder.to_owned(),
                        uid,
                        what,
                    });
                    continue;
                }
                refused.push((fetched[group[0]].meta.clone(), words));
                remaining.retain(|i| !group.contains(i));
                continue;
            }
            Err(e) if e.is_connection_failure() => {
                dst.note_error(&e);
                tracing::warn!(folder, error = %e, "connection lost during APPEND; checking the target before sending again");
                let (mut found, mut missing) =
                    look_again(dst, ctx, target, &outgoing, &group, false).await?;
                if !missing.is_empty() {
                    // The server may still be saving (or indexing) what it received: look
                    // again later, in a fresh view (see `settle_pending`).
                    tokio::time::sleep(ctx.settings.settle_delay).await;
                    let (more, still) =
                        look_again(dst, ctx, target, &outgoing, &missing, true).await?;
                    found.extend(more);
                    missing = still;
                }
                for &i in &missing {
                    let n = tries.entry(i).or_insert(0);
                    *n += 1;
                    if *n >= ctx.settings.max_attempts {
                        refused.push((
                            fetched[i].meta.clone(),
                            format!("the target dropped the connection each time this message was appended ({n} tries): {e}"),
                        ));
                        remaining.retain(|r| *r != i);
                    }
                }
                if group.len() > 1 && !missing.is_empty() {
                    multi = false;
                }
                found.into_iter().map(|(i, u)| (i, Some(u))).collect()
            }
            Err(e) => return Err(e),
        };
        if !stored.is_empty() {
            let pairs: Vec<(u32, Option<u32>)> = stored
                .iter()
                .map(|&(i, uid)| (outgoing[i].source_uid, uid))
                .collect();
            ctx.map
                .mark_done(folder, source_validity, target.uidvalidity, &pairs)
                .await?;
            let uids: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            ctx.map.clear_skips(folder, source_validity, &uids).await?;
            for &(i, uid) in &stored {
                if let Some(uid) = uid {
                    landed.push((i, uid));
                    target.taken.insert(uid);
                    target.floor = target.floor.max(uid.saturating_add(1));
                }
                let bytes = outgoing[i].bytes.len() as u64;
                tally.handled.insert(outgoing[i].source_uid);
                tally.copied += 1;
                tally.bytes_copied += bytes;
                ctx.events.emit(Event::MessageCopied {
                    folder: folder.to_owned(),
                    uid: outgoing[i].source_uid,
                    bytes,
                });
            }
            remaining.retain(|i| !stored.iter().any(|(s, _)| s == i));
        }
    }
    let refused_uids: Vec<u32> = refused.iter().map(|(m, _)| m.uid).collect();
    ctx.map
        .drop_intents(folder, source_validity, &refused_uids)
        .await?;
    if ctx.settings.read_back {
        read_back(
            dst,
            ctx,
            folder,
            source_validity,
            target,
            &outgoing,
            &fetched,
            &landed,
            tally,
        )
        .await?;
    }
    Ok(refused)
}

/// What the target holds of the batch just stored: the map records its flags, and what
/// it changed or did not keep is reported (see [`verify`]).
#[allow(clippy::too_many_arguments)]
async fn read_back(
    dst: &mut Conn,
    ctx: &FolderContext<'_>,
    folder: &str,
    source_validity: u32,
    target: &TargetState,
    outgoing: &[Outgoing<'_>],
    fetched: &[Fetched],
    landed: &[(usize, u32)],
    tally: &mut FolderTally,
) -> Result<()> {
    // What each message should hold: the flags sent, and those not sent because the
    // target's PERMANENTFLAGS leaves them out (reported too, not hidden). A flag the
    // target refused by name was reported already, when it was taken away.
    let wanted: Vec<Vec<String>> = landed
        .iter()
        .map(|&(i, _)| {
            let mut want = outgoing[i].flags.clone();
            let all = flags::flags_for_target(&fetched[i].meta.flags, None);
            let allowed = flags::flags_for_target(&all, target.permanent.as_deref());
            want.extend(
                all.into_iter()
                    .filter(|f| !allowed.iter().any(|a| a.eq_ignore_ascii_case(f))),
            );
            want
        })
        .collect();
    let appended: Vec<Appended<'_>> = landed
        .iter()
        .zip(&wanted)
        .map(|(&(i, uid), want)| Appended {
            source_uid: outgoing[i].source_uid,
            target_uid: uid,
            flags: want,
            bytes: outgoing[i].bytes,
        })
        .collect();
    let started = std::time::Instant::now();
    let Some(held) = verify::read_back(dst, target.permanent.as_deref(), &appended).await? else {
        return Ok(());
    };
    tracing::debug!(
        folder,
        messages = appended.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "read back after APPEND"
    );
    let mut updates = Vec::new();
    for (h, a) in held.iter().zip(&appended) {
        let canon = flags::canonical(&h.flags);
        if canon != flags::canonical(a.flags) {
            updates.push((h.source_uid, canon));
        }
        for what in &h.altered {
            tracing::warn!(folder, uid = h.source_uid, %what, "the target altered a message");
            tally
                .altered
                .push(format!("{folder} UID {}: {what}", h.source_uid));
            ctx.events.emit(Event::MessageAltered {
                folder: folder.to_owned(),
                uid: h.source_uid,
                what: what.clone(),
            });
        }
    }
    if !updates.is_empty() {
        ctx.map.set_flags(folder, source_validity, &updates).await?;
    }
    Ok(())
}

/// A refusal that names one of the message's keywords, or its date: takes that away so
/// the message can be sent again without it. Returns what was taken away, in words for
/// the report; `None` when the words name neither (or it is gone already).
fn drop_what_was_named(message: &mut Outgoing<'_>, words: &str, folder: &str) -> Option<String> {
    let lower = words.to_ascii_lowercase();
    let named = message.flags.iter().position(|f| {
        let f = f.to_ascii_lowercase();
        // The first word is the status (`NO`), never a flag's name.
        lower
            .split(|c: char| c.is_whitespace() || matches!(c, '"' | '(' | ')' | ',' | ':' | ';'))
            .skip(1)
            .any(|w| w == f || w.trim_end_matches('.') == f)
    });
    if let Some(i) = named {
        let flag = message.flags.remove(i);
        tracing::warn!(folder, uid = message.source_uid, %flag, %words, "the target refused a flag; appending without it");
        return Some(format!(
            "copied without the flag {flag} (the target said: {})",
            words.trim()
        ));
    }
    let names_date = lower.contains("date");
    if names_date && !message.internal_date.trim().is_empty() {
        tracing::warn!(folder, uid = message.source_uid, date = message.internal_date, %words, "the target refused the date; appending without it (the server stamps its own)");
        let date = std::mem::take(&mut message.internal_date);
        return Some(format!(
            "copied without its date {} (the target stamped its own; it said: {})",
            date.trim(),
            words.trim()
        ));
    }
    None
}

/// [`find`] after a lost connection, itself kept going through further drops: giving up
/// here would leave the batch to a retry that can only match exact bytes. `reselect`:
/// open the folder again first, for a fresh view.
async fn look_again(
    dst: &mut Conn,
    ctx: &FolderContext<'_>,
    target: &mut TargetState,
    outgoing: &[Outgoing<'_>],
    group: &[usize],
    reselect: bool,
) -> Result<(Vec<(usize, u32)>, Vec<usize>)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let looked = async {
            if reselect {
                dst.select(&target.wire, false).await?;
            }
            find(dst, target, outgoing, group).await
        }
        .await;
        match looked {
            Err(e) if e.is_connection_failure() && attempt < ctx.settings.max_attempts.max(2) => {
                dst.note_error(&e);
                tracing::warn!(error = %e, attempt, "connection lost while looking for appended messages; looking again");
            }
            other => return other,
        }
    }
}

/// Finds which of `group` are on the target now. Returns (found (index, uid), missing).
async fn find(
    dst: &mut Conn,
    target: &mut TargetState,
    outgoing: &[Outgoing<'_>],
    group: &[usize],
) -> Result<(Vec<(usize, u32)>, Vec<usize>)> {
    let wanted: Vec<Wanted> = group
        .iter()
        .map(|&i| Wanted {
            source_uid: outgoing[i].source_uid,
            size: outgoing[i].bytes.len() as u64,
            hash: outgoing[i].hash.clone(),
        })
        .collect();
    let found = scan(dst, target.floor, &wanted, &target.taken).await?;
    let mut hits = Vec::new();
    let mut missing = Vec::new();
    for (&i, (_, t)) in group.iter().zip(found) {
        match t {
            Some(uid) => hits.push((i, uid)),
            None => missing.push(i),
        }
    }
    if missing.is_empty() {
        return Ok((hits, missing));
    }
    // No stored message has the bytes sent: the target may have changed them. Look again
    // by what survives a rewrite (Message-ID, our date, a size window, the Subject).
    let sought: Vec<Sought> = missing
        .iter()
        .map(|&i| {
            Sought::of(
                outgoing[i].source_uid,
                outgoing[i].bytes,
                outgoing[i].internal_date,
            )
        })
        .collect();
    let mut taken = target.taken.clone();
    taken.extend(hits.iter().map(|h| h.1));
    let session = dst.session().await?;
    let recognised = match recognise::recognise(session, target.floor, &sought, &taken).await {
        Ok(r) => r,
        Err(e) => {
            dst.note_error(&e);
            return Err(e);
        }
    };
    let mut still = Vec::new();
    for (&i, (_, t)) in missing.iter().zip(recognised) {
        match t {
            Some(uid) => {
                tracing::info!(
                    uid = outgoing[i].source_uid,
                    target_uid = uid,
                    "found on the target stored changed (by Message-ID, date, size and Subject)"
                );
                hits.push((i, uid));
            }
            None => still.push(i),
        }
    }
    Ok((hits, still))
}

/// An engine error that ends the whole job, not just this folder.
pub fn stops_job(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::OverQuota { .. }
            | EngineError::Paused { .. }
            | EngineError::Database(_)
            | EngineError::Login { .. }
            | EngineError::LeaseLost
            | EngineError::Token {
                kind: crate::engine::TokenErrorKind::Revoked
                    | crate::engine::TokenErrorKind::Misconfigured,
                ..
            }
    )
}
