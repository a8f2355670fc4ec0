use crate::api::Failure;
use leptos::prelude::*;
use mailferry_shared::CheckResult;

/// The outcome of an action, in words, shown right where the action happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub ok: bool,
    pub message: String,
}

impl Note {
    pub fn good(message: impl Into<String>) -> Note {
        Note {
            ok: true,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> Note {
        Note {
            ok: false,
            message: message.into(),
        }
    }
}

impl From<CheckResult> for Note {
    fn from(result: CheckResult) -> Note {
        Note {
            ok: result.ok,
            message: result.message,
        }
    }
}

impl From<Failure> for Note {
    fn from(failure: Failure) -> Note {
        Note {
            ok: false,
            message: failure.message,
        }
    }
}

/// A live region (screen readers announce it) holding a green or red message; while the
/// action runs, a "working" line shows beside it. The element with `testid` only ever holds
/// the outcome, so a test waiting for its text never sees the "working" line.
#[component]
pub fn CheckNote(
    #[prop(into)] note: Signal<Option<Note>>,
    #[prop(into, default = Signal::stored(false))] pending: Signal<bool>,
    #[prop(default = "Checking…")] pending_text: &'static str,
    testid: &'static str,
) -> impl IntoView {
    let class = move || match note.get() {
        Some(Note { ok: true, .. }) => "note ok",
        Some(Note { ok: false, .. }) => "note bad",
        None => "note",
    };
    let text = move || note.get().map(|n| n.message).unwrap_or_default();
    view! {
        <div class="note-slot" role="status" aria-live="polite">
            <Show when=move || pending.get()>
                <p class="note pending">{pending_text}</p>
            </Show>
            <p class=class data-testid=testid data-ok=move || note.get().map(|n| n.ok.to_string())>
                {text}
            </p>
        </div>
    }
}
