//! `/setup#TOKEN`: the first run. While no staff account exists, the server prints this
//! link with a one-time token; here whoever started it chooses the first admin's user
//! name and password, and is signed in as that admin.

use crate::api;
use crate::components::check_note::{CheckNote, Note};
use crate::session::use_session;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::{use_location, use_navigate};
use mailferry_shared::{FirstAdmin, Me};

#[component]
pub fn Setup() -> impl IntoView {
    let token = use_location()
        .hash
        .get_untracked()
        .trim_start_matches('#')
        .to_string();
    let needed = LocalResource::new(api::setup_status);
    view! {
        {move || match needed.get() {
            None => view! { <section class="card narrow"><p class="muted">"Loading…"</p></section> }.into_any(),
            Some(Err(failure)) => view! {
                <section class="card narrow"><p class="note bad" role="alert">{failure.message}</p></section>
            }
            .into_any(),
            Some(Ok(status)) if !status.needed => view! {
                <section class="card narrow" data-testid="setup-done">
                    <h1>"This server is set up"</h1>
                    <p class="lead">"It already has a staff account, so this link has nothing left to do."</p>
                    <A href="/staff">"Go to the staff sign-in"</A>
                </section>
            }
            .into_any(),
            Some(Ok(_)) if token.is_empty() => view! {
                <section class="card narrow" data-testid="setup-no-token">
                    <h1>"Set up Mailferry"</h1>
                    <p class="note bad" role="alert">
                        "This address lacks its setup code. Open the whole link the server printed when it started (it ends in #…)."
                    </p>
                </section>
            }
            .into_any(),
            Some(Ok(_)) => view! { <FirstAdminForm token=token.clone() /> }.into_any(),
        }}
    }
}

#[component]
fn FirstAdminForm(token: String) -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let token = StoredValue::new(token);
    let username = RwSignal::new(String::from("admin"));
    let password = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<Note>);

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if password.get_untracked() != repeat.get_untracked() {
            note.set(Some(Note::bad("The two passwords differ.")));
            return;
        }
        let request = FirstAdmin {
            token: token.get_value(),
            username: username.get_untracked().trim().to_string(),
            password: password.get_untracked(),
        };
        busy.set(true);
        note.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::create_first_admin(request).await {
                Ok(me @ Me::Staff { .. }) => {
                    password.set(String::new());
                    repeat.set(String::new());
                    session.set(me);
                    navigate("/admin", Default::default());
                }
                Ok(_) => note.set(Some(Note::bad(
                    "The server did not sign this browser in as the new admin.",
                ))),
                Err(failure) => note.set(Some(failure.into())),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="card narrow" on:submit=on_submit data-testid="setup-form">
            <h1>"Set up Mailferry"</h1>
            <p class="lead">"Create the first administrator. You can add helpdesk and admin accounts afterwards."</p>
            <div class="field">
                <label for="setup-user">"User name"</label>
                <input id="setup-user" data-testid="setup-user" type="text" autocomplete="username"
                    autocapitalize="off" spellcheck="false" required maxlength="64"
                    prop:value=move || username.get()
                    on:input=move |ev| username.set(event_target_value(&ev)) />
                <p class="hint muted small">"Letters, digits, '.', '_', '-' or '@'."</p>
            </div>
            <div class="field">
                <label for="setup-password">"Password"</label>
                <input id="setup-password" data-testid="setup-password" type="password"
                    autocomplete="new-password" required minlength="10"
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev)) />
                <p class="hint muted small">"At least 10 characters."</p>
            </div>
            <div class="field">
                <label for="setup-repeat">"Password again"</label>
                <input id="setup-repeat" data-testid="setup-repeat" type="password"
                    autocomplete="new-password" required
                    prop:value=move || repeat.get()
                    on:input=move |ev| repeat.set(event_target_value(&ev)) />
            </div>
            <div class="form-actions">
                <button type="submit" class="primary" data-testid="setup-create" disabled=move || busy.get()>
                    "Create the admin account"
                </button>
            </div>
            <CheckNote note pending=busy pending_text="Creating the account…" testid="setup-result" />
        </form>
    }
}
