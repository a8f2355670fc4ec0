//! Figures over every job in the database (all nodes), for `/metrics`: jobs by status,
//! the queue, and what the UID maps and skip lists say was copied and left.

use super::store::{JobStore, Result};
use mailferry_shared::JobStatus;

/// What every job in the database adds up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Jobs per status, every status listed (zero included).
    pub jobs: Vec<(JobStatus, u64)>,
    /// Jobs due to run now that no node holds (waiting for a worker).
    pub queue: u64,
    /// Messages on a target with a confirmed UID, and their bytes.
    pub messages_copied: u64,
    pub bytes_copied: u64,
    /// Messages the last run of their job could not copy.
    pub messages_skipped: u64,
}

impl JobStore {
    pub async fn totals(&self) -> Result<Totals> {
        let by_status: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let jobs = JobStatus::ALL
            .into_iter()
            .map(|status| {
                let n = by_status
                    .iter()
                    .find(|(s, _)| s == status.as_str())
                    .map_or(0, |(_, n)| *n);
                (status, n.max(0) as u64)
            })
            .collect();
        let t = self.clock().await? / 1000;
        let queue: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM jobs WHERE {}",
            super::lease::DUE
        ))
        .bind(t)
        .fetch_one(&self.pool)
        .await?;
        let (messages, bytes): (i64, i64) = sqlx::query_as(
            // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back for one type on both.
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uid_map WHERE state = 'done'",
        )
        .fetch_one(&self.pool)
        .await?;
        let skipped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM skipped_messages")
            .fetch_one(&self.pool)
            .await?;
        Ok(Totals {
            jobs,
            queue: queue.max(0) as u64,
            messages_copied: messages.max(0) as u64,
            bytes_copied: bytes.max(0) as u64,
            messages_skipped: skipped.max(0) as u64,
        })
    }
}
