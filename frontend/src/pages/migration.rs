//! `/migration`: the signed-in user's own migration, live.

use crate::api;
use crate::components::check_note::{CheckNote, Note};
use crate::components::progress::JobProgress;
use crate::components::skipped::SkippedList;
use crate::live::{self, JobSource, LiveJob};
use crate::session::use_session;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use mailferry_shared::{AccountSide, JobStatus, Me, PasswordUpdate};

#[component]
pub fn Migration() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let live = live::follow(JobSource::Mine);

    // Not signed in as a user (or the session ended): back to the sign-in page.
    Effect::new({
        let navigate = navigate.clone();
        move |_| {
            let signed_out = matches!(session.me.get(), Some(Me::Anonymous | Me::Staff { .. }))
                || live
                    .failure
                    .with(|f| f.as_ref().is_some_and(|f| f.is_unauthorized()));
            if signed_out {
                navigate("/", Default::default());
            }
        }
    });

    let accounts = move || match session.me.get() {
        Some(Me::User {
            source_user,
            target_user,
            ..
        }) => format!("From {source_user} to {target_user}"),
        _ => live
            .job
            .with(|j| {
                j.as_ref()
                    .map(|j| format!("From {} to {}", j.source_user, j.target_user))
            })
            .unwrap_or_default(),
    };

    view! {
        <div class="page-head">
            <div>
                <h1>"Your migration"</h1>
                <p class="lead">{accounts}</p>
            </div>
        </div>
        <p class="muted small">"You can close this page: copying goes on, and this page shows it again when you come back."</p>
        <JobProgress live />
        <JobActions live />
        <SignInAgain live />
        <PasswordForm live />
        <MySkipped live />
    }
}

/// Start / cancel / sync now, offered according to where the job stands.
#[component]
fn JobActions(live: LiveJob) -> impl IntoView {
    let status = Memo::new(move |_| live.job.with(|j| j.as_ref().map(|j| j.status)));
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<Note>);
    // 409: the passwords were erased after the last run; a new sign-in stores them again.
    let needs_sign_in = RwSignal::new(false);
    let run = move |what: &'static str| {
        busy.set(true);
        note.set(None);
        needs_sign_in.set(false);
        spawn_local(async move {
            let result = match what {
                "cancel" => api::my_cancel().await,
                "start" => api::my_start().await,
                _ => api::my_sync().await,
            };
            match result {
                Ok(view) => {
                    let message = match what {
                        "cancel" => {
                            "Stopped. Nothing copied so far is lost; you can carry on later."
                        }
                        _ => "Queued: copying starts as soon as a worker is free.",
                    };
                    live.job.set(Some(view));
                    note.set(Some(Note::good(message)));
                }
                Err(failure) => {
                    needs_sign_in.set(failure.status == 409);
                    note.set(Some(failure.into()));
                }
            }
            busy.set(false);
        });
    };
    let session = use_session();
    let navigate = use_navigate();
    let sign_in_again = move |_| {
        let navigate = navigate.clone();
        spawn_local(async move {
            let _ = api::sign_out().await;
            session.set(Me::Anonymous);
            navigate("/", Default::default());
        });
    };
    let can_cancel = move || {
        status.get().is_some_and(|s| {
            s.is_active()
                || matches!(
                    s,
                    JobStatus::PausedThrottled
                        | JobStatus::PausedOverQuota
                        | JobStatus::PausedPasswordChanged
                        | JobStatus::PausedSignInAgain
                )
        })
    };
    let can_start = move || status.get() == Some(JobStatus::Ready);
    let can_sync = move || status.get().is_some_and(|s| s.is_settled());
    view! {
        <section class="card actions" aria-label="Actions">
            <div class="button-row">
                <Show when=can_start>
                    <button class="primary" data-testid="start-job" disabled=move || busy.get() on:click=move |_| run("start")>
                        "Start copying"
                    </button>
                </Show>
                <Show when=can_sync>
                    <button class="primary" data-testid="sync-now" disabled=move || busy.get() on:click=move |_| run("sync")>
                        "Sync now"
                    </button>
                </Show>
                <Show when=can_cancel>
                    <button class="danger" data-testid="cancel" disabled=move || busy.get() on:click=move |_| run("cancel")>
                        "Cancel"
                    </button>
                </Show>
                <span class="muted small">{move || hint(status.get())}</span>
            </div>
            <CheckNote note pending=busy pending_text="Working…" testid="action-result" />
            <Show when=move || needs_sign_in.get()>
                <button class="secondary" data-testid="sign-in-again" on:click=sign_in_again.clone()>
                    "Sign in again"
                </button>
            </Show>
        </section>
    }
}

fn hint(status: Option<JobStatus>) -> &'static str {
    match status {
        Some(JobStatus::Synced) => "Sync now copies messages that arrived since the last pass.",
        Some(JobStatus::Failed | JobStatus::Cancelled | JobStatus::CompletedWithSkips) => {
            "Sync now runs another pass; messages already copied are not copied twice."
        }
        Some(s) if s.is_active() => "Cancelling is safe at any moment; you can carry on later.",
        _ => "",
    }
}

