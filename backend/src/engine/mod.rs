//! The IMAP copy engine: copies whole mailboxes from a source to a target server exactly
//! (bytes, flags, INTERNALDATE, folders), with a durable UID map so that re-runs copy only
//! what is new and a crash at any instant neither loses nor duplicates a message.
//!
//! It knows nothing of HTTP: callers give [`Settings`] and a database pool, and read
//! [`Event`]s and the final [`Report`].
//!
//! Layout, one room per concern:
//! - `imap/`: one server connection (wire, session, capabilities, endpoint, conn, utf7);
//! - `auth/`: logging in (LOGIN, SASL PLAIN, OAuth 2.0 bearer tokens over
//!   OAUTHBEARER/XOAUTH2, one forced token refresh on refusal);
//! - `plan/`: the folders on both sides and where each one goes;
//! - `copy/`: one folder's copy (listing, fetch, append, flags);
//! - `uidmap` (the durable map and journal), `events` (what a run reports);
//! - `gmail/`: label-style sources and targets (identity, label policy, label COPYs);
//! - `pacing/`: caps per account shared by all nodes (connection slots, bytes per day,
//!   messages per hour, largest message);
//! - `retry/`: refusals classified in one place, backoff with jitter, patience, waiting.

pub mod auth;
pub mod copy;
pub mod error;
pub mod events;
pub mod gmail;
pub mod imap;
pub mod limits;
pub mod pacing;
pub mod plan;
pub mod retry;
pub mod uidmap;
pub mod watchdog;

pub use auth::{AccessToken, StaticToken, TokenError, TokenErrorKind, TokenHandle, TokenSource};
pub use error::{EngineError, Side};
pub use events::{Event, Events, FailedFolder, Report, SkippedMessage};
pub use imap::conn::Backoff;
pub use imap::endpoint::{Auth, Endpoint, Password, Security};
pub use limits::Limits;
pub use plan::folders::{FolderPlan, FolderRules};
pub use uidmap::UidMap;

use copy::fetch::ServerProfile;
use copy::folder::{FolderContext, FolderTally};
use imap::conn::Conn;
use imap::name::WireName;
use sqlx::AnyPool;
use std::collections::VecDeque;
use std::sync::Mutex;
use tracing::Instrument;

/// Everything one run needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: Endpoint,
    pub target: Endpoint,
    pub rules: FolderRules,
    /// Plan only: list folders and what would be copied; change nothing.
    pub dry_run: bool,
    /// Folders copied at once, each over its own pair of connections.
    pub connections: usize,
    /// Most messages per fetch/MULTIAPPEND batch.
    pub batch_messages: usize,
    /// Most bytes per batch. At most two batches per connection pair are in memory
    /// (one being fetched, one being appended), and all of them together within
    /// [`Settings::budget`]; a batch is never larger than the budget.
    pub batch_bytes: u64,
    /// Tries for a message that kills the connection, and for a whole folder after drops.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// How long to wait before deciding that an APPEND left pending by an earlier
    /// (killed) run never arrived.
    pub settle_delay: std::time::Duration,
    /// After each appended batch, read back what the target holds (one `UID FETCH
    /// (FLAGS RFC822.SIZE)`): dropped flags are given again, alterations reported.
    pub read_back: bool,
    /// The lease owner when a portal worker runs the job: every journal write first
    /// checks the job is still leased to it, so a worker whose lease another node took
    /// over stops before it sends anything more (a fencing token). `None` for the
    /// command line.
    pub lease_owner: Option<String>,
    /// What either server may make the engine hold or wait for (largest message...).
    pub limits: Limits,
    /// Label-style sources and targets (Gmail): detection and policy.
    pub labels: gmail::LabelOptions,
    /// Pacing of each side's account by its server profile's caps (connections at once,
    /// messages per hour, bytes per day, largest message), shared by all nodes through
    /// the database. The default paces nothing and costs nothing.
    pub pacing: pacing::Pacers,
    /// How long one command may keep being refused for now (throttled, "Server
    /// Unavailable") before the run ends with [`EngineError::Paused`] and the server's
    /// words; until then each refusal is waited out (the server's suggested wait, or
    /// `retry`'s backoff) and the same command is sent again.
    pub patience: std::time::Duration,
    /// How waits between such retries grow when the server suggests none, and the
    /// longest one slept in-process (a longer one pauses the run instead).
    pub retry: retry::RetryPolicy,
    /// A run that makes no progress this long (no message settled, no folder finished,
    /// outside announced waits) is stopped, its connections closed, and started again;
    /// after `max_attempts` such stalls in a row it ends with [`EngineError::Stalled`].
    /// `None`: never (see [`watchdog`]).
    pub stall_timeout: Option<std::time::Duration>,
    /// Message bytes fetched and not yet appended, shared by every job of the node (or
    /// process): clone one budget into each job's settings (see [`copy::budget`]).
    pub budget: copy::budget::ByteBudget,
}

