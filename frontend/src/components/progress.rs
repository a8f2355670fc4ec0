//! The progress of one job, as the user and the helpdesk both see it.

use crate::components::chart::ThroughputChart;
use crate::format;
use crate::live::{Connection, LiveJob};
use leptos::prelude::*;
use mailferry_shared::{FolderProgress, JobStatus, JobView};

/// A fixed-height bar with the share done; the width alone changes, so nothing jumps.
#[component]
pub fn ProgressBar(
    #[prop(into)] value: Signal<f64>,
    #[prop(into)] label: Signal<String>,
    #[prop(optional)] tone: &'static str,
    #[prop(optional)] small: bool,
) -> impl IntoView {
    let percent = move || (value.get() * 100.0).clamp(0.0, 100.0);
    view! {
        <div
            class=format!("bar {tone} {}", if small { "small" } else { "" })
            role="progressbar"
            aria-valuemin="0"
            aria-valuemax="100"
            aria-valuenow=move || format!("{:.0}", percent())
            aria-label=label
        >
            <div class="fill" style:width=move || format!("{:.2}%", percent())></div>
        </div>
    }
}

/// Status, overall bar and numbers, speed chart and one bar per folder.
#[component]
pub fn JobProgress(live: LiveJob) -> impl IntoView {
    // Built once when the job arrives, not again on every progress event: the card's
    // own signals follow the job from there.
    let loaded = Memo::new(move |_| live.job.with(Option::is_some));
    view! {
        <Show
            when=move || loaded.get()
            fallback=|| view! { <section class="card"><p class="muted">"Loading the migration…"</p></section> }
        >
            <JobProgressCard live />
        </Show>
    }
}

