use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"Page not found"</h1>
            <p class="lead">"There is nothing at this address."</p>
            <A href="/">"Go to the start page"</A>
        </section>
    }
}
