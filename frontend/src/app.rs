use crate::api;
use crate::pages::{
    admin::Admin, helpdesk::Helpdesk, job_detail::JobDetailPage, migration::Migration,
    not_found::NotFound, setup::Setup, sign_in::SignIn, staff_sign_in::StaffSignIn,
};
use crate::session::{use_session, Session};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::hooks::use_navigate;
use leptos_router::path;
use mailferry_shared::Me;

#[component]
pub fn App() -> impl IntoView {
    Session::provide();
    view! {
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar">
                <A href="/" attr:class="brand">
                    <svg class="logo" viewBox="0 0 24 24" aria-hidden="true">
                        <rect x="2.5" y="5" width="19" height="14" rx="2.5"></rect>
                        <path d="M3.5 6.5l8.5 6.5 8.5-6.5"></path>
                    </svg>
                    "Mailferry"
                </A>
                <TopNav />
            </header>
            <main id="main" tabindex="-1">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=SignIn />
                    <Route path=path!("/migration") view=Migration />
                    <Route path=path!("/staff") view=StaffSignIn />
                    <Route path=path!("/helpdesk") view=Helpdesk />
                    <Route path=path!("/helpdesk/jobs/:id") view=JobDetailPage />
                    <Route path=path!("/admin") view=Admin />
                    <Route path=path!("/setup") view=Setup />
                </Routes>
            </main>
            <footer>"Mailferry — move every message, folder, flag and date."</footer>
        </Router>
    }
}

/// The links that fit who is signed in, and "Sign out".
#[component]
fn TopNav() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let sign_out = move |_| {
        let staff = matches!(session.me.get_untracked(), Some(Me::Staff { .. }));
        let navigate = navigate.clone();
        spawn_local(async move {
            // Even if the server could not be told, this browser forgets the session.
            let _ = api::sign_out().await;
            session.set(Me::Anonymous);
            navigate(if staff { "/staff" } else { "/" }, Default::default());
        });
    };
    view! {
        <nav aria-label="Main">
            {move || match session.me.get() {
                Some(Me::User { source_user, .. }) => view! {
                    <A href="/migration">"My migration"</A>
                    <span class="who muted small">{source_user}</span>
                }
                .into_any(),
                Some(Me::Staff { username, .. }) => view! {
                    <A href="/helpdesk" exact=true>"Migrations"</A>
                    {session.is_admin().then(|| view! { <A href="/admin">"Admin"</A> })}
                    <span class="who muted small">{username}</span>
                }
                .into_any(),
                _ => view! { <A href="/staff">"Staff sign-in"</A> }.into_any(),
            }}
            {move || {
                matches!(session.me.get(), Some(Me::User { .. } | Me::Staff { .. })).then(|| {
                    view! {
                        <button type="button" class="link" data-testid="sign-out" on:click=sign_out.clone()>
                            "Sign out"
                        </button>
                    }
                })
            }}
        </nav>
    }
}
