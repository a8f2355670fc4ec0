//! `/helpdesk/jobs/:id`: one job as its user sees it, plus its log, skipped messages,
//! the helpdesk's actions and the UID map export.

use crate::api;
use crate::components::check_note::{CheckNote, Note};
use crate::components::event_log::EventLog;
use crate::components::progress::JobProgress;
use crate::components::skipped::SkippedList;
use crate::format;
use crate::live::{self, JobSource, LiveJob};
use crate::staff::use_staff_guard;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use mailferry_shared::{JobRunView, JobStatus, SkippedMessageView};

#[component]
pub fn JobDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").unwrap_or_default()));
    // A new id (e.g. back/forward between jobs) builds a fresh view with its own stream.
    move || view! { <JobDetailView id=id.get() /> }
}

#[component]
fn JobDetailView(id: String) -> impl IntoView {
    let live = live::follow(JobSource::Staff(id.clone()));
    let guard = use_staff_guard();
    let id = StoredValue::new(id);

    let detail = LocalResource::new(move || {
        live.skipped_changed.track();
        let id = id.get_value();
        async move { api::job_detail(&id).await }
    });
    let skipped = RwSignal::new(Vec::<SkippedMessageView>::new());
    let runs = RwSignal::new(Vec::<JobRunView>::new());
    let load_error = RwSignal::new(None::<String>);
    Effect::new(move |_| match detail.get() {
        Some(Ok(d)) => {
            live.seed_log(d.events);
            skipped.set(d.skipped_messages);
            runs.set(d.runs);
            if live.job.with_untracked(|j| j.is_none()) {
                live.job.set(Some(d.job));
            }
            load_error.set(None);
        }
        Some(Err(failure)) => {
            load_error.set(Some(failure.message.clone()));
            guard.run(failure);
        }
        None => {}
    });
    Effect::new(move |_| {
        if let Some(failure) = live.failure.get() {
            guard.run(failure);
        }
    });

    let title = move || {
        live.job
            .with(|j| {
                j.as_ref()
                    .map(|j| format!("{} → {}", j.source_user, j.target_user))
            })
            .unwrap_or_else(|| "Migration".into())
    };
    view! {
        <p class="breadcrumb"><a href="/helpdesk">"← All migrations"</a></p>
        <div class="page-head">
            <div>
                <h1>{title}</h1>
                <p class="muted small">{move || live.job.with(|j| j.as_ref().map(meta))}</p>
            </div>
        </div>
        {move || load_error.get().map(|e| view! { <p class="note bad" role="alert">{e}</p> })}
        <JobProgress live />
        <HelpdeskActions live id=id.get_value() listed_skips=Signal::derive(move || skipped.with(|s| s.len() as u64)) />
        <section class="card" aria-labelledby="skipped-title">
            <h2 id="skipped-title">
                "Skipped messages " <span class="count">{move || skipped.with(|s| s.len())}</span>
            </h2>
            <SkippedList messages=skipped />
        </section>
        <section class="card" aria-labelledby="runs-title">
            <h2 id="runs-title">"Runs " <span class="count">{move || runs.with(|r| r.len())}</span></h2>
            <RunTable runs />
        </section>
        <section class="card" aria-labelledby="log-title">
            <h2 id="log-title">"Event log"</h2>
            <EventLog events=live.log />
        </section>
    }
}

