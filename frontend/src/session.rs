//! Who is signed in, shared by every page and the top bar.

use crate::api;
use leptos::prelude::*;
use leptos::task::spawn_local;
use mailferry_shared::{Me, StaffRole};
use std::time::Duration;

/// `me` is `None` until the server answered `GET /api/me` once.
#[derive(Clone, Copy)]
pub struct Session {
    pub me: RwSignal<Option<Me>>,
}

impl Session {
    /// Creates the session state, asks the server who we are, and shares it with the pages.
    pub fn provide() -> Session {
        let session = Session {
            me: RwSignal::new(None),
        };
        session.reload();
        provide_context(session);
        session
    }

    pub fn reload(self) {
        spawn_local(async move {
            match api::me().await {
                Ok(me) => {
                    self.me.try_set(Some(me));
                }
                // Unreachable for now (e.g. a restart): ask again soon rather than
                // treating the visitor as signed out.
                Err(failure) if failure.status == 0 || failure.status >= 500 => {
                    set_timeout(move || self.reload(), Duration::from_secs(3));
                }
                Err(_) => {
                    self.me.try_set(Some(Me::Anonymous));
                }
            }
        });
    }

    pub fn set(self, me: Me) {
        self.me.set(Some(me));
    }

    pub fn is_admin(self) -> bool {
        self.me.with(|me| {
            matches!(
                me,
                Some(Me::Staff {
                    role: StaffRole::Admin,
                    ..
                })
            )
        })
    }
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}
