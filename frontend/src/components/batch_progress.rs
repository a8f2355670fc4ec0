//! How an imported batch is doing, refreshed every two seconds.

use crate::api;
use crate::components::status_chip::StatusChip;
use crate::staff::use_staff_guard;
use leptos::prelude::*;
use mailferry_shared::{BatchView, JobStatus};
use std::time::Duration;

const REFRESH: Duration = Duration::from_secs(2);

/// The four groups an admin cares about, with the statuses in each.
const GROUPS: [(&str, &str, &str, &[JobStatus]); 4] = [
    (
        "Queued",
        "batch-queued",
        "neutral",
        &[JobStatus::Ready, JobStatus::Queued],
    ),
    (
        "Copying",
        "batch-copying",
        "active",
        &[JobStatus::Connecting, JobStatus::Copying],
    ),
    (
        "Done",
        "batch-done",
        "good",
        &[JobStatus::Synced, JobStatus::CompletedWithSkips],
    ),
    (
        "Failed or paused",
        "batch-failed",
        "bad",
        &[
            JobStatus::Failed,
            JobStatus::PausedOverQuota,
            JobStatus::PausedThrottled,
            JobStatus::PausedPasswordChanged,
            JobStatus::PausedSignInAgain,
            JobStatus::Cancelled,
        ],
    ),
];

fn count(batch: &BatchView, statuses: &[JobStatus]) -> u64 {
    batch
        .by_status
        .iter()
        .filter(|c| statuses.contains(&c.status))
        .map(|c| c.jobs)
        .sum()
}

#[component]
pub fn BatchProgress(id: String) -> impl IntoView {
    let guard = use_staff_guard();
    let id = StoredValue::new(id);
    let fetched = LocalResource::new(move || {
        let id = id.get_value();
        async move { api::batch(&id).await }
    });
    if let Ok(ticker) = set_interval_with_handle(move || fetched.refetch(), REFRESH) {
        on_cleanup(move || ticker.clear());
    }
    let batch = RwSignal::new(None::<BatchView>);
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| match fetched.get() {
        Some(Ok(b)) => {
            batch.set(Some(b));
            error.set(None);
        }
        Some(Err(failure)) => {
            error.set(Some(failure.message.clone()));
            guard.run(failure);
        }
        None => {}
    });
    let link = format!("/helpdesk?batch={}", api::encode(&id.get_value()));
    view! {
        <section class="card" aria-labelledby="batch-title" data-testid="batch">
            <h2 id="batch-title">"Imported batch"</h2>
            {move || error.get().map(|e| view! { <p class="note bad" role="alert">{e}</p> })}
            {move || batch.get().map(|b| view! { <BatchCounts batch=b /> })}
            <p><a href=link data-testid="batch-link">"See these jobs in the helpdesk table"</a></p>
        </section>
    }
}

#[component]
fn BatchCounts(batch: BatchView) -> impl IntoView {
    let total = batch.jobs.max(1) as f64;
    let summary = format!(
        "{}, imported by {} on {}",
        crate::format::plural(batch.jobs, "user", "users"),
        batch.created_by,
        crate::format::date(batch.created_at)
    );
    view! {
        <p class="muted small">{summary}</p>
        <div class="batch-counts">
            {GROUPS
                .iter()
                .map(|(label, testid, tone, statuses)| {
                    let n = count(&batch, statuses);
                    view! {
                        <div class=format!("count-box {}", if n > 0 { *tone } else { "neutral" })>
                            <span class="count-value" data-testid=*testid>{n}</span>
                            <span class="count-label">{*label}</span>
                        </div>
                    }
                })
                .collect_view()}
        </div>
        <div class="stacked" aria-hidden="true">
            {GROUPS
                .iter()
                .map(|(_, _, tone, statuses)| {
                    let share = count(&batch, statuses) as f64 / total * 100.0;
                    view! { <div class=format!("segment {tone}") style:width=format!("{share:.2}%")></div> }
                })
                .collect_view()}
        </div>
        <ul class="chip-list">
            {batch
                .by_status
                .iter()
                .map(|c| view! { <li><StatusChip status=c.status />" "{c.jobs}</li> })
                .collect_view()}
        </ul>
    }
}
