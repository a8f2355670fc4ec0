//! `/`: the end user picks a route, checks both mailboxes and starts the migration.

use crate::api;
use crate::components::check_note::{CheckNote, Note};
use crate::components::server_status::ServerStatus;
use crate::session::use_session;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use mailferry_shared::{
    AccountSide, CheckRequest, Me, OAuthSignedIn, OAuthStatus, RouteInfo, SignInRequest,
};

/// What the user typed for one side, and what the server said about it.
#[derive(Clone, Copy)]
struct SideForm {
    side: AccountSide,
    user: RwSignal<String>,
    password: RwSignal<String>,
    note: RwSignal<Option<Note>>,
    checking: RwSignal<bool>,
}

impl SideForm {
    fn new(side: AccountSide) -> SideForm {
        SideForm {
            side,
            user: RwSignal::new(String::new()),
            password: RwSignal::new(String::new()),
            note: RwSignal::new(None),
            checking: RwSignal::new(false),
        }
    }
}

#[component]
pub fn SignIn() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    // Someone already signed in (e.g. reopening the tab) goes straight to their migration.
    Effect::new(move |_| {
        if let Some(Me::User { .. }) = session.me.get() {
            navigate("/migration", Default::default());
        }
    });

    let routes = LocalResource::new(api::routes);
    view! {
        <section class="card intro">
            <h1>"Move your mailbox"</h1>
            <p class="lead">
                "Mailferry copies every message, folder, flag and date from your old mail server "
                "to the new one. You can close this page at any time: the migration keeps going."
            </p>
            <ServerStatus />
        </section>
        <StaffNotice />
        {move || match routes.get() {
            None => view! { <section class="card"><p class="muted">"Loading…"</p></section> }.into_any(),
            Some(Err(failure)) => view! {
                <section class="card"><p class="note bad" role="alert">{failure.message}</p></section>
            }
            .into_any(),
            Some(Ok(routes)) if routes.is_empty() => view! {
                <section class="card">
                    <p class="note bad" role="alert">
                        "No migration is set up on this server yet. Please contact your helpdesk."
                    </p>
                    <p class="muted small">
                        "Setting up this server? Open the setup link it printed when it started."
                    </p>
                </section>
            }
            .into_any(),
            Some(Ok(routes)) => view! { <SignInForm routes /> }.into_any(),
        }}
    }
}

/// Staff who land here get a way to their own pages.
#[component]
fn StaffNotice() -> impl IntoView {
    let session = use_session();
    move || {
        matches!(session.me.get(), Some(Me::Staff { .. })).then(|| {
            view! {
                <p class="card notice">
                    "You are signed in as staff. "
                    <a href="/helpdesk">"Go to the helpdesk"</a>
                </p>
            }
        })
    }
}

