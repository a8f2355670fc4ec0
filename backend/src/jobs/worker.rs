//! The worker pool: leases due jobs from the store, runs the copy engine for each, and
//! turns the engine's events into stored progress and events. A lease is renewed by a
//! heartbeat; a job whose node died is taken over when its lease runs out, and resumes
//! from the UID map.

use super::credentials::Credentials;
use super::lease::LeasedJob;
use super::progress::ProgressTracker;
use super::store::JobStore;
use crate::engine::{self, EngineError, Event, Events, Settings};
use crate::profiles::Routes;
use crate::vault::Vault;
use mailferry_shared::{AccountSide, JobEventKind, JobStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{interval, MissedTickBehavior};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This node's name in leases.
    pub node: String,
    /// Jobs this node runs at once.
    pub workers: usize,
    /// How long a lease lasts without a heartbeat.
    pub lease_seconds: i64,
    /// How often the store is asked for due jobs when nothing wakes the pool.
    pub poll: Duration,
    pub delta_sync_minutes: Option<u64>,
    /// How long the passwords of a job nobody runs are kept after its last change (see
    /// [`WorkerPool::sweep_credentials`]); 0 erases a completed job's at once.
    pub credential_retention_hours: u64,
    /// How often the credential sweeper looks for passwords past their retention.
    pub credential_sweep_every: Duration,
    /// A run without progress this long is stopped and retried (`None`: never); see
    /// `engine::watchdog`.
    pub stall_timeout: Option<Duration>,
    /// When the node stops: how long running jobs may go on before they are stopped and
    /// released to other nodes.
    pub shutdown_grace: Duration,
    /// Message bytes in flight (fetched, not yet appended), all of this node's jobs
    /// together: one budget, cloned into every job it runs.
    pub budget: engine::copy::budget::ByteBudget,
}

/// Passwords of jobs waiting for their user (signed in but not started, failed, paused)
/// are kept at least this long, also with a retention of 0: 0 means "erase when the
/// copy is complete", not "before the user can press Start or Retry".
/// How long running jobs may go on when the node stops, by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub const IDLE_CREDENTIALS_KEPT_AT_LEAST: Duration = Duration::from_secs(3600);

