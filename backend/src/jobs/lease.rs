//! The job queue shared by every node: leases, heartbeats, takeover and the record of
//! runs. One node holds a job at a time; its lease lasts `lease_seconds` unless renewed;
//! a job whose node died is leased again by any node once the lease has run out, and
//! resumes from the UID map.
//!
//! Leasing is serialised across nodes (a PostgreSQL advisory lock held for the claiming
//! transaction; SQLite's single writer lock), so the per-server job limits, counted from
//! the leases of every node, cannot be overshot by two nodes claiming at once. Times come
//! from the database's clock, so nodes with skewed clocks still agree on expiry.

use super::store::{JobStore, Result};
use crate::db::DatabaseKind;
use mailferry_shared::JobRunView;
use sqlx::{Any, Transaction};

/// A job a worker has leased.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    pub id: String,
    /// This run's row in `job_runs`.
    pub run_id: String,
    pub route: String,
    pub source_user: String,
    pub target_user: String,
    pub credentials: Option<String>,
}

/// The key of the advisory lock that serialises claims on PostgreSQL ("MFqueue").
const QUEUE_LOCK_KEY: i64 = 0x004d_4671_7565_7565;

/// Jobs due now: queued, interrupted mid-run (their lease ran out), due a delta sync, or
/// paused by a pacing cap (or a throttling server) whose `resume_at` has come.
pub(super) const DUE: &str =
    "(lease_until IS NULL OR lease_until < $1) AND cancel_requested = 0 AND ( \
     status IN ('queued', 'connecting', 'copying') \
     OR (next_sync_at IS NOT NULL AND next_sync_at <= $1 AND credentials IS NOT NULL \
         AND status IN ('synced', 'completed_with_skips')) \
     OR (status = 'paused_throttled' AND resume_at IS NOT NULL AND resume_at <= $1 \
         AND credentials IS NOT NULL) )";

impl JobStore {
    /// The database's clock, in Unix milliseconds (this machine's clock on SQLite, where
    /// every worker runs in this process).
    pub async fn clock(&self) -> Result<i64> {
        self.clock_on(&self.pool).await
    }

    async fn clock_on<'e, E>(&self, executor: E) -> Result<i64>
    where
        E: sqlx::Executor<'e, Database = Any>,
    {
        match self.kind {
            DatabaseKind::Sqlite => Ok(crate::clock::unix_millis()),
            DatabaseKind::Postgres => Ok(sqlx::query_scalar(
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            )
            .fetch_one(executor)
            .await?),
        }
    }

