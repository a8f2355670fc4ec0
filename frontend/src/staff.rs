//! What every staff page shares: a session that ended sends the person to `/staff`.

use crate::api::Failure;
use crate::session::use_session;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use mailferry_shared::Me;

#[derive(Clone, Copy)]
pub struct StaffGuard(Callback<Failure>);

impl StaffGuard {
    /// Call with every failed staff API call: a 401 means "sign in again".
    pub fn run(self, failure: Failure) {
        self.0.run(failure);
    }
}

pub fn use_staff_guard() -> StaffGuard {
    let session = use_session();
    let navigate = use_navigate();
    StaffGuard(Callback::new(move |failure: Failure| {
        if failure.is_unauthorized() {
            session.set(Me::Anonymous);
            navigate("/staff", Default::default());
        }
    }))
}
