use crate::format;
use leptos::prelude::*;
use mailferry_shared::JobStatus;

/// A job status as a small coloured label (the colour is never the only cue: the words are there).
#[component]
pub fn StatusChip(status: JobStatus) -> impl IntoView {
    view! {
        <span class=format!("chip {}", format::status_tone(status)) data-status=status.as_str()>
            {status.label()}
        </span>
    }
}