impl WorkerSettings {
    pub fn new(node: String, workers: usize) -> Self {
        WorkerSettings {
            node,
            workers,
            lease_seconds: 30,
            poll: Duration::from_secs(2),
            delta_sync_minutes: None,
            credential_retention_hours: 0,
            credential_sweep_every: Duration::from_secs(5 * 60),
            stall_timeout: Some(engine::DEFAULT_STALL_TIMEOUT),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            budget: engine::copy::budget::ByteBudget::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerPool {
    store: JobStore,
    routes: Arc<Routes>,
    vault: Vault,
    settings: Arc<WorkerSettings>,
}

impl WorkerPool {
    pub fn new(
        store: JobStore,
        routes: Arc<Routes>,
        vault: Vault,
        settings: WorkerSettings,
    ) -> Self {
        WorkerPool {
            store,
            routes,
            vault,
            settings: Arc::new(settings),
        }
    }

    /// How long idle credentials are kept: the retention, but at least
    /// [`IDLE_CREDENTIALS_KEPT_AT_LEAST`].
    pub fn idle_credential_retention(&self) -> Duration {
        Duration::from_secs(
            self.settings
                .credential_retention_hours
                .saturating_mul(3600),
        )
        .max(IDLE_CREDENTIALS_KEPT_AT_LEAST)
    }

    /// Enforces `credential_retention_hours`: erases the passwords of every job that is
    /// finished, failed, paused, cancelled or never started, once its last change (sign-in,
    /// password update, end of its last run) is older than the retention. A completed job
    /// whose delta syncs need them keeps them just as long; then its syncs stop until the
    /// user signs in again. Returns how many jobs lost their passwords.
    pub async fn sweep_credentials(&self) -> Result<usize, super::StoreError> {
        let kept = i64::try_from(self.idle_credential_retention().as_secs()).unwrap_or(i64::MAX);
        // `updated_at` is written with this machine's clock, so the cutoff is too.
        let erased = self
            .store
            .erase_idle_credentials(super::now().saturating_sub(kept))
            .await?;
        if !erased.is_empty() {
            tracing::info!(
                jobs = erased.len(),
                "erased stored passwords past their retention"
            );
        }
        Ok(erased.len())
    }

    /// Runs [`sweep_credentials`](Self::sweep_credentials) every `credential_sweep_every`
    /// until the process ends.
    async fn sweep_credentials_forever(self) {
        let mut every = interval(
            self.settings
                .credential_sweep_every
                .max(Duration::from_millis(10)),
        );
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(err) = self.sweep_credentials().await {
                tracing::warn!(error = %err, "cannot erase expired passwords; trying again later");
            }
        }
    }

    /// Runs until the process ends: leases due jobs while a worker slot is free, and
    /// erases passwords past their retention.
    pub async fn run(self) {
        let (_never, stop) = watch::channel(false);
        self.run_until(stop).await;
    }

    /// As [`WorkerPool::run`], until `stop` turns true: then no new job is claimed,
    /// running ones get `shutdown_grace` to end, the rest are stopped and released (each
    /// due at once for any node), and this returns.
    pub async fn run_until(self, mut stop: watch::Receiver<bool>) {
        tokio::spawn(self.clone().sweep_credentials_forever());
        let slots = Arc::new(Semaphore::new(self.settings.workers));
        let mut running = JoinSet::new();
        tracing::info!(node = %self.settings.node, workers = self.settings.workers, "job workers started");
        loop {
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = stopping(&mut stop) => break,
            };
            if *stop.borrow() {
                break;
            }
            match self.claim().await {
                Ok(Some(job)) => {
                    let pool = self.clone();
                    let stop = stop.clone();
                    let span = tracing::info_span!("job", job = %job.id);
                    running.spawn(
                        async move {
                            pool.run_job(job, stop).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        () = self.store.notifier().wait_for_work() => {}
                        () = tokio::time::sleep(self.settings.poll) => {}
                        () = stopping(&mut stop) => break,
                    }
                }
                Err(err) => {
                    drop(permit);
                    tracing::warn!(error = %err, "cannot look for queued jobs; trying again");
                    tokio::time::sleep(self.settings.poll).await;
                }
            }
        }
        if !running.is_empty() {
            tracing::info!(
                jobs = running.len(),
                grace_seconds = self.settings.shutdown_grace.as_secs(),
                "stopping: no new jobs; the running ones are released to other nodes unless they end within the grace"
            );
        }
        while running.join_next().await.is_some() {}
        tracing::info!("job workers stopped");
    }

    async fn claim(&self) -> Result<Option<LeasedJob>, super::StoreError> {
        let routes = self.routes.clone();
        self.store
            .claim_next(
                &self.settings.node,
                self.settings.lease_seconds,
                move |route, running| within_limits(&routes, route, running),
            )
            .await
    }

    async fn run_job(&self, job: LeasedJob, stop: watch::Receiver<bool>) {
        let node = &self.settings.node;
        let result = match self.copy(&job, stop).await {
            Ok(Ended::Run(end)) => self.finish(&job, end).await,
            // Another node holds the job now: its status is that node's to write.
            Ok(Ended::LeaseLost) => self.store.release(&job, node, None, "lease_lost").await,
            // Its status stays (copying): due at once for any node, this one restarted
            // included.
            Ok(Ended::NodeStopping) => {
                tracing::info!("released to another node: this node is stopping");
                self.store.release(&job, node, None, "node_stopped").await
            }
            Err(err) => {
                tracing::error!(error = %err, "job store error while running the job");
                let failed = (
                    JobStatus::Failed,
                    Some(
                        "The server's database failed during the migration; it will be retried."
                            .into(),
                    ),
                    true,
                );
                self.finish(&job, failed).await
            }
        };
        if let Err(err) = result {
            tracing::error!(error = %err, "cannot record the end of the job");
        }
        // A slot under the servers' limits is free: any node may start the next job.
        self.store.announce_work().await;
    }

    /// Records how the run ended, only while this node still holds the job: a node whose
    /// lease passed to another (it lost the lease, or stalled past it) writes no status
    /// and erases nothing, it only closes its run.
    async fn finish(&self, job: &LeasedJob, end: RunEnd) -> Result<(), super::StoreError> {
        let node = &self.settings.node;
        let (status, reason, keep_credentials) = end;
        let held = self
            .store
            .heartbeat(&job.id, node, self.settings.lease_seconds)
            .await?
            .is_some();
        if !held {
            return self.store.release(job, node, None, "lease_lost").await;
        }
        let next_sync = match (status, self.settings.delta_sync_minutes) {
            (JobStatus::Synced | JobStatus::CompletedWithSkips, Some(minutes)) => {
                Some(self.store.clock().await? / 1000 + minutes as i64 * 60)
            }
            _ => None,
        };
        let erase = !keep_credentials
            && (next_sync.is_none() || self.settings.credential_retention_hours == 0);
        if erase {
            self.store.erase_credentials(&job.id).await?;
        }
        self.store.set_status(&job.id, status, reason).await?;
        self.store
            .release(job, node, next_sync, status.as_str())
            .await
    }

    /// Runs the engine for one job. Returns the final status, its reason, and whether the
    /// credentials must be kept (the job is not over); `None` when the lease was lost to
    /// another node, which now owns the job's status.
    async fn copy(
        &self,
        job: &LeasedJob,
        stop: watch::Receiver<bool>,
    ) -> Result<Ended, super::StoreError> {
        let store = &self.store;
        let Some(sealed) = job.credentials.as_deref() else {
            return Ok(Ended::Run((
                JobStatus::PausedPasswordChanged,
                Some("The passwords for this migration are no longer stored: sign in again to continue.".into()),
                true,
            )));
        };
        let mut credentials = match Credentials::open(sealed, &self.vault, &job.id) {
            Ok(c) => c,
            Err(err) => {
                tracing::error!(error = %err, "stored credentials cannot be opened");
                return Ok(Ended::Run((
                    JobStatus::PausedPasswordChanged,
                    Some("The stored passwords cannot be read (the server key changed): sign in again.".into()),
                    true,
                )));
            }
        };
        let lock = super::job_tokens::SealLock::default();
        let endpoint = |side: AccountSide, user: &str, password: &str, tokens: Option<_>| {
            let tokens = match (
                self.routes.auth_kind(&job.route, side),
                self.routes.oauth_provider(&job.route, side),
            ) {
                (Some(crate::oauth::AuthKind::OAuth2), Some(provider)) => {
                    let label = provider.label().to_owned();
                    let Some(tokens) = tokens else {
                        return Err(label);
                    };
                    Some(super::job_tokens::user_tokens(
                        store,
                        &self.vault,
                        &job.id,
                        side,
                        provider,
                        tokens,
                        &lock,
                    ))
                }
                _ => None,
            };
            Ok(self
                .routes
                .endpoint(&job.route, side, user, password, tokens))
        };
        let (source_tokens, target_tokens) = (
            credentials.source_tokens.take(),
            credentials.target_tokens.take(),
        );
        let endpoints = (
            endpoint(
                AccountSide::Source,
                &job.source_user,
                &credentials.source_password,
                source_tokens,
            ),
            endpoint(
                AccountSide::Target,
                &job.target_user,
                &credentials.target_password,
                target_tokens,
            ),
        );
        let endpoints = match endpoints {
            (Ok(source), Ok(target)) => (source, target),
            (Err(label), _) | (_, Err(label)) => {
                return Ok(Ended::Run((
                    JobStatus::PausedSignInAgain,
                    Some(format!("Sign in with {label} to continue: the portal holds no sign-in for this mailbox.")),
                    true,
                )));
            }
        };
        let (Some(source), Some(target)) = endpoints else {
            return Ok(Ended::Run((
                JobStatus::Failed,
                Some(format!(
                    "The route {:?} is no longer configured; ask your administrator.",
                    job.route
                )),
                true,
            )));
        };
        let connections = self
            .routes
            .profile_for(&job.route, AccountSide::Source)
            .and_then(|(_, p)| p.connections_per_job)
            .unwrap_or(3)
            .max(1) as usize;
        drop(credentials);

        store
            .set_status(&job.id, JobStatus::Connecting, None)
            .await?;
        let mut settings = Settings::new(source, target);
        settings.connections = connections;
        settings.lease_owner = Some(self.settings.node.clone());
        settings.stall_timeout = self.settings.stall_timeout;
        settings.budget = self.settings.budget.clone();
        if let Some(route) = self.routes.route(&job.route) {
            settings.labels = route.label_options().unwrap_or_default();
        }
        let holder = format!("{}/{}/{}", self.settings.node, job.id, super::random_id());
        let account = |side, user: &str| self.routes.pacing(&job.route, side, user);
        settings.pacing = engine::pacing::Pacers::new(
            self.store.pool(),
            self.store.kind.clock(),
            &holder,
            (
                &settings.source,
                account(AccountSide::Source, &job.source_user),
            ),
            (
                &settings.target,
                account(AccountSide::Target, &job.target_user),
            ),
        );
        let mut tracker = ProgressTracker::new();
        for (cap, window) in settings.pacing.byte_caps() {
            tracker.limit_by(cap, window);
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let pool = store.pool().clone();
        let engine_task =
            tokio::spawn(async move { engine::run(&settings, &pool, Events::new(Some(tx))).await });
        let abort = engine_task.abort_handle();
        // However this function returns (also on a database error), the copy stops with it:
        // a copy left running after its lease is released could run twice.
        let _stop_copy_on_return = AbortOnDrop(abort.clone());

        let mut copying = false;
        let mut dirty = false;
        let mut tick = interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut beat = interval(Duration::from_secs(
            (self.settings.lease_seconds / 3).max(1) as u64,
        ));
        beat.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut engine_task = engine_task;
        let node_stopping = stop_after_grace(stop, self.settings.shutdown_grace);
        tokio::pin!(node_stopping);
        let result = loop {
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { continue };
                    if !copying && matches!(event, Event::FolderPlanned { .. }) {
                        copying = true;
                        store.set_status(&job.id, JobStatus::Copying, None).await?;
                    }
                    tracker.apply(&event);
                    dirty = true;
                    if let Some(kind) = log_entry(&event) {
                        store.append_event(&job.id, kind).await?;
                    }
                }
                _ = tick.tick() => {
                    if dirty {
                        dirty = false;
                        store.publish_progress(&job.id, &tracker.snapshot()).await?;
                    }
                }
                _ = beat.tick() => {
                    match store.heartbeat(&job.id, &self.settings.node, self.settings.lease_seconds).await? {
                        Some(false) => {}
                        Some(true) => {
                            // Stopping mid-copy is safe: the engine journals before it writes.
                            abort.abort();
                            let _ = (&mut engine_task).await;
                            while let Ok(event) = rx.try_recv() { tracker.apply(&event); }
                            store.save_progress(&job.id, &tracker.snapshot()).await?;
                            return Ok(Ended::Run((JobStatus::Cancelled, Some("Cancelled.".into()), false)));
                        }
                        None => {
                            abort.abort();
                            let _ = (&mut engine_task).await;
                            tracing::warn!("{}; stopping here", EngineError::LeaseLost);
                            return Ok(Ended::LeaseLost);
                        }
                    }
                }
                () = &mut node_stopping => {
                    // This node is stopping and the run did not end within the grace:
                    // stopped here (safe: the engine journals before it writes), it
                    // resumes from the UID map on whichever node claims it next.
                    abort.abort();
                    let _ = (&mut engine_task).await;
                    while let Ok(event) = rx.try_recv() { tracker.apply(&event); }
                    store.save_progress(&job.id, &tracker.snapshot()).await?;
                    return Ok(Ended::NodeStopping);
                }
                joined = &mut engine_task => {
                    break joined;
                }
            }
        };
        while let Ok(event) = rx.try_recv() {
            tracker.apply(&event);
            if let Some(kind) = log_entry(&event) {
                store.append_event(&job.id, kind).await?;
            }
        }
        if let Ok(Err(EngineError::Paused { until, .. })) = &result {
            // Resumes by itself then (any node); the time left starts with the wait.
            store.set_resume_at(&job.id, Some(*until)).await?;
            tracker.pause_until(*until);
        }
        // The final counts always reach live watchers, also for a run shorter than a tick.
        store.publish_progress(&job.id, &tracker.snapshot()).await?;
        Ok(Ended::Run(match result {
            Err(join_error) => {
                tracing::error!(error = %join_error, "the copy task ended abnormally");
                (
                    JobStatus::Failed,
                    Some("The copy stopped unexpectedly; retry to resume where it stopped.".into()),
                    true,
                )
            }
            Ok(Ok(outcome)) => {
                let report = outcome.report;
                if let Some(reason) = report.stopped {
                    (JobStatus::PausedOverQuota, Some(reason), true)
                } else if !report.is_complete() {
                    (
                        JobStatus::CompletedWithSkips,
                        Some(format!(
                            "{} messages copied; {} could not be copied (see the list).",
                            report.copied,
                            report.skipped + report.failed
                        )),
                        false,
                    )
                } else {
                    (
                        JobStatus::Synced,
                        Some(format!(
                            "{} messages copied, {} were already there.",
                            report.copied, report.already_present
                        )),
                        false,
                    )
                }
            }
            Ok(Err(EngineError::LeaseLost)) => {
                tracing::warn!("{}; stopped before writing more", EngineError::LeaseLost);
                return Ok(Ended::LeaseLost);
            }
            Ok(Err(err)) => classify(&err),
        }))
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How a run ends: the job's status, its reason, and whether the stored credentials must
/// be kept (the job is not over).
type RunEnd = (JobStatus, Option<String>, bool);

/// How [`WorkerPool::copy`] ended.
enum Ended {
    /// The run ended (done, failed, paused, cancelled): the job gets this status.
    Run(RunEnd),
    /// Another node holds the job now; its status is that node's to write.
    LeaseLost,
    /// This node is stopping: the job goes back to the queue as it stands.
    NodeStopping,
}

/// Resolves once `stop` turned true and `grace` passed since; never if its sender is gone
/// without saying stop.
async fn stop_after_grace(mut stop: watch::Receiver<bool>, grace: Duration) {
    stopping(&mut stop).await;
    tokio::time::sleep(grace).await;
}

/// Resolves once `stop` is true (never if its sender is gone without saying so).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What a fatal engine error means for the job, in words for the user.
fn classify(err: &EngineError) -> (JobStatus, Option<String>, bool) {
    let side = |s: Option<engine::Side>| match s {
        Some(engine::Side::Source) => "old (source)",
        Some(engine::Side::Target) => "new (target)",
        None => "",
    };
    match err {
        // A refused access token: a new password would not help, signing in again may.
        EngineError::Login {
            words,
            bearer: true,
            ..
        } => (
            JobStatus::PausedSignInAgain,
            Some(format!(
                "The {} server refused the access token ({words}). Sign in to the provider again to continue.",
                side(err.side())
            )),
            true,
        ),
        // The provider refused to refresh: consent withdrawn or the sign-in expired.
        EngineError::Token {
            kind: engine::TokenErrorKind::Revoked,
            message,
            ..
        } => (
            JobStatus::PausedSignInAgain,
            Some(format!("The {} mailbox: {message}.", side(err.side()))),
            true,
        ),
        // The app registration is wrong: only the administrator can help.
        EngineError::Token {
            kind: engine::TokenErrorKind::Misconfigured,
            message,
            ..
        } => (
            JobStatus::Failed,
            Some(format!(
                "The {} mailbox cannot be reached: {message}. Tell your administrator; retry once it is fixed.",
                side(err.side())
            )),
            true,
        ),
        EngineError::Login { words, .. } => (
            JobStatus::PausedPasswordChanged,
            Some(format!(
                "The {} server no longer accepts the password ({words}). Enter the new password to continue.",
                side(err.side())
            )),
            true,
        ),
        // Asked to wait (throttled past the job's patience, or a daily cap): the job
        // resumes by itself at `until`.
        EngineError::Paused { reason, .. } => (
            JobStatus::PausedThrottled,
            Some(format!("The {} server: {reason}.", side(err.side()))),
            true,
        ),
        EngineError::OverQuota { words } => (
            JobStatus::PausedOverQuota,
            Some(format!("The new mailbox is full ({words}). Make room, then retry.")),
            true,
        ),
        other => (
            JobStatus::Failed,
            Some(format!("{other}. Retry to resume where it stopped.")),
            true,
        ),
    }
}

/// The engine events worth keeping in the job's log (per-message copies are not: the
/// progress snapshots count them).
fn log_entry(event: &Event) -> Option<JobEventKind> {
    match event {
        Event::FolderPlanned {
            source,
            target,
            messages,
            to_copy,
            ..
        } => Some(JobEventKind::FolderPlanned {
            source: source.clone(),
            target: target.clone(),
            messages: *messages,
            to_copy: *to_copy,
        }),
        Event::FolderDone {
            folder,
            copied,
            skipped,
            ..
        } => Some(JobEventKind::FolderDone {
            source: folder.clone(),
            copied: *copied,
            skipped: *skipped,
        }),
        Event::FolderFailed { folder, error } => Some(JobEventKind::FolderFailed {
            source: folder.clone(),
            error: error.clone(),
        }),
        Event::MessageSkipped {
            folder,
            uid,
            reason,
        } => Some(JobEventKind::MessageSkipped {
            folder: folder.clone(),
            uid: *uid,
            reason: reason.clone(),
        }),
        Event::Waiting {
            side,
            words,
            since,
            until,
        } => Some(JobEventKind::Waiting {
            side: side.to_string(),
            words: words.clone(),
            since: *since,
            until: *until,
        }),
        Event::LabelPolicy { note } => Some(JobEventKind::Note {
            text: format!("Labels: {note}"),
        }),
        Event::MessageAltered { folder, uid, what } => Some(JobEventKind::Note {
            text: format!("Message UID {uid} in {folder} {what}"),
        }),
        Event::Stalled { words, .. } => Some(JobEventKind::Note {
            text: words.clone(),
        }),
        _ => None,
    }
}

/// Whether one more job of `route` keeps both its servers within their `max_jobs`,
/// counting every node's running jobs.
fn within_limits(routes: &Routes, route: &str, running: &[(String, i64)]) -> bool {
    for side in [AccountSide::Source, AccountSide::Target] {
        let Some((server, profile)) = routes.profile_for(route, side) else {
            // Unknown route: let the worker fail it with a clear reason.
            return true;
        };
        let limit = i64::from(profile.max_jobs.unwrap_or(10));
        let busy: i64 = running
            .iter()
            .filter(|(r, _)| {
                routes
                    .route(r)
                    .is_some_and(|c| c.source == server || c.target == server)
            })
            .map(|(_, n)| n)
            .sum();
        if busy >= limit {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use crate::jobs::Notifier;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: JobStore,
        vault: Vault,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&crate::config::sqlite_url(&dir.path().join("w.db")))
            .await
            .unwrap();
        let store = JobStore::new(db.pool().clone(), db.kind(), Notifier::default());
        let vault = Vault::open(None, &dir.path().join("secret.key")).unwrap();
        Fixture {
            _dir: dir,
            store,
            vault,
        }
    }

    impl Fixture {
        /// A job with stored passwords in `status`, last changed `hours_ago`.
        async fn job(&self, name: &str, status: JobStatus, hours_ago: i64) -> String {
            let id = self
                .store
                .open_job(
                    &format!("{name}@old:993"),
                    &format!("{name}@new:993"),
                    "r",
                    name,
                    name,
                    None,
                )
                .await
                .unwrap();
            let sealed = Credentials {
                source_password: "old-secret".into(),
                target_password: "new-secret".into(),
                source_tokens: None,
                target_tokens: None,
            }
            .seal(&self.vault, &id)
            .unwrap();
            self.store.set_credentials(&id, &sealed).await.unwrap();
            sqlx::query("UPDATE jobs SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status.as_str())
                .bind(super::super::now() - hours_ago * 3600)
                .bind(&id)
                .execute(self.store.pool())
                .await
                .unwrap();
            id
        }

        fn pool(&self, retention_hours: u64, sweep_every: Duration) -> WorkerPool {
            let mut settings = WorkerSettings::new("n".into(), 0);
            settings.credential_retention_hours = retention_hours;
            settings.credential_sweep_every = sweep_every;
            WorkerPool::new(
                self.store.clone(),
                Arc::new(Routes::default()),
                self.vault.clone(),
                settings,
            )
        }

        async fn has(&self, id: &str) -> bool {
            self.store.has_credentials(id).await.unwrap()
        }
    }

    #[test]
    fn a_wait_for_a_throttling_server_goes_into_the_job_log_with_its_words_and_times() {
        let entry = log_entry(&Event::Waiting {
            side: crate::engine::Side::Target,
            words: "NO Server Unavailable. 15".into(),
            since: 1_000,
            until: 1_060,
        });
        assert_eq!(
            entry,
            Some(JobEventKind::Waiting {
                side: "target".into(),
                words: "NO Server Unavailable. 15".into(),
                since: 1_000,
                until: 1_060,
            })
        );
    }

    #[test]
    fn a_run_that_kept_stalling_fails_with_the_reason_and_can_be_retried() {
        let (status, reason, keep) = classify(&EngineError::Stalled {
            what: "no progress for 30 min (last: copying INBOX, 1,204 of 3,000)".into(),
        });
        assert_eq!(status, JobStatus::Failed);
        assert_eq!(
            reason.as_deref(),
            Some("no progress for 30 min (last: copying INBOX, 1,204 of 3,000). Retry to resume where it stopped.")
        );
        assert!(keep, "the passwords are kept for the retry");
        assert_eq!(
            log_entry(&Event::Stalled {
                words: "no progress for 30 min (last: copying INBOX, 1,204 of 3,000); retrying"
                    .into(),
                retrying: true,
            }),
            Some(JobEventKind::Note {
                text: "no progress for 30 min (last: copying INBOX, 1,204 of 3,000); retrying"
                    .into()
            })
        );
    }

    #[tokio::test]
    async fn passwords_of_idle_jobs_are_erased_once_past_the_retention() {
        let f = fixture().await;
        let mut old = Vec::new();
        for (i, status) in [
            JobStatus::Ready,
            JobStatus::Synced,
            JobStatus::CompletedWithSkips,
            JobStatus::Failed,
            JobStatus::PausedOverQuota,
            JobStatus::PausedPasswordChanged,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .enumerate()
        {
            old.push(f.job(&format!("old{i}"), status, 25).await);
        }
        let recent_failed = f.job("recent", JobStatus::Failed, 23).await;
        let waiting = f.job("waiting", JobStatus::Queued, 48).await;
        let running = f.job("running", JobStatus::Copying, 48).await;
        // Waiting out a provider's daily cap: it resumes by itself and needs them.
        let throttled = f.job("throttled", JobStatus::PausedThrottled, 48).await;

        let pool = f.pool(24, Duration::from_secs(3600));
        assert_eq!(pool.sweep_credentials().await.unwrap(), old.len());
        for id in &old {
            assert!(
                !f.has(id).await,
                "{:?} kept its passwords",
                f.store.status(id).await
            );
            let log = f.store.events_after(id, 0, 100).await.unwrap();
            assert!(log.iter().any(|e| matches!(
                &e.kind,
                mailferry_shared::JobEventKind::Action { action, .. } if action.contains("erased")
            )));
        }
        for id in [&recent_failed, &waiting, &running, &throttled] {
            assert!(f.has(id).await);
        }
        // A password entered again restarts the clock.
        let sealed = Credentials::default().seal(&f.vault, &old[3]).unwrap();
        f.store.set_credentials(&old[3], &sealed).await.unwrap();
        assert_eq!(pool.sweep_credentials().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_retention_of_zero_still_leaves_time_to_press_start() {
        let f = fixture().await;
        let signed_in = f.job("fresh", JobStatus::Ready, 0).await;
        let forgotten = f.job("forgotten", JobStatus::Ready, 2).await;
        let pool = f.pool(0, Duration::from_secs(3600));
        assert_eq!(
            pool.idle_credential_retention(),
            IDLE_CREDENTIALS_KEPT_AT_LEAST
        );
        assert_eq!(pool.sweep_credentials().await.unwrap(), 1);
        assert!(f.has(&signed_in).await);
        assert!(!f.has(&forgotten).await);
    }

    #[tokio::test]
    async fn the_worker_pool_runs_the_sweeper_by_itself() {
        let f = fixture().await;
        let expired = f.job("expired", JobStatus::Synced, 3).await;
        let pool = f.pool(1, Duration::from_millis(50));
        let running = tokio::spawn(pool.run());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while f.has(&expired).await {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing erased the passwords"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running.abort();
    }
}
