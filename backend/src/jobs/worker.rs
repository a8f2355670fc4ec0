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
use tokio::sync::{mpsc, Semaphore};
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
    pub credential_retention_hours: u64,
}

impl WorkerSettings {
    pub fn new(node: String, workers: usize) -> Self {
        WorkerSettings {
            node,
            workers,
            lease_seconds: 30,
            poll: Duration::from_secs(2),
            delta_sync_minutes: None,
            credential_retention_hours: 0,
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

    /// Runs until the process ends: leases due jobs while a worker slot is free.
    pub async fn run(self) {
        let slots = Arc::new(Semaphore::new(self.settings.workers));
        tracing::info!(node = %self.settings.node, workers = self.settings.workers, "job workers started");
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            match self.claim().await {
                Ok(Some(job)) => {
                    let pool = self.clone();
                    let span = tracing::info_span!("job", job = %job.id);
                    tokio::spawn(
                        async move {
                            pool.run_job(job).await;
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
                    }
                }
                Err(err) => {
                    drop(permit);
                    tracing::warn!(error = %err, "cannot look for queued jobs; trying again");
                    tokio::time::sleep(self.settings.poll).await;
                }
            }
        }
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

    async fn run_job(&self, job: LeasedJob) {
        let node = &self.settings.node;
        let result = match self.copy(&job).await {
            Ok(Some(end)) => self.finish(&job, end).await,
            // Another node holds the job now: its status is that node's to write.
            Ok(None) => self.store.release(&job, node, None, "lease_lost").await,
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
    async fn copy(&self, job: &LeasedJob) -> Result<Option<RunEnd>, super::StoreError> {
        let store = &self.store;
        let Some(sealed) = job.credentials.as_deref() else {
            return Ok(Some((
                JobStatus::PausedPasswordChanged,
                Some("The passwords for this migration are no longer stored: sign in again to continue.".into()),
                true,
            )));
        };
        let credentials = match Credentials::open(sealed, &self.vault, &job.id) {
            Ok(c) => c,
            Err(err) => {
                tracing::error!(error = %err, "stored credentials cannot be opened");
                return Ok(Some((
                    JobStatus::PausedPasswordChanged,
                    Some("The stored passwords cannot be read (the server key changed): sign in again.".into()),
                    true,
                )));
            }
        };
        let endpoints = (
            self.routes.endpoint(
                &job.route,
                AccountSide::Source,
                &job.source_user,
                &credentials.source_password,
            ),
            self.routes.endpoint(
                &job.route,
                AccountSide::Target,
                &job.target_user,
                &credentials.target_password,
            ),
        );
        let (Some(source), Some(target)) = endpoints else {
            return Ok(Some((
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
        let (tx, mut rx) = mpsc::unbounded_channel();
        let pool = store.pool().clone();
        let engine_task =
            tokio::spawn(async move { engine::run(&settings, &pool, Events::new(Some(tx))).await });
        let abort = engine_task.abort_handle();
        // However this function returns (also on a database error), the copy stops with it:
        // a copy left running after its lease is released could run twice.
        let _stop_copy_on_return = AbortOnDrop(abort.clone());

        let mut tracker = ProgressTracker::new();
        let mut copying = false;
        let mut dirty = false;
        let mut tick = interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut beat = interval(Duration::from_secs(
            (self.settings.lease_seconds / 3).max(1) as u64,
        ));
        beat.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut engine_task = engine_task;
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
                            return Ok(Some((JobStatus::Cancelled, Some("Cancelled.".into()), false)));
                        }
                        None => {
                            abort.abort();
                            let _ = (&mut engine_task).await;
                            tracing::warn!("lease lost to another node; stopping here");
                            return Ok(None);
                        }
                    }
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
        // The final counts always reach live watchers, also for a run shorter than a tick.
        store.publish_progress(&job.id, &tracker.snapshot()).await?;
        Ok(Some(match result {
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
                tracing::warn!("lease lost to another node; stopped before writing more");
                return Ok(None);
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

/// What a fatal engine error means for the job, in words for the user.
fn classify(err: &EngineError) -> (JobStatus, Option<String>, bool) {
    let side = |s: Option<engine::Side>| match s {
        Some(engine::Side::Source) => "old (source)",
        Some(engine::Side::Target) => "new (target)",
        None => "",
    };
    match err {
        EngineError::Login { words, .. } => (
            JobStatus::PausedPasswordChanged,
            Some(format!(
                "The {} server no longer accepts the password ({words}). Enter the new password to continue.",
                side(err.side())
            )),
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
