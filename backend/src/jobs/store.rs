//! The job store: every read and write of the portal's job state. The worker writes
//! progress and events here; the web layer reads them. Nothing here speaks IMAP.

use super::notify::Notifier;
use super::now;
use super::progress::ProgressSnapshot;
use crate::db::DatabaseKind;
use mailferry_shared::{JobEvent, JobEventKind, JobPage, JobStatus, JobView, SkippedMessageView};
use sqlx::{AnyConnection, AnyPool, Connection};

/// Events kept per job: older ones are deleted as new ones are appended, so a job that
/// runs for months (delta syncs, many folders) does not grow its log without end. Live
/// streams lose nothing by it: they start with a snapshot of the job, and a client
/// resuming after a deleted event gets every event still kept.
pub const EVENTS_KEPT_PER_JOB: i64 = 1000;
/// Progress events kept per job, apart from the others (live streams only need the
/// newest; the chart's history is in `job_progress_history`).
pub const PROGRESS_EVENTS_KEPT: i64 = 300;
/// Whether a `job_events` row is a progress event (its JSON begins with its kind).
const IS_PROGRESS: &str = "data LIKE '{\"kind\":\"progress\"%'";
const NOT_PROGRESS: &str = "data NOT LIKE '{\"kind\":\"progress\"%'";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such job")]
    NotFound,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("cannot seal the credentials: {0}")]
    Seal(#[from] crate::vault::VaultError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Helpdesk table filters.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub route: Option<String>,
    /// Matches source or target user (substring, case-insensitive).
    pub text: Option<String>,
    pub batch: Option<String>,
    /// `updated` (default, newest first), `user`, `status`, `progress`, `created`.
    pub sort: Option<String>,
    pub descending: bool,
    pub page: u64,
    pub per_page: u64,
}

const JOB_COLUMNS: &str = "id, route, source_user, target_user, status, status_reason, progress, \
     created_at, updated_at, started_at, finished_at, batch_id, resume_at";

/// folder, UID, size, internal date, subject, reason.
type SkippedRow = (
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    String,
);

type JobRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

fn view_from_row(row: JobRow) -> Result<JobView> {
    let (
        id,
        route,
        source_user,
        target_user,
        status,
        status_reason,
        progress,
        created_at,
        updated_at,
        started_at,
        finished_at,
        batch_id,
        resume_at,
    ) = row;
    let status = JobStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?;
    let progress: ProgressSnapshot = match progress {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("progress of job {id}: {e}")))?,
        None => ProgressSnapshot::default(),
    };
    let copying = status.is_active();
    // A job paused by a pacing cap has a time left too: the wait, then the copy.
    let paused = status == JobStatus::PausedThrottled;
    Ok(JobView {
        id,
        route,
        source_user,
        target_user,
        status,
        status_reason,
        counts: progress.counts,
        skipped: progress.skipped,
        failed: progress.failed,
        rate_messages: if copying { progress.rate_messages } else { 0.0 },
        rate_bytes: if copying { progress.rate_bytes } else { 0.0 },
        eta_seconds: if copying || paused {
            progress.eta_seconds
        } else {
            None
        },
        eta_note: if copying || paused {
            progress.eta_note
        } else {
            None
        },
        resume_at: if paused { resume_at } else { None },
        folders: progress.folders,
        created_at,
        updated_at,
        started_at,
        finished_at,
        batch_id,
    })
}

#[derive(Debug, Clone)]
pub struct JobStore {
    pub(super) pool: AnyPool,
    pub(super) kind: DatabaseKind,
    pub(super) notifier: Notifier,
    events_kept: i64,
}

impl JobStore {
    pub fn new(pool: AnyPool, kind: DatabaseKind, notifier: Notifier) -> Self {
        JobStore {
            pool,
            kind,
            notifier,
            events_kept: EVENTS_KEPT_PER_JOB,
        }
    }

