//! Carries job news between nodes that share one PostgreSQL: every event appended to a
//! job's log and every queued job is announced with `NOTIFY`; each node `LISTEN`s and
//! wakes its own live-progress streams and workers. Without it (or when a notification
//! is lost) streams still poll the store every second and workers every two.

use super::notify::Notifier;
use super::store::JobStore;
use crate::db::DatabaseKind;
use sqlx::postgres::PgListener;
use std::time::Duration;

const JOB_CHANNEL: &str = "mailferry_job";
const WORK_CHANNEL: &str = "mailferry_work";

impl JobStore {
    /// Tells watchers on this node at once, and other nodes through PostgreSQL.
    pub(super) async fn announce_job(&self, job_id: &str) {
        self.notifier.job_changed(job_id);
        self.pg_notify(JOB_CHANNEL, job_id).await;
    }

    /// Wakes an idle worker here, and on the other nodes.
    pub(super) async fn announce_work(&self) {
        self.notifier.work_queued();
        self.pg_notify(WORK_CHANNEL, "").await;
    }

    async fn pg_notify(&self, channel: &str, payload: &str) {
        if self.kind != DatabaseKind::Postgres {
            return;
        }
        // pg_notify returns `void`, which the Any driver cannot carry: count its row.
        let sent = sqlx::query("SELECT COUNT(*) FROM (SELECT pg_notify($1, $2)) AS sent")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await;
        if let Err(err) = sent {
            // Not fatal: other nodes' streams and workers also poll.
            tracing::debug!(error = %err, "cannot notify other nodes");
        }
    }
}

/// Listens for other nodes' announcements until the process ends, reconnecting after
/// errors. `url` is the PostgreSQL URL (never logged: it may hold a password).
pub async fn listen(url: String, notifier: Notifier) {
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen_all([JOB_CHANNEL, WORK_CHANNEL]).await {
                Ok(()) => {
                    tracing::debug!("listening for other nodes' job news");
                    loop {
                        match listener.recv().await {
                            Ok(note) if note.channel() == JOB_CHANNEL => {
                                notifier.job_changed(note.payload())
                            }
                            Ok(_) => notifier.work_queued(),
                            Err(err) => {
                                tracing::warn!(error = %err, "lost the job news channel; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot listen for job news"),
            },
            Err(err) => tracing::warn!(error = %err, "cannot connect for job news"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