#[component]
fn SignInForm(routes: Vec<RouteInfo>) -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    // Back from a provider's sign-in page, the route chosen before comes back in the URL.
    let query = use_query_map();
    let first = query
        .with_untracked(|q| q.get("route"))
        .filter(|name| routes.iter().any(|r| &r.name == name))
        .or_else(|| routes.first().map(|r| r.name.clone()))
        .unwrap_or_default();
    let route_name = RwSignal::new(first);
    let routes = StoredValue::new(routes);
    let source = SideForm::new(AccountSide::Source);
    let target = SideForm::new(AccountSide::Target);
    let route = Memo::new(move |_| {
        routes.with_value(|all| all.iter().find(|r| r.name == route_name.get()).cloned())
    });
    // Sides signed in with a provider (kept by the server across the provider's pages).
    let oauth = RwSignal::new(OAuthStatus::default());
    spawn_local(async move {
        if let Ok(status) = api::oauth_status().await {
            if let Some(notice) = &status.notice {
                let form = match notice.side {
                    AccountSide::Source => source,
                    AccountSide::Target => target,
                };
                form.note.set(Some(if notice.ok {
                    Note::good(notice.message.clone())
                } else {
                    Note::bad(notice.message.clone())
                }));
            }
            oauth.set(status);
        }
    });
    let signed_in = move |side: AccountSide| {
        Signal::derive(move || {
            let name = route_name.get();
            oauth.with(|s| {
                s.signed_in
                    .iter()
                    .find(|p| p.route == name && p.side == side)
                    .cloned()
            })
        })
    };
    let source_signed_in = signed_in(AccountSide::Source);
    let target_signed_in = signed_in(AccountSide::Target);
    let source_user = Signal::derive(move || match source_signed_in.get() {
        Some(p) => p.user,
        None => source.user.get(),
    });
    // Where the route derives the new account from the old one, the user never types it.
    let derived_target = Signal::derive(move || {
        route.get().and_then(|r| {
            r.target_user
                .derive(&source_user.get())
                .map(|name| (name, r.target_user.describe()))
        })
    });

    let starting = RwSignal::new(false);
    let start_note = RwSignal::new(None::<Note>);

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if starting.get_untracked() {
            return;
        }
        let request = SignInRequest {
            route: route_name.get_untracked(),
            source_user: source_user.get_untracked().trim().to_string(),
            source_password: source.password.get_untracked(),
            target_user: match (
                target_signed_in.get_untracked(),
                derived_target.get_untracked(),
            ) {
                (Some(p), _) => p.user,
                (None, Some((name, _))) => name,
                (None, None) => target.user.get_untracked().trim().to_string(),
            },
            target_password: target.password.get_untracked(),
        };
        let (source_user, target_user, route) = (
            request.source_user.clone(),
            request.target_user.clone(),
            request.route.clone(),
        );
        starting.set(true);
        start_note.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::sign_in(request).await {
                Ok(result) => {
                    source.note.set(Some(result.source.into()));
                    target.note.set(Some(result.target.into()));
                    if let Some(job_id) = result.job_id {
                        // Signed in: queue the first pass; the next page shows how it goes.
                        session.set(Me::User {
                            job_id,
                            source_user,
                            target_user,
                            route,
                        });
                        if let Err(failure) = api::my_start().await {
                            start_note.set(Some(failure.into()));
                        }
                        navigate("/migration", Default::default());
                    } else {
                        start_note.set(Some(Note::bad(
                            "Please correct the mailbox marked in red, then press Start again.",
                        )));
                    }
                }
                Err(failure) => start_note.set(Some(failure.into())),
            }
            starting.set(false);
        });
    };

    view! {
        <form class="card sign-in" on:submit=on_submit>
            <h2>"Your two mailboxes"</h2>
            {move || {
                routes.with_value(|all| all.len() > 1).then(|| view! { <RoutePicker routes route_name /> })
            }}
            <div class="sides">
                <SidePanel
                    form=source
                    title="Old mailbox"
                    server=Signal::derive(move || route.get().map(|r| r.source_server).unwrap_or_default())
                    route_name
                    derived_user=Signal::derive(|| None)
                    provider=Signal::derive(move || route.get().and_then(|r| r.source_oauth))
                    signed_in=source_signed_in
                    oauth
                />
                <SidePanel
                    form=target
                    title="New mailbox"
                    server=Signal::derive(move || route.get().map(|r| r.target_server).unwrap_or_default())
                    route_name
                    derived_user=derived_target
                    provider=Signal::derive(move || route.get().and_then(|r| r.target_oauth))
                    signed_in=target_signed_in
                    oauth
                />
            </div>
            <div class="form-actions">
                <button type="submit" class="primary" data-testid="start" disabled=move || starting.get()>
                    {move || if starting.get() { "Signing in…" } else { "Start" }}
                </button>
                <p class="muted small">
                    "Start checks both mailboxes, then begins copying. Nothing is deleted from your old mailbox."
                </p>
            </div>
            <CheckNote note=start_note pending=starting pending_text="Checking both mailboxes…" testid="start-result" />
        </form>
    }
}

#[component]
fn RoutePicker(routes: StoredValue<Vec<RouteInfo>>, route_name: RwSignal<String>) -> impl IntoView {
    view! {
        <div class="field">
            <label for="route">"Which migration?"</label>
            <select
                id="route"
                data-testid="route"
                on:change=move |ev| route_name.set(event_target_value(&ev))
                prop:value=move || route_name.get()
            >
                {routes
                    .get_value()
                    .into_iter()
                    .map(|r| {
                        let text = format!("{} ({} → {})", r.label, r.source_server, r.target_server);
                        view! { <option value=r.name>{text}</option> }
                    })
                    .collect_view()}
            </select>
        </div>
    }
}

