//! What `/metrics` shows (Prometheus text format), through the `metrics` facade and its
//! Prometheus exporter. Two kinds of figures:
//! - over the whole database, read at each scrape (the same on every node): jobs by
//!   status, the queue, messages and bytes copied, messages skipped;
//! - this node's counters since it started: events its jobs logged by kind (waits,
//!   skips, folder failures, notes, status changes) and waits by side.
//!
//! Nothing is recorded until [`install`] ran (`metrics_listen` set): the counters are
//! then no-ops.

use crate::jobs::JobStore;
use mailferry_shared::JobEventKind;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the process-wide recorder; its handle renders the text.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("cannot set up the metrics recorder: {e}"))?;
    describe();
    Ok(handle)
}

fn describe() {
    metrics::describe_gauge!("mailferry_jobs", "Jobs in the database, by status");
    metrics::describe_gauge!(
        "mailferry_queue_length",
        "Jobs due to run that no node holds yet"
    );
    metrics::describe_gauge!(
        "mailferry_messages_copied",
        "Messages on their targets with a confirmed UID, over all jobs"
    );
    metrics::describe_gauge!(
        "mailferry_bytes_copied",
        "Bytes of those messages (as listed by the source)"
    );
    metrics::describe_gauge!(
        "mailferry_messages_skipped",
        "Messages the last run of their job could not copy, over all jobs"
    );
    metrics::describe_counter!(
        "mailferry_node_events_total",
        "Events this node's jobs logged since it started, by kind"
    );
    metrics::describe_counter!(
        "mailferry_node_waits_total",
        "Waits a server asked this node's jobs for (throttling, busy), by side"
    );
}

/// Counts one event a job logged on this node.
pub fn count_event(kind: &JobEventKind) {
    let name = match kind {
        JobEventKind::Status { .. } => "status",
        JobEventKind::Progress { .. } => "progress",
        JobEventKind::FolderPlanned { .. } => "folder_planned",
        JobEventKind::FolderDone { .. } => "folder_done",
        JobEventKind::FolderFailed { .. } => "folder_failed",
        JobEventKind::MessageSkipped { .. } => "message_skipped",
        JobEventKind::Waiting { .. } => "waiting",
        JobEventKind::Note { .. } => "note",
        JobEventKind::Action { .. } => "action",
    };
    metrics::counter!("mailferry_node_events_total", "kind" => name).increment(1);
    if let JobEventKind::Waiting { side, .. } = kind {
        let side = if side == "source" { "source" } else { "target" };
        metrics::counter!("mailferry_node_waits_total", "side" => side).increment(1);
    }
}

/// The text of one scrape: the database's figures as of now, then this node's counters.
pub async fn render(handle: &PrometheusHandle, store: &JobStore) -> anyhow::Result<String> {
    let totals = store.totals().await?;
    for (status, n) in &totals.jobs {
        metrics::gauge!("mailferry_jobs", "status" => status.as_str()).set(*n as f64);
    }
    metrics::gauge!("mailferry_queue_length").set(totals.queue as f64);
    metrics::gauge!("mailferry_messages_copied").set(totals.messages_copied as f64);
    metrics::gauge!("mailferry_bytes_copied").set(totals.bytes_copied as f64);
    metrics::gauge!("mailferry_messages_skipped").set(totals.messages_skipped as f64);
    Ok(handle.render())
}
