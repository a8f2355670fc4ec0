//! Jobs as the portal sees them: the store (status, credentials, event log, progress),
//! the worker pool that leases queued jobs and runs the engine, and the notifier that wakes
//! live-progress streams. Events flow one way: engine -> worker -> store -> SSE -> browser.

pub mod batch;
pub mod credentials;
pub mod history;
pub mod job_tokens;
pub mod lease;
pub mod notify;
pub mod progress;
pub mod relay;
pub mod store;
pub mod totals;
pub mod worker;

pub use batch::{BatchJob, NewBatch};
pub use credentials::Credentials;
pub use lease::LeasedJob;
pub use notify::Notifier;
pub use store::{JobFilter, JobStore, StoreError};
pub use worker::{WorkerPool, WorkerSettings};

pub use crate::clock::unix_seconds as now;

/// A random identifier (128 bits, hex) for nodes, batches and audit entries.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // getrandom only fails when the OS has no entropy source at all; fall back to time.
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    hex::encode(bytes)
}