#[component]
fn SidePanel(
    form: SideForm,
    title: &'static str,
    #[prop(into)] server: Signal<String>,
    route_name: RwSignal<String>,
    /// The user name this side must have, derived by the route from the other side's
    /// (with the rule in words); the field then shows it and cannot be edited.
    derived_user: Signal<Option<(String, String)>>,
    /// The provider this side signs in with ("Microsoft"), instead of a password.
    provider: Signal<Option<String>>,
    /// The provider sign-in already made for this side.
    signed_in: Signal<Option<OAuthSignedIn>>,
    oauth: RwSignal<OAuthStatus>,
) -> impl IntoView {
    let key = match form.side {
        AccountSide::Source => "source",
        AccountSide::Target => "target",
    };
    let user_id = format!("{key}-user");
    let password_id = format!("{key}-password");
    let check = move |_| {
        if form.checking.get_untracked() {
            return;
        }
        let user = match derived_user.get_untracked() {
            Some((name, _)) => name,
            None => form.user.get_untracked().trim().to_string(),
        };
        if user.is_empty() {
            form.note
                .set(Some(Note::bad("Enter your user name first.")));
            return;
        }
        let request = CheckRequest {
            route: route_name.get_untracked(),
            side: form.side,
            user,
            password: form.password.get_untracked(),
        };
        form.checking.set(true);
        spawn_local(async move {
            let note = match api::check(request).await {
                Ok(result) => result.into(),
                Err(failure) => failure.into(),
            };
            form.note.set(Some(note));
            form.checking.set(false);
        });
    };
    // A changed field makes the last answer stale.
    let edited = move || form.note.set(None);
    view! {
        <fieldset class=move || match (form.note.get(), signed_in.get()) {
            (Some(Note { ok: false, .. }), _) => "side bad",
            (Some(Note { ok: true, .. }), _) | (None, Some(_)) => "side ok",
            (None, None) => "side",
        }>
            <legend>{title}</legend>
            <p class="server muted small">"Server: " {move || server.get()}</p>
            {move || match provider.get() {
                Some(label) => view! {
                    <OAuthSide key form label signed_in route_name oauth derived_user />
                }
                .into_any(),
                None => view! {
            <div class="field">
                        <label for=user_id.clone()>"User name or email address"</label>
                        <input
                            id=user_id.clone()
                            name=format!("{key}_user")
                            data-testid=format!("{key}-user")
                            type="text"
                            autocomplete="username"
                            autocapitalize="off"
                            spellcheck="false"
                            required
                            readonly=move || derived_user.get().is_some()
                            prop:value=move || match derived_user.get() {
                                Some((name, _)) => name,
                                None => form.user.get(),
                            }
                            on:input=move |ev| {
                                form.user.set(event_target_value(&ev));
                                edited();
                            }
                        />
                        {move || derived_user.get().map(|(_, rule)| view! {
                            <p class="muted small" data-testid=format!("{key}-user-rule")>
                                "Set by your organisation: " {rule} "."
                            </p>
                        })}
                    </div>
                    <div class="field">
                            <label for=password_id.clone()>"Password"</label>
                            <input
                                id=password_id.clone()
                                name=format!("{key}_password")
                                data-testid=format!("{key}-password")
                                type="password"
                                autocomplete="current-password"
                                prop:value=move || form.password.get()
                                on:input=move |ev| {
                                    form.password.set(event_target_value(&ev));
                                    edited();
                                }
                            />
                    </div>
                    <div class="check-line">
                        <button type="button" class="secondary" data-testid=format!("check-{key}-button") on:click=check disabled=move || form.checking.get()>
                            "Check"
                        </button>
                        <CheckNote note=form.note pending=form.checking testid=if key == "source" { "check-source" } else { "check-target" } />
                    </div>

                }
                .into_any(),
            }}
        </fieldset>
    }
}

/// A side that signs in with a provider: a "Sign in with …" button, or who signed in.
#[component]
fn OAuthSide(
    key: &'static str,
    form: SideForm,
    label: String,
    signed_in: Signal<Option<OAuthSignedIn>>,
    route_name: RwSignal<String>,
    oauth: RwSignal<OAuthStatus>,
    derived_user: Signal<Option<(String, String)>>,
) -> impl IntoView {
    let side = form.side;
    let start_label = label.clone();
    let forget = move |_| {
        spawn_local(async move {
            if let Ok(status) = api::oauth_forget(&route_name.get_untracked(), side).await {
                form.note.set(None);
                oauth.set(status);
            }
        });
    };
    view! {
        {move || match signed_in.get() {
            Some(proof) => view! {
                <p class="oauth-done" data-testid=format!("{key}-oauth-user")>
                    "Signed in with " {proof.provider.clone()} " as " <strong>{proof.user.clone()}</strong> "."
                </p>
                <button type="button" class="link" data-testid=format!("{key}-oauth-forget") on:click=forget>
                    "Use another account"
                </button>
            }
            .into_any(),
            None => {
                let href = api::oauth_start_url(&route_name.get(), side, false);
                view! {
                    <p class="muted small">
                        "This mailbox is opened by signing in with " {start_label.clone()}
                        ". You are sent to its sign-in page and come back here."
                    </p>
                    {move || derived_user.get().map(|(name, rule)| view! {
                        <p class="muted small" data-testid=format!("{key}-user-rule")>
                            "Sign in as " <strong>{name}</strong> " (" {rule} ")."
                        </p>
                    })}
                    <a class="button primary" rel="external" data-testid=format!("{key}-oauth") href=href>
                        "Sign in with " {start_label.clone()}
                    </a>
                }
                .into_any()
            }
        }}
        <CheckNote note=form.note pending=form.checking testid=if key == "source" { "check-source" } else { "check-target" } />
        <span hidden>{label}</span>
    }
}
