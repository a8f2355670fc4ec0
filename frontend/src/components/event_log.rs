use crate::format;
use leptos::prelude::*;
use mailferry_shared::{JobEvent, JobEventKind};

/// How many log entries are shown before "Show all".
const SHOWN: usize = 100;

/// A job's log, newest first, each entry in a sentence.
#[component]
pub fn EventLog(#[prop(into)] events: Signal<Vec<JobEvent>>) -> impl IntoView {
    let show_all = RwSignal::new(false);
    let total = move || events.with(|e| e.len());
    view! {
        <ol class="event-log" data-testid="event-log">
            {move || {
                let limit = if show_all.get() { usize::MAX } else { SHOWN };
                events.with(|events| {
                    events
                        .iter()
                        .rev()
                        .take(limit)
                        .map(|e| {
                            let (what, tone) = describe(&e.kind);
                            view! {
                                <li class=format!("event {tone}") data-testid="event-row">
                                    <time class="muted small">{format::time(e.at)}</time>
                                    <span>{what}</span>
                                </li>
                            }
                        })
                        .collect_view()
                })
            }}
        </ol>
        {move || (total() == 0).then(|| view! { <p class="muted">"Nothing has happened yet."</p> })}
        {move || (!show_all.get() && total() > SHOWN).then(|| view! {
            <button type="button" class="link" on:click=move |_| show_all.set(true)>
                {format!("Show all {} entries", total())}
            </button>
        })}
    }
}

/// One entry in words, and its colour family.
fn describe(kind: &JobEventKind) -> (String, &'static str) {
    match kind {
        JobEventKind::Status { status, reason } => {
            let mut text = format!("Status: {}", status.label());
            if let Some(reason) = reason {
                text.push_str(&format!(" — {reason}"));
            }
            (text, format::status_tone(*status))
        }
        JobEventKind::Progress { counts, .. } => (
            format!(
                "{} of {} messages copied",
                counts.messages_done, counts.messages_total
            ),
            "neutral",
        ),
        JobEventKind::FolderPlanned {
            source,
            target,
            messages,
            to_copy,
        } => {
            let into = if source == target {
                String::new()
            } else {
                format!(" (into {target})")
            };
            (
                format!("Folder {source}{into}: {to_copy} of {messages} messages to copy"),
                "neutral",
            )
        }
        JobEventKind::FolderDone {
            source,
            copied,
            skipped,
        } => (
            format!("Folder {source} done: {copied} copied, {skipped} skipped"),
            if *skipped > 0 { "warn" } else { "good" },
        ),
        JobEventKind::FolderFailed { source, error } => {
            (format!("Folder {source} failed: {error}"), "bad")
        }
        JobEventKind::MessageSkipped {
            folder,
            uid,
            reason,
        } => (
            format!("Message UID {uid} in {folder} skipped: {reason}"),
            "warn",
        ),
        JobEventKind::Waiting {
            side,
            words,
            since,
            until,
        } => (
            format!(
                "Waiting: the {side} server said \"{words}\" since {} until {}",
                format::time(*since),
                format::time(*until)
            ),
            "warn",
        ),
        JobEventKind::Note { text } => (text.clone(), "neutral"),
        JobEventKind::Action { actor, action } => (format!("{actor}: {action}"), "active"),
    }
}
