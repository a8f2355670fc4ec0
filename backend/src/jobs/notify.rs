//! Wakes whoever waits for news of a job (live-progress streams) and the worker pool
//! (a job was queued). In-process only: streams also poll the store, so news from other
//! nodes arrives too, a little later.

use std::sync::Arc;
use tokio::sync::{broadcast, Notify};

#[derive(Debug, Clone)]
pub struct Notifier {
    job_changed: broadcast::Sender<String>,
    work_queued: Arc<Notify>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            job_changed: broadcast::channel(1024).0,
            work_queued: Arc::new(Notify::new()),
        }
    }
}

impl Notifier {
    pub fn job_changed(&self, job_id: &str) {
        let _ = self.job_changed.send(job_id.to_owned());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.job_changed.subscribe()
    }

    pub fn work_queued(&self) {
        self.work_queued.notify_one();
    }

    pub async fn wait_for_work(&self) {
        self.work_queued.notified().await;
    }
}