    /// Takes the queue lock for the rest of the transaction: one claimer at a time
    /// across every node.
    async fn lock_queue(&self, tx: &mut Transaction<'static, Any>) -> Result<()> {
        match self.kind {
            DatabaseKind::Postgres => {
                // pg_advisory_xact_lock returns `void`, which the Any driver cannot
                // carry; counting its one row keeps the reply to a BIGINT.
                sqlx::query(
                    "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS queue_lock",
                )
                .bind(QUEUE_LOCK_KEY)
                .execute(&mut **tx)
                .await?;
            }
            DatabaseKind::Sqlite => {
                // A write as the first statement takes SQLite's write lock now (waiting
                // out busy_timeout) rather than failing to upgrade a read later.
                sqlx::query("UPDATE jobs SET lease_owner = lease_owner WHERE 1 = 0")
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Leases the next due job for `lease_seconds`. `allowed(route, running)` says whether
    /// a job of `route` may start while `running` (route, jobs) are leased on all nodes.
    pub async fn claim_next(
        &self,
        node: &str,
        lease_seconds: i64,
        allowed: impl Fn(&str, &[(String, i64)]) -> bool,
    ) -> Result<Option<LeasedJob>> {
        let mut tx = self.pool.begin().await?;
        self.lock_queue(&mut tx).await?;
        let now_ms = self.clock_on(&mut *tx).await?;
        let t = now_ms / 1000;
        let running: Vec<(String, i64)> = sqlx::query_as(
            "SELECT route, COUNT(*) FROM jobs WHERE lease_until >= $1 GROUP BY route",
        )
        .bind(t)
        .fetch_all(&mut *tx)
        .await?;
        let candidates: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, route FROM jobs WHERE {DUE} ORDER BY updated_at, id LIMIT 100"
        ))
        .bind(t)
        .fetch_all(&mut *tx)
        .await?;
        let Some(id) = candidates
            .into_iter()
            .find(|(_, route)| allowed(route, &running))
            .map(|(id, _)| id)
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let claimed = sqlx::query(&format!(
            "UPDATE jobs SET lease_owner = $2, lease_until = $3, started_at = $1, \
             next_sync_at = NULL, resume_at = NULL WHERE id = $4 AND {DUE}"
        ))
        .bind(t)
        .bind(node)
        .bind(t + lease_seconds)
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed != 1 {
            // Only possible on a database without the queue lock's guarantee.
            tx.rollback().await?;
            return Ok(None);
        }
        // Read the clock again now that the slot is ours: a run that ended (and freed
        // the slot) before the queries above ended before this instant too.
        let now_ms = self.clock_on(&mut *tx).await?;
        // A run left open was cut short: its node stopped renewing the lease.
        sqlx::query(
            "UPDATE job_runs SET finished_at_ms = $1, outcome = 'abandoned' \
             WHERE job_id = $2 AND finished_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let run_id = super::random_id();
        sqlx::query(
            "INSERT INTO job_runs (id, job_id, node, started_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&run_id)
        .bind(&id)
        .bind(node)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let row: (String, String, String, String, Option<String>) = sqlx::query_as(
            "SELECT id, route, source_user, target_user, credentials FROM jobs WHERE id = $1",
        )
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(LeasedJob {
            id: row.0,
            run_id,
            route: row.1,
            source_user: row.2,
            target_user: row.3,
            credentials: row.4,
        }))
    }

    /// Renews the lease. Returns `Ok(None)` when the lease is lost (another node took the
    /// job), else whether a cancel was requested.
    pub async fn heartbeat(
        &self,
        job_id: &str,
        node: &str,
        lease_seconds: i64,
    ) -> Result<Option<bool>> {
        let t = self.clock().await? / 1000;
        let cancel: Option<i64> = sqlx::query_scalar(
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 \
             RETURNING cancel_requested",
        )
        .bind(t + lease_seconds)
        .bind(job_id)
        .bind(node)
        .fetch_optional(&self.pool)
        .await?;
        Ok(cancel.map(|c| c != 0))
    }

    /// Gives the job back after a run (when this node still holds it) and closes the run
    /// with its outcome (a status, or `lease_lost`). A cancel asked for meanwhile stays
    /// asked for (only queueing the job again clears it). The run is closed before the lease is
    /// freed, in one transaction, so a run recorded on another node starts after this one
    /// ended.
    pub async fn release(
        &self,
        job: &LeasedJob,
        node: &str,
        next_sync_at: Option<i64>,
        outcome: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let now_ms = self.clock_on(&mut *tx).await?;
        sqlx::query(
            "UPDATE job_runs SET finished_at_ms = $1, outcome = $2 WHERE id = $3 AND finished_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(outcome)
        .bind(&job.run_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, next_sync_at = $1 \
             WHERE id = $2 AND lease_owner = $3",
        )
        .bind(next_sync_at)
        .bind(&job.id)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drops every lease: only for a single-node (SQLite) server at start-up, where no
    /// other node can hold one, so interrupted jobs resume at once.
    pub async fn release_all_leases(&self) -> Result<u64> {
        sqlx::query(
            "UPDATE job_runs SET finished_at_ms = $1, outcome = 'abandoned' WHERE finished_at_ms IS NULL",
        )
        .bind(self.clock().await?)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Drops the leases held under `node`'s name: at the start of a node with that name,
    /// they are from its own previous life (killed before it could release them).
    pub async fn release_leases_of(&self, node: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let now_ms = self.clock_on(&mut *tx).await?;
        sqlx::query(
            "UPDATE job_runs SET finished_at_ms = $1, outcome = 'abandoned' \
             WHERE finished_at_ms IS NULL AND node = $2",
        )
        .bind(now_ms)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        let released = sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        )
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(released)
    }

    /// The node holding the job now, if its lease is current (for tests).
    #[cfg(test)]
    pub async fn holder(&self, job_id: &str) -> Result<Option<String>> {
        let t = self.clock().await? / 1000;
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT lease_owner FROM jobs WHERE id = $1 AND lease_until >= $2")
                .bind(job_id)
                .bind(t)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.flatten())
    }

    /// Every run of the job, oldest first: which node ran it, when, and how it ended.
    pub async fn runs(&self, job_id: &str) -> Result<Vec<JobRunView>> {
        let rows: Vec<(String, i64, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT node, started_at_ms, finished_at_ms, outcome FROM job_runs \
             WHERE job_id = $1 ORDER BY started_at_ms, id",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(node, started_at_ms, finished_at_ms, outcome)| JobRunView {
                    node,
                    started_at_ms,
                    finished_at_ms,
                    outcome,
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use crate::jobs::Notifier;

    async fn store_with_jobs(dir: &std::path::Path, jobs: usize) -> (JobStore, Vec<String>) {
        let db = Database::open(&crate::config::sqlite_url(&dir.join("q.db")))
            .await
            .unwrap();
        let store = JobStore::new(db.pool().clone(), db.kind(), Notifier::default());
        let mut ids = Vec::new();
        for i in 0..jobs {
            let id = store
                .open_job(
                    &format!("u{i}@old:993"),
                    &format!("u{i}@new:993"),
                    "r",
                    "u",
                    "u",
                    None,
                )
                .await
                .unwrap();
            store.queue(&id).await.unwrap();
            ids.push(id);
        }
        (store, ids)
    }

    /// At most one running job per route.
    fn one_per_route(route: &str, running: &[(String, i64)]) -> bool {
        !running.iter().any(|(r, n)| r == route && *n > 0)
    }

    #[tokio::test]
    async fn the_limit_counts_leased_jobs_and_a_release_frees_a_slot() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_jobs(dir.path(), 2).await;
        let first = store
            .claim_next("a", 30, one_per_route)
            .await
            .unwrap()
            .unwrap();
        assert!(store
            .claim_next("b", 30, one_per_route)
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.holder(&first.id).await.unwrap().as_deref(), Some("a"));
        // The worker's end of a run: the status, then the lease.
        store
            .set_status(&first.id, mailferry_shared::JobStatus::Synced, None)
            .await
            .unwrap();
        store.release(&first, "a", None, "synced").await.unwrap();
        let second = store
            .claim_next("b", 30, one_per_route)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(second.id, first.id);
        let runs = store.runs(&first.id).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            (runs[0].node.as_str(), runs[0].outcome.as_deref()),
            ("a", Some("synced"))
        );
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_run_marked_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = store_with_jobs(dir.path(), 1).await;
        let held = store
            .claim_next("a", 30, |_, _| true)
            .await
            .unwrap()
            .unwrap();
        // While the lease runs nobody else gets the job; the holder's heartbeat renews it.
        assert!(store
            .claim_next("b", 30, |_, _| true)
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            store.heartbeat(&held.id, "a", 30).await.unwrap(),
            Some(false)
        );
        // Node a stops beating; its lease runs out.
        sqlx::query("UPDATE jobs SET lease_until = 0 WHERE id = $1")
            .bind(&ids[0])
            .execute(&store.pool)
            .await
            .unwrap();
        let taken = store
            .claim_next("b", 30, |_, _| true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.id, held.id);
        // Node a, should it wake up, learns it lost the job.
        assert_eq!(store.heartbeat(&held.id, "a", 30).await.unwrap(), None);
        let outcomes: Vec<_> = store
            .runs(&held.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.node, r.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("a".to_owned(), Some("abandoned".to_owned())),
                ("b".to_owned(), None)
            ]
        );
    }

    #[tokio::test]
    async fn a_throttled_job_is_leased_again_once_its_resume_time_comes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = store_with_jobs(dir.path(), 1).await;
        sqlx::query("UPDATE jobs SET credentials = 'sealed' WHERE id = $1")
            .bind(&ids[0])
            .execute(&store.pool)
            .await
            .unwrap();
        store
            .set_status(&ids[0], mailferry_shared::JobStatus::PausedThrottled, None)
            .await
            .unwrap();
        let now = store.clock().await.unwrap() / 1000;
        store.set_resume_at(&ids[0], Some(now + 60)).await.unwrap();
        assert!(store
            .claim_next("a", 30, |_, _| true)
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.view(&ids[0]).await.unwrap().resume_at, Some(now + 60));
        store.set_resume_at(&ids[0], Some(now - 1)).await.unwrap();
        let job = store
            .claim_next("b", 30, |_, _| true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, ids[0]);
        // Claimed: the resume time is spent.
        let left: Option<i64> = sqlx::query_scalar("SELECT resume_at FROM jobs WHERE id = $1")
            .bind(&ids[0])
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(left, None);
    }

    #[tokio::test]
    async fn a_job_being_cancelled_is_not_leased() {
        let dir = tempfile::tempdir().unwrap();
        let (store, ids) = store_with_jobs(dir.path(), 1).await;
        store.cancel(&ids[0]).await.unwrap();
        assert!(store
            .claim_next("a", 30, |_, _| true)
            .await
            .unwrap()
            .is_none());
        // Queued again, it runs.
        store.queue(&ids[0]).await.unwrap();
        assert!(store
            .claim_next("a", 30, |_, _| true)
            .await
            .unwrap()
            .is_some());
    }
}
