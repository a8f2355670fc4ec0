//! Tries a user's credentials against one side of a route with a real IMAP login, and
//! explains the outcome in words a user can act on. The web layer calls this; it never
//! sees IMAP itself.

use crate::engine::session::Session;
use crate::engine::EngineError;
use crate::profiles::Routes;
use mailferry_shared::{AccountSide, CheckResult};

fn result(side: AccountSide, ok: bool, code: &str, message: String) -> CheckResult {
    CheckResult {
        side,
        ok,
        code: code.to_owned(),
        message,
    }
}

fn side_name(side: AccountSide) -> &'static str {
    match side {
        AccountSide::Source => "old (source)",
        AccountSide::Target => "new (target)",
    }
}

pub async fn check(
    routes: &Routes,
    route: &str,
    side: AccountSide,
    user: &str,
    password: &str,
) -> CheckResult {
    let name = side_name(side);
    if user.trim().is_empty() {
        return result(
            side,
            false,
            "missing",
            format!("Enter your user name for the {name} server."),
        );
    }
    let master = routes.uses_master_user(route, side);
    if password.is_empty() && !master {
        return result(
            side,
            false,
            "missing",
            format!("Enter your password for the {name} server."),
        );
    }
    let Some(endpoint) = routes.endpoint(route, side, user, password) else {
        return result(
            side,
            false,
            "not_allowed",
            "This migration route does not exist; pick one from the list.".into(),
        );
    };
    match Session::connect(&endpoint).await {
        Ok(session) => {
            session.logout().await;
            result(side, true, "ok", format!("Signed in to the {name} server."))
        }
        Err(err) => explain(side, &err),
    }
}

fn explain(side: AccountSide, err: &EngineError) -> CheckResult {
    let name = side_name(side);
    match err {
        EngineError::Login { host, words, .. } => {
            let lower = words.to_ascii_lowercase();
            if lower.contains("app password")
                || lower.contains("application-specific")
                || lower.contains("application specific")
                || lower.contains("web login required")
            {
                result(side, false, "app_password_needed", format!(
                    "The {name} server ({host}) wants an app password instead of your usual password. \
                     Create one in your account's security settings and enter it here."
                ))
            } else {
                result(
                    side,
                    false,
                    "wrong_password",
                    format!(
                        "The {name} server ({host}) did not accept this user name and password. \
                     Check both (mind upper and lower case) and try again."
                    ),
                )
            }
        }
        EngineError::Tls { host, message, .. } => result(
            side,
            false,
            "tls",
            format!(
                "A secure connection to the {name} server ({host}) could not be made: {message}. \
             Tell your administrator; this is not about your password."
            ),
        ),
        EngineError::Connect { host, .. } | EngineError::Timeout { host, .. } => result(
            side,
            false,
            "unreachable",
            format!(
            "The {name} server ({host}) cannot be reached right now. Try again in a few minutes; \
             if it persists, tell your administrator."
        ),
        ),
        other => result(
            side,
            false,
            "other",
            format!("Signing in to the {name} server failed: {other}."),
        ),
    }
}