/// Which node ran the job when, and how each run ended.
#[component]
fn RunTable(runs: RwSignal<Vec<JobRunView>>) -> impl IntoView {
    view! {
        <Show
            when=move || runs.with(|r| !r.is_empty())
            fallback=|| view! { <p class="muted">"Not run yet."</p> }
        >
            <table class="data runs" data-testid="job-runs">
                <thead>
                    <tr><th scope="col">"Node"</th><th scope="col">"Started"</th><th scope="col">"Ended"</th><th scope="col">"Outcome"</th></tr>
                </thead>
                <tbody>
                    {move || runs.get().into_iter().map(|run| view! {
                        <tr>
                            <td>{run.node.clone()}</td>
                            <td>{format::date(run.started_at_ms / 1000)}</td>
                            <td>{run.finished_at_ms.map(|t| format::date(t / 1000)).unwrap_or_else(|| "—".into())}</td>
                            <td>{run_outcome(run.outcome.as_deref())}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </Show>
    }
}

fn run_outcome(outcome: Option<&str>) -> String {
    match outcome {
        None => "Running".into(),
        Some("abandoned") => "Node stopped; another node took over".into(),
        Some("lease_lost") => "Handed over to another node".into(),
        Some(other) => JobStatus::parse(other)
            .map(|s| s.label().to_owned())
            .unwrap_or_else(|| other.to_owned()),
    }
}

fn meta(job: &mailferry_shared::JobView) -> String {
    let mut parts = vec![
        format!("Route {}", job.route),
        format!("created {}", format::date(job.created_at)),
    ];
    if let Some(started) = job.started_at {
        parts.push(format!("started {}", format::date(started)));
    }
    if let Some(batch) = &job.batch_id {
        parts.push(format!(
            "import batch {}",
            batch.chars().take(8).collect::<String>()
        ));
    }
    parts.push(format!("ID {}", job.id));
    parts.join(" · ")
}

#[component]
fn HelpdeskActions(live: LiveJob, id: String, listed_skips: Signal<u64>) -> impl IntoView {
    let guard = use_staff_guard();
    let status = Memo::new(move |_| live.job.with(|j| j.as_ref().map(|j| (j.status, j.skipped))));
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<Note>);
    let id = StoredValue::new(id);
    let run = move |action: &'static str| {
        busy.set(true);
        note.set(None);
        let id = id.get_value();
        spawn_local(async move {
            match api::job_action(&id, action).await {
                Ok(view) => {
                    live.job.set(Some(view));
                    live.skipped_changed.update(|n| *n += 1);
                    note.set(Some(Note::good(match action {
                        "cancel" => "The job was cancelled.",
                        "retry-skipped" => "The skipped messages will be tried again.",
                        _ => "A new pass was queued.",
                    })));
                }
                Err(failure) => {
                    note.set(Some(failure.clone().into()));
                    guard.run(failure);
                }
            }
            busy.set(false);
        });
    };
    let can_cancel = move || {
        status.get().is_some_and(|(s, _)| {
            !matches!(
                s,
                JobStatus::Cancelled
                    | JobStatus::Synced
                    | JobStatus::CompletedWithSkips
                    | JobStatus::Failed
            )
        })
    };
    let can_retry = move || {
        status
            .get()
            .is_some_and(|(s, skipped)| skipped.max(listed_skips.get()) > 0 && !s.is_active())
    };
    let can_sync = move || status.get().is_some_and(|(s, _)| !s.is_active());
    let base = api::job_url(&id.get_value());
    view! {
        <section class="card actions" aria-labelledby="actions-title">
            <h2 id="actions-title">"Actions"</h2>
            <div class="button-row">
                <button class="primary" data-testid="sync-now" disabled=move || busy.get() || !can_sync() on:click=move |_| run("sync")>
                    "Sync now"
                </button>
                <button class="secondary" data-testid="retry-skipped" disabled=move || busy.get() || !can_retry() on:click=move |_| run("retry-skipped")>
                    "Retry skipped"
                </button>
                <button class="danger" data-testid="cancel" disabled=move || busy.get() || !can_cancel() on:click=move |_| run("cancel")>
                    "Cancel"
                </button>
            </div>
            <CheckNote note pending=busy pending_text="Working…" testid="action-result" />
            <h3 class="section-title">"UID map"</h3>
            <p class="muted small">"Which message on the old server became which on the new one (source UID → target UID), per folder."</p>
            <div class="button-row">
                <a class="button secondary" href=format!("{base}/uid-map.csv") download data-testid="export-csv">"Download CSV"</a>
                <a class="button secondary" href=format!("{base}/uid-map.json") download data-testid="export-json">"Download JSON"</a>
            </div>
        </section>
    }
}