    /// Keeps at most `events` events per job (at least 1) instead of
    /// [`EVENTS_KEPT_PER_JOB`].
    pub fn keeping_events(mut self, events: i64) -> Self {
        self.events_kept = events.max(1);
        self
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Finds the job for this pair of accounts (the engine's, so the UID map is shared with
    /// the command line) or creates it, and records who it is for.
    pub async fn open_job(
        &self,
        source_account: &str,
        target_account: &str,
        route: &str,
        source_user: &str,
        target_user: &str,
        batch: Option<&str>,
    ) -> Result<String> {
        let id =
            crate::engine::uidmap::find_or_create_job(&self.pool, source_account, target_account)
                .await
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE jobs SET route = $1, source_user = $2, target_user = $3, \
             batch_id = COALESCE($4, batch_id), updated_at = $5 WHERE id = $6",
        )
        .bind(route)
        .bind(source_user)
        .bind(target_user)
        .bind(batch)
        .bind(now())
        .bind(&id)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Stores the sealed passwords. Counts as a change of the job: the retention of idle
    /// credentials runs from here (see `erase_idle_credentials`).
    pub async fn set_credentials(&self, job_id: &str, sealed: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET credentials = $1, updated_at = $2 WHERE id = $3")
            .bind(sealed)
            .bind(now())
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces stored credentials (refreshed tokens) unless they were erased meanwhile;
    /// not a change of the job for the retention clock.
    pub async fn replace_credentials(&self, job_id: &str, sealed: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET credentials = $1 WHERE id = $2 AND credentials IS NOT NULL")
            .bind(sealed)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn erase_credentials(&self, job_id: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET credentials = NULL WHERE id = $1")
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Erases the passwords of every job nobody runs (any status but queued, connecting,
    /// copying or paused_throttled, which resumes by itself, and no current lease) whose
    /// last change (`updated_at`: sign-in, password update, the end of its last run) is
    /// before `cutoff` (Unix seconds).
    /// Returns the jobs whose passwords were erased; each gets a log entry.
    pub async fn erase_idle_credentials(&self, cutoff: i64) -> Result<Vec<String>> {
        let t = self.clock().await? / 1000;
        let erased: Vec<String> = sqlx::query_scalar(
            "UPDATE jobs SET credentials = NULL WHERE credentials IS NOT NULL \
             AND updated_at < $1 \
             AND status NOT IN ('queued', 'connecting', 'copying', 'paused_throttled') \
             AND (lease_until IS NULL OR lease_until < $2) RETURNING id",
        )
        .bind(cutoff)
        .bind(t)
        .fetch_all(&self.pool)
        .await?;
        for id in &erased {
            self.log_action(
                id,
                "mailferry",
                "erased the stored passwords (retention ended)",
            )
            .await?;
        }
        Ok(erased)
    }

    pub async fn has_credentials(&self, job_id: &str) -> Result<bool> {
        Ok(self.credentials(job_id).await?.is_some())
    }

    pub async fn credentials(&self, job_id: &str) -> Result<Option<String>> {
        let sealed: Option<Option<String>> =
            sqlx::query_scalar("SELECT credentials FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_optional(&self.pool)
                .await?;
        sealed.ok_or(StoreError::NotFound)
    }

    pub async fn view(&self, job_id: &str) -> Result<JobView> {
        let row: Option<JobRow> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                .bind(job_id)
                .fetch_optional(&self.pool)
                .await?;
        view_from_row(row.ok_or(StoreError::NotFound)?)
    }

    pub async fn status(&self, job_id: &str) -> Result<JobStatus> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?;
        let status = status.ok_or(StoreError::NotFound)?;
        JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))
    }

    pub async fn list(&self, filter: &JobFilter) -> Result<JobPage> {
        let mut clauses = vec!["route <> ''".to_owned()];
        let mut binds: Vec<String> = Vec::new();
        if let Some(status) = filter.status {
            binds.push(status.as_str().to_owned());
            clauses.push(format!("status = ${}", binds.len()));
        }
        if let Some(route) = &filter.route {
            binds.push(route.clone());
            clauses.push(format!("route = ${}", binds.len()));
        }
        if let Some(batch) = &filter.batch {
            binds.push(batch.clone());
            clauses.push(format!("batch_id = ${}", binds.len()));
        }
        if let Some(text) = filter.text.as_deref().filter(|t| !t.trim().is_empty()) {
            binds.push(format!("%{}%", text.trim().to_lowercase()));
            let n = binds.len();
            clauses.push(format!(
                "(LOWER(source_user) LIKE ${n} OR LOWER(target_user) LIKE ${n})"
            ));
        }
        let order = match filter.sort.as_deref() {
            Some("user") => "source_user",
            Some("status") => "status",
            Some("progress") => {
                "CASE WHEN messages_total = 0 THEN 0 ELSE messages_done * 1.0 / messages_total END"
            }
            Some("created") => "created_at",
            _ => "updated_at",
        };
        let direction = if filter.descending || filter.sort.is_none() {
            "DESC"
        } else {
            "ASC"
        };
        let per_page = filter.per_page.clamp(1, 500);
        let where_clause = clauses.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM jobs WHERE {where_clause}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        for b in &binds {
            count = count.bind(b);
        }
        let total = count.fetch_one(&self.pool).await? as u64;
        let list_sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE {where_clause} ORDER BY {order} {direction}, id \
             LIMIT {per_page} OFFSET {}",
            filter.page * per_page
        );
        let mut query = sqlx::query_as::<_, JobRow>(&list_sql);
        for b in &binds {
            query = query.bind(b);
        }
        let jobs = query
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(view_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(JobPage {
            jobs,
            total,
            page: filter.page,
            per_page,
        })
    }

    /// Appends to the job's event log and wakes its watchers. Returns the event's number.
    pub async fn append_event(&self, job_id: &str, kind: JobEventKind) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        let seq = self.append_event_on(&mut conn, job_id, &kind).await?;
        drop(conn);
        self.announce_job(job_id).await;
        Ok(seq)
    }

    /// Appends on `conn` (inside the caller's transaction, if any) and deletes what falls
    /// out of the kept window; wakes nobody.
    pub(super) async fn append_event_on(
        &self,
        conn: &mut AnyConnection,
        job_id: &str,
        kind: &JobEventKind,
    ) -> Result<i64> {
        let data = serde_json::to_string(kind).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Two writers of one job's log (worker and a staff action) may race for the next
        // number; the primary key refuses the loser, which simply tries again. Each try is
        // its own (nested) transaction, so a refusal does not abort the caller's.
        let mut attempts = 0;
        loop {
            let mut attempt = conn.begin().await?;
            let appended = sqlx::query_scalar::<_, i64>(
                "INSERT INTO job_events (job_id, seq, at, data) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM job_events WHERE job_id = $1 \
                 RETURNING seq",
            )
            .bind(job_id)
            .bind(now())
            .bind(&data)
            .fetch_one(&mut *attempt)
            .await;
            match appended {
                Ok(seq) => {
                    crate::metrics::count_event(kind);
                    // Progress (about one a second) and the rest are kept apart: a long
                    // copy's progress never pushes what happened out of the log.
                    let (progress, kept) = match kind {
                        JobEventKind::Progress { .. } => (true, PROGRESS_EVENTS_KEPT),
                        _ => (false, self.events_kept),
                    };
                    if seq > kept {
                        sqlx::query(&format!(
                            "DELETE FROM job_events WHERE job_id = $1 AND {cond} AND seq < ( \
                               SELECT seq FROM job_events WHERE job_id = $1 AND {cond} \
                               ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                            cond = if progress { IS_PROGRESS } else { NOT_PROGRESS }
                        ))
                        .bind(job_id)
                        .bind(kept - 1)
                        .execute(&mut *attempt)
                        .await?;
                    }
                    attempt.commit().await?;
                    return Ok(seq);
                }
                Err(sqlx::Error::Database(err)) if err.is_unique_violation() && attempts < 8 => {
                    attempt.rollback().await?;
                    attempts += 1;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Events after `seq`, oldest first.
    pub async fn events_after(&self, job_id: &str, seq: i64, limit: i64) -> Result<Vec<JobEvent>> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT seq, at, data FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(job_id)
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(seq, at, data)| {
                let kind = serde_json::from_str(&data)
                    .map_err(|e| StoreError::Corrupt(format!("event {seq}: {e}")))?;
                Ok(JobEvent { seq, at, kind })
            })
            .collect()
    }

    pub async fn last_event_seq(&self, job_id: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM job_events WHERE job_id = $1")
                .bind(job_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Sets the status (and its reason) and logs the change.
    pub async fn set_status(
        &self,
        job_id: &str,
        status: JobStatus,
        reason: Option<String>,
    ) -> Result<()> {
        let t = now();
        let finished = if status.is_settled() { Some(t) } else { None };
        sqlx::query(
            "UPDATE jobs SET status = $1, status_reason = $2, updated_at = $3, \
             finished_at = COALESCE($4, finished_at) WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(reason.clone())
        .bind(t)
        .bind(finished)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        self.append_event(job_id, JobEventKind::Status { status, reason })
            .await?;
        Ok(())
    }

    /// When a job paused by a pacing cap or a throttling server resumes by itself (Unix
    /// seconds of the database's clock); `None` clears it.
    pub async fn set_resume_at(&self, job_id: &str, at: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE jobs SET resume_at = $1 WHERE id = $2")
            .bind(at)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queues the job again if it waits in one of `paused` (for new credentials).
    pub async fn resume_if(&self, job_id: &str, paused: &[JobStatus]) -> Result<()> {
        if paused.contains(&self.status(job_id).await?) {
            self.queue(job_id).await?;
        }
        Ok(())
    }

    /// Queues the job unless a worker already has it. Returns whether it was queued.
    pub async fn queue(&self, job_id: &str) -> Result<bool> {
        let status = self.status(job_id).await?;
        if status.is_active() {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE jobs SET cancel_requested = 0, next_sync_at = NULL, finished_at = NULL, \
             resume_at = NULL WHERE id = $1",
        )
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        self.set_status(job_id, JobStatus::Queued, None).await?;
        self.announce_work().await;
        Ok(true)
    }

    /// Stops the job: at once when no worker has it, else the worker stops it within
    /// seconds (it watches `cancel_requested`). The flag is set first, and no node leases
    /// a job that carries it, so a job cannot start between the check and the cancel.
    pub async fn cancel(&self, job_id: &str) -> Result<()> {
        let status = self.status(job_id).await?;
        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = $1")
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        let leased: Option<Option<i64>> =
            sqlx::query_scalar("SELECT lease_until FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_optional(&self.pool)
                .await?;
        let t = self.clock().await? / 1000;
        let held = leased.flatten().is_some_and(|until| until >= t);
        if !held && status != JobStatus::Cancelled {
            self.set_status(job_id, JobStatus::Cancelled, Some("Cancelled.".into()))
                .await?;
            self.erase_credentials(job_id).await?;
        }
        Ok(())
    }

    pub async fn log_action(&self, job_id: &str, actor: &str, action: &str) -> Result<()> {
        self.append_event(
            job_id,
            JobEventKind::Action {
                actor: actor.to_owned(),
                action: action.to_owned(),
            },
        )
        .await?;
        Ok(())
    }

    pub async fn save_progress(&self, job_id: &str, progress: &ProgressSnapshot) -> Result<()> {
        let json =
            serde_json::to_string(progress).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE jobs SET progress = $1, messages_done = $2, messages_total = $3, skipped = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(json)
        .bind(progress.counts.messages_done as i64)
        .bind(progress.counts.messages_total as i64)
        .bind(progress.skipped as i64)
        .bind(now())
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Saves the snapshot and tells live watchers (a `Progress` event).
    pub async fn publish_progress(&self, job_id: &str, progress: &ProgressSnapshot) -> Result<()> {
        self.save_progress(job_id, progress).await?;
        self.record_history(job_id, now(), progress).await?;
        self.append_event(
            job_id,
            JobEventKind::Progress {
                counts: progress.counts,
                rate_messages: progress.rate_messages,
                rate_bytes: progress.rate_bytes,
            },
        )
        .await?;
        Ok(())
    }

    pub async fn skipped_messages(&self, job_id: &str) -> Result<Vec<SkippedMessageView>> {
        let rows: Vec<SkippedRow> = sqlx::query_as(
            "SELECT source_folder, source_uid, size, internal_date, subject, reason \
                 FROM skipped_messages WHERE job_id = $1 ORDER BY source_folder, source_uid",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(folder, uid, size, date, subject, reason)| SkippedMessageView {
                    folder,
                    uid: uid as u32,
                    reason,
                    size: size.map(|s| s as u64),
                    date,
                    subject,
                },
            )
            .collect())
    }

    /// Forgets the skipped list so the next run tries those messages again.
    pub async fn clear_skipped(&self, job_id: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM skipped_messages WHERE job_id = $1")
                .bind(job_id)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    pub async fn audit(
        &self,
        staff: &str,
        action: &str,
        job_id: Option<&str>,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, staff, action, job_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(super::random_id())
        .bind(now())
        .bind(staff)
        .bind(action)
        .bind(job_id)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The job's source-UID -> target-UID map as CSV (`json == false`) or JSON.
    pub async fn export_uid_map(
        &self,
        job_id: &str,
        json: bool,
    ) -> Result<String, crate::engine::EngineError> {
        let map = crate::engine::UidMap::new(self.pool.clone(), job_id.to_owned());
        if json {
            map.export_json().await
        } else {
            map.export_csv().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;

    async fn store(dir: &std::path::Path) -> JobStore {
        let db = Database::open(&crate::config::sqlite_url(&dir.join("s.db")))
            .await
            .unwrap();
        JobStore::new(db.pool().clone(), db.kind(), Notifier::default())
    }

    fn action(n: usize) -> JobEventKind {
        JobEventKind::Action {
            actor: "test".into(),
            action: format!("step {n}"),
        }
    }

    #[tokio::test]
    async fn the_event_log_keeps_the_newest_events_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await.keeping_events(25);
        let job = store
            .open_job("a@old:993", "a@new:993", "r", "a", "a", None)
            .await
            .unwrap();
        let other = store
            .open_job("b@old:993", "b@new:993", "r", "b", "b", None)
            .await
            .unwrap();
        store.append_event(&other, action(0)).await.unwrap();
        for n in 1..=100 {
            assert_eq!(store.append_event(&job, action(n)).await.unwrap(), n as i64);
        }
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_events WHERE job_id = $1")
            .bind(&job)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(kept, 25);
        // A client resuming after an event long deleted gets every event still kept,
        // newest last, and numbering goes on where it was.
        let replay = store.events_after(&job, 3, 1000).await.unwrap();
        let seqs: Vec<i64> = replay.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (76..=100).collect::<Vec<_>>());
        assert!(matches!(
            &replay[24].kind,
            JobEventKind::Action { action, .. } if action == "step 100"
        ));
        assert_eq!(store.last_event_seq(&job).await.unwrap(), 100);
        // Another job's log is not touched.
        assert_eq!(store.events_after(&other, 0, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn progress_never_pushes_what_happened_out_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await.keeping_events(10);
        let job = store
            .open_job("a@old:993", "a@new:993", "r", "a", "a", None)
            .await
            .unwrap();
        let progress = super::super::progress::ProgressSnapshot::default();
        store.append_event(&job, action(1)).await.unwrap();
        for _ in 0..(PROGRESS_EVENTS_KEPT + 50) {
            store.publish_progress(&job, &progress).await.unwrap();
        }
        store.append_event(&job, action(2)).await.unwrap();
        let events = store.events_after(&job, 0, 10_000).await.unwrap();
        let (progress_events, others): (Vec<_>, Vec<_>) = events
            .iter()
            .partition(|e| matches!(e.kind, JobEventKind::Progress { .. }));
        assert_eq!(progress_events.len() as i64, PROGRESS_EVENTS_KEPT);
        assert_eq!(others.len(), 2, "{others:?}");
        // The others are still capped, by their own count.
        for n in 3..=30 {
            store.append_event(&job, action(n)).await.unwrap();
        }
        let events = store.events_after(&job, 0, 10_000).await.unwrap();
        let others: Vec<_> = events
            .iter()
            .filter(|e| !matches!(e.kind, JobEventKind::Progress { .. }))
            .collect();
        assert_eq!(others.len(), 10);
        assert!(matches!(
            &others[0].kind,
            JobEventKind::Action { action, .. } if action == "step 21"
        ));
        // Samples for the chart: one per SAMPLE_EVERY seconds, not one per publish.
        let history = store.history(&job).await.unwrap();
        assert!(!history.is_empty() && history.len() <= 2, "{history:?}");
    }
}
