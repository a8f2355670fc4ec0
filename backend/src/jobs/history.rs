//! A job's progress over time, for the speed chart and the time left of a page opened
//! mid-run or afterwards: one sample per [`SAMPLE_EVERY`] seconds while the job copies,
//! the newest [`KEPT_SECONDS`] kept.

use super::progress::ProgressSnapshot;
use super::store::{JobStore, Result};
use mailferry_shared::ProgressPoint;

/// Seconds between two samples of one job.
pub const SAMPLE_EVERY: i64 = 5;
/// Samples older than this (behind the newest) are dropped: four hours.
pub const KEPT_SECONDS: i64 = 4 * 3600;

impl JobStore {
    /// Keeps `progress` as a sample at `at` (Unix seconds) unless the job has one from
    /// the last [`SAMPLE_EVERY`] seconds.
    pub async fn record_history(
        &self,
        job_id: &str,
        at: i64,
        progress: &ProgressSnapshot,
    ) -> Result<()> {
        // One statement per publish (about once a second per job): the sample goes in
        // only when none is younger than SAMPLE_EVERY; old ones are dropped only then.
        let inserted = sqlx::query(
            "INSERT INTO job_progress_history (job_id, at, messages_done, bytes_done, rate_messages) \
             SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS ( \
               SELECT 1 FROM job_progress_history WHERE job_id = $1 AND at > $2 - $6)",
        )
        .bind(job_id)
        .bind(at)
        .bind(progress.counts.messages_done as i64)
        .bind(progress.counts.bytes_done as i64)
        .bind(progress.rate_messages)
        .bind(SAMPLE_EVERY)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            sqlx::query("DELETE FROM job_progress_history WHERE job_id = $1 AND at < $2")
                .bind(job_id)
                .bind(at - KEPT_SECONDS)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The job's samples, oldest first.
    pub async fn history(&self, job_id: &str) -> Result<Vec<ProgressPoint>> {
        let rows: Vec<(i64, i64, i64, f64)> = sqlx::query_as(
            "SELECT at, messages_done, bytes_done, rate_messages FROM job_progress_history \
             WHERE job_id = $1 ORDER BY at",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, messages, bytes, rate)| ProgressPoint {
                at,
                messages_done: messages.max(0) as u64,
                bytes_done: bytes.max(0) as u64,
                rate_messages: rate,
            })
            .collect())
    }
}