#[component]
fn JobProgressCard(live: LiveJob) -> impl IntoView {
    // Folder rows change only when a folder does, not on every progress tick.
    let folders = Memo::new(move |_| {
        live.job
            .with(|j| j.as_ref().map(|j| j.folders.clone()).unwrap_or_default())
    });
    let show =
        move |f: fn(&JobView) -> String| live.job.with(|j| j.as_ref().map(f).unwrap_or_default());
    let status = Memo::new(move |_| live.job.with(|j| j.as_ref().map(|j| j.status)));
    let counts = Memo::new(move |_| {
        live.job
            .with(|j| j.as_ref().map(|j| j.counts).unwrap_or_default())
    });
    let overall = Signal::derive(move || {
        let c = counts.get();
        if status.get() == Some(JobStatus::Synced) && c.messages_total == 0 {
            1.0
        } else {
            format::fraction(c.messages_done, c.messages_total)
        }
    });
    let tone = move || status.get().map(bar_tone).unwrap_or("");
    view! {
        <section class="card progress-card" aria-labelledby="progress-title">
            <div class="progress-head">
                <h2 id="progress-title" class="visually-hidden">"Progress"</h2>
                <span class=move || format!("status-label {}", tone()) data-testid="job-status" data-status=move || status.get().map(|s| s.as_str())>
                    {move || status.get().map(|s| s.label())}
                </span>
                <ConnectionNote connection=live.connection />
            </div>
            <p class="reason">{move || show(|j| j.status_reason.clone().unwrap_or_default())}</p>
            {move || live.job.with(|j| j.as_ref().and_then(format::paused_until)).map(|line| view! {
                <p class="note paused-until" data-testid="paused-until">{line}</p>
            })}
            <div class=move || format!("overall {}", tone())>
                <ProgressBar value=overall label=Signal::derive(move || "Messages copied".to_string()) />
            </div>
            <dl class="stats">
                <div>
                    <dt>"Messages"</dt>
                    <dd data-testid="progress-messages">
                        {move || {
                            let c = counts.get();
                            format!("{} of {} messages", c.messages_done, c.messages_total)
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Data"</dt>
                    <dd>
                        {move || {
                            let c = counts.get();
                            format!("{} of {}", format::bytes(c.bytes_done), format::bytes(c.bytes_total))
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Speed"</dt>
                    <dd>{move || show(speed)}</dd>
                </div>
                <div>
                    <dt>"Time left"</dt>
                    <dd>{move || show(time_left)}</dd>
                </div>
            </dl>
            <ThroughputChart samples=live.samples copying=Signal::derive(move || status.get() == Some(JobStatus::Copying)) />
            <FolderList folders=Signal::from(folders) />
        </section>
    }
}

#[component]
fn ConnectionNote(connection: RwSignal<Connection>) -> impl IntoView {
    let text = move || match connection.get() {
        Connection::Connecting => "Connecting…",
        Connection::Live => "Live",
        Connection::Reconnecting => "Reconnecting…",
    };
    let class = move || match connection.get() {
        Connection::Live => "live ok",
        Connection::Connecting => "live",
        Connection::Reconnecting => "live warn",
    };
    view! {
        <span class=class data-testid="live-state" role="status" aria-live="polite">
            <span class="dot"></span>
            {text}
        </span>
    }
}

#[component]
fn FolderList(#[prop(into)] folders: Signal<Vec<FolderProgress>>) -> impl IntoView {
    view! {
        <h3 class="section-title">"Folders"</h3>
        {move || {
            let folders = folders.get();
            if folders.is_empty() {
                view! { <p class="muted">"The folders appear here once they have been counted."</p> }.into_any()
            } else {
                view! {
                    <ul class="folders">
                        {folders.into_iter().map(|f| view! { <FolderRow folder=f /> }).collect_view()}
                    </ul>
                }
                .into_any()
            }
        }}
    }
}

#[component]
fn FolderRow(folder: FolderProgress) -> impl IntoView {
    let name = if folder.source == folder.target {
        folder.source.clone()
    } else {
        format!("{} → {}", folder.source, folder.target)
    };
    let value = if folder.to_copy == 0 {
        if folder.done {
            1.0
        } else {
            0.0
        }
    } else {
        format::fraction(folder.copied + folder.skipped, folder.to_copy)
    };
    let already = folder.messages.saturating_sub(folder.to_copy);
    let mut detail = if folder.to_copy == 0 && folder.done {
        "nothing new to copy".to_string()
    } else {
        format!("{} of {} copied", folder.copied, folder.to_copy)
    };
    if already > 0 {
        detail.push_str(&format!(", {already} already there"));
    }
    if folder.skipped > 0 {
        detail.push_str(&format!(", {} skipped", folder.skipped));
    }
    let (state, tone) = match (&folder.error, folder.done) {
        (Some(_), _) => ("Failed", "bad"),
        (None, true) if folder.skipped > 0 => ("Done", "warn"),
        (None, true) => ("Done", "good"),
        (None, false) if folder.copied > 0 => ("Copying", "active"),
        (None, false) => ("Waiting", "neutral"),
    };
    let label = format!("{name}: {detail}");
    view! {
        <li class="folder-row" data-testid="folder-row" data-folder=folder.source.clone()>
            <div class="folder-line">
                <span class="folder-name">{name}</span>
                <span class=format!("folder-state {tone}")>{state}</span>
            </div>
            <ProgressBar value=Signal::stored(value) label=Signal::stored(label) tone=tone small=true />
            <div class="folder-detail muted small">{detail}</div>
            {folder.error.map(|e| view! { <div class="folder-error">{e}</div> })}
        </li>
    }
}

fn bar_tone(status: JobStatus) -> &'static str {
    format::status_tone(status)
}

fn speed(job: &JobView) -> String {
    if job.status == JobStatus::Copying && job.rate_messages > 0.0 {
        format!(
            "{} msg/s · {}/s",
            format::rate(job.rate_messages),
            format::bytes(job.rate_bytes as u64)
        )
    } else {
        "—".into()
    }
}

fn time_left(job: &JobView) -> String {
    match (job.status, job.eta_seconds) {
        (JobStatus::Copying | JobStatus::PausedThrottled, Some(seconds)) => {
            mailferry_shared::eta_words(seconds, job.eta_note.as_deref())
        }
        (JobStatus::Copying, None) => "working it out…".into(),
        (JobStatus::Synced | JobStatus::CompletedWithSkips, _) => match job.finished_at {
            Some(at) => format!("finished {}", format::ago(at)),
            None => "finished".into(),
        },
        _ => "—".into(),
    }
}
