//! Mailferry's web portal, rendered in the browser (Leptos CSR, WebAssembly).

mod api;
mod app;
mod components;
mod format;
mod live;
mod pages;
mod session;
mod staff;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