/// The default stall timeout: 30 minutes without progress.
pub const DEFAULT_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

impl Settings {
    pub fn new(source: Endpoint, target: Endpoint) -> Self {
        Settings {
            source,
            target,
            rules: FolderRules::default(),
            dry_run: false,
            connections: 3,
            batch_messages: 100,
            batch_bytes: 16 << 20,
            max_attempts: 3,
            backoff: Backoff::default(),
            settle_delay: std::time::Duration::from_secs(3),
            read_back: true,
            lease_owner: None,
            limits: Limits::default(),
            labels: gmail::LabelOptions::default(),
            pacing: pacing::Pacers::default(),
            patience: retry::wait::DEFAULT_PATIENCE,
            retry: retry::RetryPolicy::default(),
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
            budget: copy::budget::ByteBudget::default(),
        }
    }

    /// A connection to one side, waiting out refusals as these settings say.
    fn conn(&self, side: Side, events: &Events) -> Conn {
        let endpoint = match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        };
        Conn::new(endpoint.clone(), self.backoff, self.limits)
            .paced(self.pacing.of(side))
            .waiting(retry::Waiter {
                events: events.clone(),
                policy: self.retry,
                patience: self.patience,
            })
    }
}

/// What a dry run shows.
#[derive(Debug, Clone)]
pub struct PlannedFolder {
    pub plan: FolderPlan,
    pub messages: u64,
    pub already_mapped: u64,
}

/// The result of [`run`]: the report, and for dry runs the folder plan.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub report: Report,
    pub planned: Vec<PlannedFolder>,
}

/// Runs one migration (or re-run) to the end. Fatal errors (login refused, database)
/// are errors; per-message and per-folder problems are in the report.
pub async fn run(
    settings: &Settings,
    pool: &AnyPool,
    events: Events,
) -> Result<Outcome, EngineError> {
    let job_id = uidmap::find_or_create_job(
        pool,
        &settings.source.account_key(),
        &settings.target.account_key(),
    )
    .await?;
    let span = tracing::info_span!("job", job = %job_id);
    let Some(timeout) = settings.stall_timeout.filter(|t| !t.is_zero()) else {
        return run_job(settings, pool, events, job_id)
            .instrument(span)
            .await;
    };
    // Stalls in a row; an attempt that settled messages before it stalled starts the
    // count anew (the link is slow or flaky, not dead).
    let mut stalls = 0;
    // What stopped attempts copied: the last attempt finds those copies already present.
    let mut carried = watchdog::Carried::default();
    loop {
        let dog = watchdog::Watchdog::new(timeout);
        let attempt = run_job(
            settings,
            pool,
            events.watched_by(dog.clone()),
            job_id.clone(),
        )
        .instrument(span.clone());
        // Dropping the attempt closes its connections (and frees its pacing slots).
        let stall = tokio::select! {
            result = attempt => {
                return result.map(|mut outcome| {
                    let r = &mut outcome.report;
                    r.copied += carried.copied;
                    r.already_present = r.already_present.saturating_sub(carried.copied);
                    r.bytes_copied += carried.bytes_copied;
                    r.flags_updated += carried.flags_updated;
                    outcome
                });
            }
            stall = dog.stalled() => stall,
        };
        carried.copied += stall.carried.copied;
        carried.bytes_copied += stall.carried.bytes_copied;
        carried.flags_updated += stall.carried.flags_updated;
        stalls = if stall.settled > 0 { 1 } else { stalls + 1 };
        let retrying = stalls < settings.max_attempts.max(1);
        let words = format!(
            "{stall}; {}",
            if retrying { "retrying" } else { "giving up" }
        );
        span.in_scope(|| tracing::warn!(stalls, "{words}"));
        events.emit(Event::Stalled {
            words: words.clone(),
            retrying,
        });
        if !retrying {
            return Err(EngineError::Stalled {
                what: stall.to_string(),
            });
        }
    }
}

