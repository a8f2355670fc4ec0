use crate::api;
use leptos::prelude::*;
use mailferry_shared::HealthStatus;

#[component]
pub fn Home() -> impl IntoView {
    let health = LocalResource::new(api::health);
    let server_status = move || {
        match health.get() {
        None => view! { <span class="status"><span class="dot"></span>"Checking the server…"</span> }
            .into_any(),
        Some(Ok(h)) if h.status == HealthStatus::Ok => view! {
            <span class="status ok" data-testid="server-status">
                <span class="dot"></span>
                {format!("Server ready (version {}, {} database)", h.version, h.database)}
            </span>
        }
        .into_any(),
        Some(Ok(h)) => view! {
            <span class="status bad" data-testid="server-status">
                <span class="dot"></span>
                {format!("Server has a problem: {}", h.problem.unwrap_or_default())}
            </span>
        }
        .into_any(),
        Some(Err(message)) => view! {
            <span class="status bad" data-testid="server-status"><span class="dot"></span>{message}</span>
        }
        .into_any(),
    }
    };
    view! {
        <section class="card">
            <h1>"Move your mailbox"</h1>
            <p class="lead">
                "Mailferry copies every message, folder, flag and date from your old mail server "
                "to the new one. You can close this page at any time: the migration keeps going."
            </p>
            {server_status}
        </section>
    }
}
