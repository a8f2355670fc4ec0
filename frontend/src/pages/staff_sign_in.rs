//! `/staff`: helpdesk and admin sign-in.

use crate::api;
use crate::components::check_note::{CheckNote, Note};
use crate::session::use_session;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use mailferry_shared::{Me, StaffSignIn as StaffSignInRequest};

#[component]
pub fn StaffSignIn() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let note = RwSignal::new(None::<Note>);

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let request = StaffSignInRequest {
            username: username.get_untracked().trim().to_string(),
            password: password.get_untracked(),
        };
        busy.set(true);
        note.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::staff_sign_in(request).await {
                Ok(me @ Me::Staff { .. }) => {
                    session.set(me);
                    navigate("/helpdesk", Default::default());
                }
                Ok(_) => note.set(Some(Note::bad("This account is not a staff account."))),
                Err(failure) if failure.is_unauthorized() => {
                    note.set(Some(Note::bad(if failure.message.is_empty() {
                        "Wrong user name or password.".into()
                    } else {
                        failure.message
                    })))
                }
                Err(failure) => note.set(Some(failure.into())),
            }
            password.set(String::new());
            busy.set(false);
        });
    };

    view! {
        <form class="card narrow" on:submit=on_submit>
            <h1>"Staff sign-in"</h1>
            <p class="lead">"For the helpdesk and administrators."</p>
            <div class="field">
                <label for="staff-user">"User name"</label>
                <input id="staff-user" data-testid="staff-user" type="text" autocomplete="username"
                    autocapitalize="off" spellcheck="false" required
                    prop:value=move || username.get()
                    on:input=move |ev| username.set(event_target_value(&ev)) />
            </div>
            <div class="field">
                <label for="staff-password">"Password"</label>
                <input id="staff-password" data-testid="staff-password" type="password"
                    autocomplete="current-password" required
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev)) />
            </div>
            <div class="form-actions">
                <button type="submit" class="primary" data-testid="staff-sign-in" disabled=move || busy.get()>
                    "Sign in"
                </button>
            </div>
            <CheckNote note pending=busy pending_text="Signing in…" testid="staff-result" />
        </form>
    }
}
