use crate::api;
use leptos::prelude::*;
use mailferry_shared::HealthStatus;

/// A one-line answer to "is the server up?", with its version.
#[component]
pub fn ServerStatus() -> impl IntoView {
    let health = LocalResource::new(api::health);
    move || match health.get() {
        None => {
            view! { <span class="status"><span class="dot"></span>"Checking the server…"</span> }
                .into_any()
        }
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
        Some(Err(failure)) => view! {
            <span class="status bad" data-testid="server-status">
                <span class="dot"></span>
                {failure.message}
            </span>
        }
        .into_any(),
    }
}
