//! A CSV import written as one transaction: the batch and every row's job (its owner,
//! sealed passwords, log entries, place in the queue) are all stored, or none is. A
//! failure half-way leaves no batch that counts jobs it does not have.

use super::credentials::Credentials;
use super::store::{JobStore, Result};
use crate::vault::Vault;
use mailferry_shared::{JobEventKind, JobStatus};

/// The batch row itself.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub id: String,
    pub created_by: String,
    pub file_name: String,
}

/// One imported user's job: account keys built from normalised names.
#[derive(Debug, Clone)]
pub struct BatchJob {
    pub source_account: String,
    pub target_account: String,
    pub route: String,
    pub source_user: String,
    pub target_user: String,
    pub credentials: Credentials,
}

impl JobStore {
    /// Stores the batch and queues its jobs (a job already running keeps running, with the
    /// new passwords), in one transaction. Returns the job ids in the order of `jobs`.
    pub async fn import_batch(
        &self,
        vault: &Vault,
        batch: &NewBatch,
        jobs: &[BatchJob],
    ) -> Result<Vec<String>> {
        let t = super::now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO batches (id, created_at, created_by, file_name, jobs) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&batch.id)
        .bind(t)
        .bind(&batch.created_by)
        .bind(&batch.file_name)
        .bind(jobs.len() as i64)
        .execute(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            let id = crate::engine::uidmap::find_or_create_job_on(
                &mut tx,
                &job.source_account,
                &job.target_account,
            )
            .await
            .map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
            let sealed = job.credentials.seal(vault, &id)?;
            let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
            let running = JobStatus::parse(&status).is_some_and(JobStatus::is_active);
            sqlx::query(
                "UPDATE jobs SET route = $1, source_user = $2, target_user = $3, batch_id = $4, \
                 credentials = $5, updated_at = $6 WHERE id = $7",
            )
            .bind(&job.route)
            .bind(&job.source_user)
            .bind(&job.target_user)
            .bind(&batch.id)
            .bind(&sealed)
            .bind(t)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            let action = JobEventKind::Action {
                actor: batch.created_by.clone(),
                action: format!("imported in {}", batch.id),
            };
            self.append_event_on(&mut tx, &id, &action).await?;
            if !running {
                // As `queue` does: a fresh start, no cancel or delta sync left over.
                sqlx::query(
                    "UPDATE jobs SET status = $1, status_reason = NULL, cancel_requested = 0, \
                     next_sync_at = NULL, finished_at = NULL WHERE id = $2",
                )
                .bind(JobStatus::Queued.as_str())
                .bind(&id)
                .execute(&mut *tx)
                .await?;
                let queued = JobEventKind::Status {
                    status: JobStatus::Queued,
                    reason: None,
                };
                self.append_event_on(&mut tx, &id, &queued).await?;
            }
            ids.push(id);
        }
        tx.commit().await?;
        for id in &ids {
            self.announce_job(id).await;
        }
        self.announce_work().await;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use crate::jobs::Notifier;

    fn job(i: usize) -> BatchJob {
        BatchJob {
            source_account: format!("user{i}@old:993"),
            target_account: format!("user{i}@new:993"),
            route: "main".into(),
            source_user: format!("user{i}"),
            target_user: format!("user{i}"),
            credentials: Credentials {
                source_password: format!("old-{i}"),
                target_password: format!("new-{i}"),
                source_tokens: None,
                target_tokens: None,
            },
        }
    }

    async fn count(store: &JobStore, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_database_error_in_the_middle_of_an_import_leaves_no_half_batch() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&crate::config::sqlite_url(&dir.path().join("b.db")))
            .await
            .unwrap();
        let store = JobStore::new(db.pool().clone(), db.kind(), Notifier::default());
        let vault = Vault::open(None, &dir.path().join("secret.key")).unwrap();
        // The database refuses the fourth of six users, as a full disk or a lost
        // connection would half-way through a real import.
        sqlx::query(
            "CREATE TRIGGER refuse_user4 BEFORE UPDATE ON jobs WHEN NEW.source_user = 'user4' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let batch = NewBatch {
            id: "batch-1".into(),
            created_by: "admin".into(),
            file_name: "users.csv".into(),
        };
        let jobs: Vec<BatchJob> = (1..=6).map(job).collect();
        let err = store.import_batch(&vault, &batch, &jobs).await.unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        for table in ["batches", "jobs", "job_events"] {
            assert_eq!(count(&store, table).await, 0, "{table} has rows left");
        }

        // Without the failure the same import stores everything, queued.
        sqlx::query("DROP TRIGGER refuse_user4")
            .execute(store.pool())
            .await
            .unwrap();
        let ids = store.import_batch(&vault, &batch, &jobs).await.unwrap();
        assert_eq!(ids.len(), 6);
        assert_eq!(count(&store, "batches").await, 1);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(store.status(id).await.unwrap(), JobStatus::Queued);
            let sealed = store.credentials(id).await.unwrap().unwrap();
            let opened = Credentials::open(&sealed, &vault, id).unwrap();
            assert_eq!(opened.source_password, format!("old-{}", i + 1));
        }
    }
}