/// Sides that sign in with a provider: after consent was withdrawn (or expired), the
/// user signs in again there and the job goes on. The outcome of the last attempt comes
/// back from the server once.
#[component]
fn SignInAgain(live: LiveJob) -> impl IntoView {
    let session = use_session();
    let routes = LocalResource::new(api::routes);
    let note = RwSignal::new(None::<Note>);
    spawn_local(async move {
        if let Ok(status) = api::oauth_status().await {
            if let Some(n) = status.notice {
                note.set(Some(if n.ok {
                    Note::good(n.message)
                } else {
                    Note::bad(n.message)
                }));
                live.refresh();
            }
        }
    });
    let paused = Memo::new(move |_| {
        live.job.with(|j| {
            j.as_ref()
                .is_some_and(|j| j.status == JobStatus::PausedSignInAgain)
        })
    });
    let sides = move || {
        let Some(Me::User { route, .. }) = session.me.get() else {
            return Vec::new();
        };
        let Some(Ok(all)) = routes.get() else {
            return Vec::new();
        };
        let Some(info) = all.into_iter().find(|r| r.name == route) else {
            return Vec::new();
        };
        [
            (AccountSide::Source, "old", info.source_oauth),
            (AccountSide::Target, "new", info.target_oauth),
        ]
        .into_iter()
        .filter_map(|(side, words, label)| {
            label.map(|label| (api::oauth_start_url(&route, side, true), words, label))
        })
        .collect::<Vec<_>>()
    };
    view! {
        <Show when=move || paused.get() || note.with(|n| n.is_some())>
            <section class="card sign-in-again" data-testid="sign-in-again">
                <h2>"Sign in again"</h2>
                <p class="muted small">
                    "The provider no longer lets the portal into your mailbox (access withdrawn or expired). "
                    "Sign in again as the same account: the migration then goes on where it stopped."
                </p>
                {move || sides()
                    .into_iter()
                    .map(|(href, words, label)| view! {
                        <a class="button primary" rel="external" href=href data-testid=format!("renew-{words}")>
                            {format!("Sign in again with {label} ({words} mailbox)")}
                        </a>
                    })
                    .collect_view()}
                <CheckNote note testid="renew-result" />
            </section>
        </Show>
    }
}

/// Re-enter a password that changed while the migration ran.
#[component]
fn PasswordForm(live: LiveJob) -> impl IntoView {
    let paused = Memo::new(move |_| {
        live.job.with(|j| {
            j.as_ref()
                .is_some_and(|j| j.status == JobStatus::PausedPasswordChanged)
        })
    });
    let side = RwSignal::new(AccountSide::Source);
    let password = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<Note>);
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let update = PasswordUpdate {
            side: side.get_untracked(),
            password: password.get_untracked(),
        };
        if update.password.is_empty() {
            note.set(Some(Note::bad("Enter the new password first.")));
            return;
        }
        busy.set(true);
        note.set(None);
        spawn_local(async move {
            match api::my_password(update).await {
                Ok(result) => {
                    if result.ok {
                        password.set(String::new());
                        live.refresh();
                    }
                    note.set(Some(result.into()));
                }
                Err(failure) => note.set(Some(failure.into())),
            }
            busy.set(false);
        });
    };
    view! {
        <details class="card password" prop:open=move || paused.get()>
            <summary>"Changed a password?"</summary>
            <form on:submit=on_submit>
                <p class="muted small">
                    "If you changed the password of either mailbox while the migration runs, enter the new one here. It is checked before it is used."
                </p>
                <fieldset class="choice">
                    <legend>"Which mailbox?"</legend>
                    <label>
                        <input type="radio" name="password-side" value="source"
                            prop:checked=move || side.get() == AccountSide::Source
                            on:change=move |_| side.set(AccountSide::Source) />
                        "Old mailbox"
                    </label>
                    <label>
                        <input type="radio" name="password-side" value="target"
                            prop:checked=move || side.get() == AccountSide::Target
                            on:change=move |_| side.set(AccountSide::Target) />
                        "New mailbox"
                    </label>
                </fieldset>
                <div class="field">
                    <label for="new-password">"New password"</label>
                    <input id="new-password" type="password" autocomplete="new-password" data-testid="new-password"
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev)) />
                </div>
                <button type="submit" class="secondary" disabled=move || busy.get()>"Check and save"</button>
                <CheckNote note pending=busy testid="password-result" />
            </form>
        </details>
    }
}

#[component]
fn MySkipped(live: LiveJob) -> impl IntoView {
    let skipped = LocalResource::new(move || {
        live.skipped_changed.track();
        api::my_skipped()
    });
    let messages = Signal::derive(move || skipped.get().and_then(|r| r.ok()).unwrap_or_default());
    let error = move || skipped.get().and_then(|r| r.err()).map(|f| f.message);
    view! {
        <section class="card" aria-labelledby="skipped-title">
            <h2 id="skipped-title">
                "Skipped messages "
                <span class="count">{move || messages.with(|m| m.len())}</span>
            </h2>
            <p class="muted small">
                "Messages that could not be copied stay in your old mailbox. The reason is given for each."
            </p>
            {move || error().map(|e| view! { <p class="note bad" role="alert">{e}</p> })}
            <SkippedList messages />
        </section>
    }
}