async fn run_job(
    settings: &Settings,
    pool: &AnyPool,
    events: Events,
    job_id: String,
) -> Result<Outcome, EngineError> {
    let map = UidMap::new(pool.clone(), job_id.clone()).fenced_by(settings.lease_owner.clone());
    let (mut src, mut dst) = connection_pair(settings, &events);
    // The first connections say plainly why they fail (wrong password, no TLS...).
    let (from, to) = tokio::join!(src.connect_once(), dst.connect_once());
    from?;
    to?;
    let source_tree = with_retries(settings, &mut src, |s| {
        Box::pin(plan::folders::list_tree(s))
    })
    .await?;
    let target_tree = with_retries(settings, &mut dst, |s| {
        Box::pin(plan::folders::list_tree(s))
    })
    .await?;
    let label_style = gmail::is_label_style(
        src.session().await?.capabilities(),
        &source_tree,
        settings.labels.mode,
    );
    let target_is_gmail = dst
        .session()
        .await?
        .capabilities()
        .has(gmail::GMAIL_CAPABILITY);
    let mut rules = settings.rules.clone();
    if label_style {
        rules.all_mail_target = Some(settings.labels.archive_folder.clone());
    }
    let mut plans = plan::folders::plan_folders(&source_tree, &target_tree, &rules);
    // Rows an earlier version kept under a non-standard name's display form move to its
    // exact-bytes key, unless another source folder now has that key.
    if !settings.dry_run {
        for plan in &plans {
            let Some(old) = plan.source.legacy_map_key() else {
                continue;
            };
            let claimed = source_tree
                .folders
                .iter()
                .filter(|f| f.map_key() == old || f.legacy_map_key().as_ref() == Some(&old))
                .count();
            if claimed == 1 {
                let moved = map.adopt_folder(&old, &plan.source.map_key()).await?;
                if moved > 0 {
                    tracing::info!(folder = %plan.source.map_key(), moved, "UID map rows of an earlier version's name taken over");
                }
            }
        }
    }
    // A job keeps each folder's target across runs (unless --map says otherwise now).
    let remembered = map.folder_targets().await?;
    for plan in &mut plans {
        let source = plan.source.map_key();
        if plan.reason != "--map" {
            if let Some(earlier) = remembered
                .get(&source)
                .filter(|t| **t != plan.target_display())
            {
                let path = earlier.split('/').map(str::to_owned).collect();
                plan.retarget(&target_tree, path, "as in earlier runs");
            }
        }
        if !settings.dry_run && remembered.get(&source) != Some(&plan.target_display()) {
            map.remember_folder(&source, &plan.target_display()).await?;
        }
    }
    tracing::info!(folders = plans.len(), "folder plan ready");

    // A label-style source: list every folder first and decide where each message goes.
    let labels = if label_style {
        let mut attempt = 0;
        let plan = loop {
            attempt += 1;
            let result = gmail::prepare(
                &mut src,
                &plans,
                &map,
                &settings.labels,
                target_is_gmail && settings.labels.labels_as_folders,
            )
            .await;
            match result {
                Err(e) if e.is_connection_failure() && attempt < settings.max_attempts + 2 => {
                    tracing::warn!(error = %e, attempt, "connection lost while listing for the label policy; again");
                    src.note_error(&e);
                }
                other => break other?,
            }
        };
        for note in &plan.notes {
            tracing::info!(note, "label policy");
            events.emit(Event::LabelPolicy { note: note.clone() });
        }
        Some(plan)
    } else {
        None
    };
    let mut outcome = Outcome {
        report: Report {
            job_id: job_id.clone(),
            folders: plans.len() as u64,
            ..Report::default()
        },
        planned: Vec::new(),
    };
    if let Some(plan) = &labels {
        outcome.report.label_policy = plan.notes.clone();
    }
    outcome.report.left_out = source_tree
        .left_out
        .iter()
        .map(|(f, reason)| format!("{}: {reason}", f.display()))
        .collect();
    outcome.report.renamed = plans
        .iter()
        .filter_map(|p| p.source.renamed_note(&p.target_display(), &p.target_wire))
        .collect();
    if settings.dry_run {
        for plan in plans {
            let wire = plan.source.wire.clone();
            let status = with_retries(settings, &mut src, |s| {
                Box::pin(s.status_owned(wire.clone()))
            })
            .await?;
            let mapped = map
                .folder_rows(&plan.source.map_key())
                .await?
                .iter()
                .filter(|r| r.state == uidmap::DONE && r.source_uidvalidity == status.uidvalidity)
                .count() as u64;
            events.emit(Event::FolderPlanned {
                source: plan.source.display(),
                target: plan.target_display(),
                messages: u64::from(status.exists),
                to_copy: u64::from(status.exists).saturating_sub(mapped),
                bytes_to_copy: 0,
            });
            outcome.planned.push(PlannedFolder {
                plan,
                messages: u64::from(status.exists),
                already_mapped: mapped,
            });
        }
        src.close().await;
        dst.close().await;
        return Ok(outcome);
    }

    // Create target folders first, parents before children (the plan is sorted). A folder
    // the target refuses to create fails alone: the others are still copied.
    let mut not_created: Vec<FailedFolder> = Vec::new();
    let existed: std::collections::HashSet<String> = plans
        .iter()
        .filter(|p| p.target_exists)
        .map(|p| p.source.map_key())
        .collect();
    let mut creatable = Vec::with_capacity(plans.len());
    for mut plan in plans {
        if !plan.target_exists {
            let path = plan.target_path.clone();
            let tree = target_tree.clone();
            let created = with_retries(settings, &mut dst, |s| {
                Box::pin(plan::folders::create_folder_owned(
                    s,
                    tree.clone(),
                    path.clone(),
                ))
            })
            .await;
            match created {
                Ok(()) => plan.target_exists = true,
                Err(e @ EngineError::Refused { .. }) => {
                    not_created.push(creation_failed(settings, &mut src, &plan, &e).await);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        // Already subscribed on the target (LSUB said so): nothing to send.
        if plan.subscribe
            && !target_tree
                .subscribed
                .contains(&WireName::from(plan.target_wire.as_str()))
        {
            let wire = plan.target_wire.clone();
            with_retries(settings, &mut dst, |s| {
                Box::pin(plan::folders::subscribe_owned(s, wire.clone()))
            })
            .await?;
        }
        creatable.push(plan);
    }
    let plans = creatable;

    let all_plans = plans.clone();
    let profile = ServerProfile::default();
    // What changed since the last complete pass of each folder (CONDSTORE sources; see
    // `copy::changes`): unchanged folders are done here, without a SELECT on either side.
    let looks = if labels.is_some() {
        Default::default()
    } else {
        copy::changes::look_all(settings, &mut src, &mut dst, &map, &plans, &existed).await?
    };
    let mut results: Vec<(FolderPlan, FolderTally, Option<String>)> = Vec::new();
    let mut to_pass = VecDeque::with_capacity(plans.len());
    for plan in plans {
        let folder = plan.source.display();
        match looks.get(&plan.source.map_key()).map(|l| l.decision) {
            Some(copy::changes::Decision::Unchanged { messages }) => {
                let messages = u64::from(messages);
                events.emit(Event::FolderPlanned {
                    source: folder.clone(),
                    target: plan.target_display(),
                    messages,
                    to_copy: 0,
                    bytes_to_copy: 0,
                });
                events.emit(Event::FolderDone {
                    folder,
                    copied: 0,
                    already_present: messages,
                    skipped: 0,
                });
                let tally = FolderTally {
                    messages,
                    already_present: messages,
                    ..FolderTally::default()
                };
                results.push((plan, tally, None));
            }
            _ => to_pass.push_back(plan),
        }
    }
    if !results.is_empty() {
        tracing::info!(
            folders = results.len(),
            "folders unchanged since the last complete pass (CONDSTORE): not listed"
        );
    }
    let queue = Mutex::new(to_pass);
    let stopped: Mutex<Option<String>> = Mutex::new(None);
    // An error that ends the whole job (lease lost, database, refused login): the other
    // folder workers stop too, and the run returns it.
    let fatal: Mutex<Option<EngineError>> = Mutex::new(None);
    let results: Mutex<Vec<(FolderPlan, FolderTally, Option<String>)>> = Mutex::new(results);
    let ctx = FolderContext {
        settings,
        map: &map,
        events: &events,
        profile: &profile,
        target_tree: &target_tree,
        labels: labels.as_ref(),
    };
    let workers = settings.connections.max(1);
    let mut first = Some((src, dst));
    let mut pairs = Vec::new();
    for _ in 0..workers {
        pairs.push(
            first
                .take()
                .unwrap_or_else(|| connection_pair(settings, &events)),
        );
    }
    let worker_futures = pairs.into_iter().map(|(mut src, mut dst)| {
        let ctx = &ctx;
        let queue = &queue;
        let stopped = &stopped;
        let fatal = &fatal;
        let results = &results;
        let looks = &looks;
        async move {
            loop {
                let halted = stopped.lock().map(|s| s.is_some()).unwrap_or(true)
                    || fatal.lock().map(|f| f.is_some()).unwrap_or(true);
                if halted {
                    break;
                }
                let Some(plan) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                    break;
                };
                let span = tracing::info_span!("folder", source = %plan.source.display(), target = %plan.target_display());
                let look = looks.get(&plan.source.map_key());
                let since = match look.map(|l| l.decision) {
                    Some(copy::changes::Decision::Since(modseq)) => Some(modseq),
                    _ => None,
                };
                let (tally, error) = copy_with_retries(&mut src, &mut dst, ctx, &plan, since).instrument(span.clone()).await;
                // Only a pass that copied all it listed lets later runs skip or narrow.
                if let (None, true, Some(look), Some(target_validity)) =
                    (&error, tally.skipped.is_empty(), look, tally.target_uidvalidity)
                {
                    if let Some(state) = look.state_after(&plan.target_wire, target_validity) {
                        if let Err(e) = ctx.map.store_sync_state(&plan.source.map_key(), &state).await {
                            span.in_scope(|| tracing::warn!(error = %e, "the folder's CONDSTORE state was not kept; the next run lists it whole"));
                        }
                    }
                }
                let error = match error {
                    Some(EngineError::OverQuota { words }) => {
                        if let Ok(mut s) = stopped.lock() {
                            *s = Some(format!("target over quota: {words}"));
                        }
                        Some(EngineError::OverQuota { words })
                    }
                    Some(e) if copy::folder::stops_job(&e) => {
                        if let Ok(mut f) = fatal.lock() {
                            f.get_or_insert(e);
                        }
                        None
                    }
                    other => other,
                };
                if let Ok(mut r) = results.lock() {
                    r.push((plan, tally, error.map(|e| e.to_string())));
                }
            }
            src.close().await;
            dst.close().await;
        }
    });
    futures::future::join_all(worker_futures).await;
    tracing::info!(
        budget = settings.budget.capacity(),
        peak = copy::budget::process_peak(),
        in_flight = settings.budget.in_flight(),
        "message bytes in flight on this node (all jobs): the most at once so far, within the budget unless one message was larger"
    );
    if let Some(error) = fatal.into_inner().unwrap_or(None) {
        return Err(error);
    }
    let stopped = stopped.into_inner().unwrap_or(None);
    // Not after a stop (over quota): nothing more is sent to the target then.
    if let Some(labels) = labels.as_ref().filter(|_| stopped.is_none()) {
        let notes = label_post_pass(
            settings,
            &events,
            labels,
            &all_plans,
            &map,
            &mut outcome.report,
        )
        .await?;
        for note in notes {
            events.emit(Event::LabelPolicy { note: note.clone() });
            outcome.report.label_policy.push(note);
        }
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by(|a, b| a.0.source.path.cmp(&b.0.source.path));
    let report = &mut outcome.report;
    for (plan, tally, error) in results {
        report.copied += tally.copied;
        report.already_present += tally.already_present;
        report.flags_updated += tally.flags_updated;
        report.bytes_copied += tally.bytes_copied;
        report.label_policy.extend(tally.notes.iter().cloned());
        report.altered.extend(tally.altered.iter().cloned());
        report.skipped += tally.skipped.len() as u64;
        report
            .skipped_messages
            .extend(tally.skipped.iter().cloned());
        if let Some(error) = error {
            let left = tally
                .messages
                .saturating_sub(tally.already_present + tally.copied + tally.skipped.len() as u64);
            report.failed += left;
            events.emit(Event::FolderFailed {
                folder: plan.source.display(),
                error: error.clone(),
            });
            report.failed_folders.push(FailedFolder {
                folder: plan.source.display(),
                error,
                messages: left,
            });
        }
    }
    for failed in not_created {
        events.emit(Event::FolderFailed {
            folder: failed.folder.clone(),
            error: failed.error.clone(),
        });
        report.failed += failed.messages;
        report.failed_folders.push(failed);
    }
    report
        .failed_folders
        .sort_by(|a, b| a.folder.cmp(&b.folder));
    if let Some(reason) = &stopped {
        events.emit(Event::Stopped {
            reason: reason.clone(),
        });
    }
    report.stopped = stopped;
    let refused = profile.refused_forms();
    if !refused.is_empty() {
        tracing::info!(forms = ?refused, "fetch forms the source refused");
    }
    events.emit(Event::Finished {
        report: report.clone(),
    });
    Ok(outcome)
}

/// A folder the target refused to create, for the report: the server's words and how many
/// messages the source folder holds (best effort: 0 when even STATUS fails).
async fn creation_failed(
    settings: &Settings,
    src: &mut Conn,
    plan: &FolderPlan,
    error: &EngineError,
) -> FailedFolder {
    tracing::warn!(folder = %plan.target_display(), error = %error, "target folder not created; its messages are not copied");
    let wire = plan.source.wire.clone();
    let messages = with_retries(settings, src, |s| Box::pin(s.status_owned(wire.clone())))
        .await
        .map(|status| u64::from(status.exists))
        .unwrap_or(0);
    FailedFolder {
        folder: plan.source.display(),
        error: format!(
            "the target folder {} could not be created: {error}",
            plan.target_display()
        ),
        messages,
    }
}

/// After the folders: labels added by UID COPY on a Gmail target, and new labels as
/// keywords on copies an earlier run made. Returns what it did, in words.
async fn label_post_pass(
    settings: &Settings,
    events: &Events,
    labels: &gmail::LabelPlan,
    plans: &[FolderPlan],
    map: &UidMap,
    report: &mut Report,
) -> Result<Vec<String>, EngineError> {
    let mut notes = Vec::new();
    if labels.decision.further.is_empty() && labels.keyword_updates.is_empty() {
        return Ok(notes);
    }
    let mut dst = settings.conn(Side::Target, events);
    let further = gmail::further::copy_further_labels(&mut dst, labels, plans, map).await?;
    if further.added > 0 {
        notes.push(format!(
            "{} further labels added on the target by UID COPY",
            further.added
        ));
        report.label_copies = further.added;
    }
    notes.extend(further.problems);
    let updated = gmail::keywords::apply(&mut dst, &labels.keyword_updates, map).await?;
    if updated > 0 {
        notes.push(format!(
            "{updated} copies from earlier runs got new labels as keywords"
        ));
        report.flags_updated += updated;
    }
    dst.close().await;
    Ok(notes)
}

/// A source and a target connection (not connected yet): see [`Settings::conn`].
fn connection_pair(settings: &Settings, events: &Events) -> (Conn, Conn) {
    (
        settings.conn(Side::Source, events),
        settings.conn(Side::Target, events),
    )
}

/// Forgets the session(s) an error broke: the side it names, or both.
fn forget_broken(src: &mut Conn, dst: &mut Conn, e: &EngineError) {
    match e.side() {
        Some(Side::Source) => src.note_error(e),
        Some(Side::Target) => dst.note_error(e),
        None => {
            src.note_error(e);
            dst.note_error(e);
        }
    }
}

/// One folder, tried again from the top after connection losses (every step is
/// idempotent thanks to the map, so "again" means "resume").
async fn copy_with_retries(
    src: &mut Conn,
    dst: &mut Conn,
    ctx: &FolderContext<'_>,
    plan: &FolderPlan,
    since: Option<u64>,
) -> (FolderTally, Option<EngineError>) {
    let mut tally = FolderTally::default();
    let mut attempt = 0;
    let mut patience = src.patience();
    loop {
        attempt += 1;
        let progress_before = tally.handled.len();
        match copy::folder::copy_folder(src, dst, ctx, plan, since, &mut tally).await {
            Ok(()) => return (tally, None),
            Err(e) if e.transient().is_some() => {
                // A command the steps do not retry themselves (SELECT, a listing...) was
                // refused for now: wait, then resume the folder (every step is idempotent).
                if tally.handled.len() > progress_before {
                    patience = src.patience();
                }
                attempt = 0;
                let conn = if e.side() == Some(Side::Target) {
                    &mut *dst
                } else {
                    &mut *src
                };
                if let Err(paused) = conn.wait_out_refusal(&mut patience, &e).await {
                    return (tally, Some(paused));
                }
            }
            Err(e)
                if e.is_connection_failure()
                    && (src.recently_throttled() || dst.recently_throttled())
                    && !e.is_hostile() =>
            {
                // Throttling servers drop connections too: that is part of the throttling.
                tracing::warn!(error = %e, "connection lost while throttled; resuming the folder");
                attempt = 0;
                forget_broken(src, dst, &e);
            }
            Err(e) if e.is_connection_failure() && tally.handled.len() > progress_before => {
                // Progress was made: the connection is flaky, not hopeless. Start counting anew.
                tracing::warn!(error = %e, "connection lost; resuming the folder");
                attempt = 0;
                forget_broken(src, dst, &e);
            }
            Err(e) if e.is_connection_failure() && attempt < ctx.settings.max_attempts + 2 => {
                tracing::warn!(error = %e, attempt, "connection lost; resuming the folder");
                forget_broken(src, dst, &e);
            }
            Err(e) => {
                tracing::error!(error = %e, "folder failed");
                return (tally, Some(e));
            }
        }
    }
}

type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, EngineError>> + Send + 'a>>;

/// Runs a step on a connection, reconnecting and trying again after connection losses.
async fn with_retries<T>(
    settings: &Settings,
    conn: &mut Conn,
    mut step: impl for<'s> FnMut(&'s mut imap::session::Session) -> BoxFuture<'s, T>,
) -> Result<T, EngineError> {
    let mut attempt = 0;
    let mut patience = conn.patience();
    loop {
        attempt += 1;
        let result = match conn.session().await {
            Ok(session) => step(session).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) if e.transient().is_some() => conn.wait_out_refusal(&mut patience, &e).await?,
            Err(e)
                if e.is_connection_failure()
                    && attempt
                        < if e.is_hostile() {
                            2
                        } else {
                            settings.max_attempts + 2
                        } =>
            {
                tracing::warn!(error = %e, attempt, "connection lost; trying again");
                conn.note_error(&e);
            }
            Err(e) => return Err(e),
        }
    }
}
