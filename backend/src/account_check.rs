//! Tries a user's credentials against one side of a route with a real IMAP login, and
//! explains the outcome in words a user can act on. The web layer calls this; it never
//! sees IMAP itself.

use crate::engine::imap::session::Session;
use crate::engine::EngineError;
use crate::profiles::Routes;
use mailferry_shared::{AccountSide, CheckResult};
use std::time::Duration;

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

/// The longest a check may take, whatever the server does (each network step also has
/// the profile's own timeout): a slow or hostile server cannot hold a sign-in open.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(30);

/// Proves that `user` owns the mailbox on one side of a route: a real login as that user
/// with their own password. On a side where a master login does the copying, the
/// master is not used here: it would open any mailbox, so it proves nothing.
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
    if password.is_empty() {
        return result(
            side,
            false,
            "missing",
            format!("Enter your password for the {name} server."),
        );
    }
    let Some(endpoint) = routes.proof_endpoint(route, side, user, password) else {
        return result(
            side,
            false,
            "not_allowed",
            "This migration route does not exist; pick one from the list.".into(),
        );
    };
    check_endpoint(side, &endpoint).await
}

/// A real login at `endpoint` (a password or a bearer token), explained per side.
pub async fn check_endpoint(side: AccountSide, endpoint: &crate::engine::Endpoint) -> CheckResult {
    let name = side_name(side);
    let deadline = CHECK_DEADLINE.min(endpoint.timeout.saturating_mul(2));
    match tokio::time::timeout(deadline, Session::connect(endpoint)).await {
        Ok(Ok(session)) => {
            // Logging out is a courtesy; it must not hold the answer up.
            let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
            result(side, true, "ok", format!("Signed in to the {name} server."))
        }
        Ok(Err(err)) => explain(side, &err),
        Err(_) => result(
            side,
            false,
            "unreachable",
            format!(
                "The {name} server ({}) did not complete the sign-in within {} seconds. \
                 Try again in a few minutes; if it persists, tell your administrator.",
                endpoint.host,
                deadline.as_secs()
            ),
        ),
    }
}

/// Whether a check's answer says something about the password (for rate limits).
pub fn is_credential_failure(result: &CheckResult) -> bool {
    matches!(
        result.code.as_str(),
        "wrong_password" | "app_password_needed"
    )
}

fn explain(side: AccountSide, err: &EngineError) -> CheckResult {
    let name = side_name(side);
    match err {
        EngineError::Login {
            host,
            words,
            bearer: true,
            ..
        } => result(
            side,
            false,
            "token_refused",
            format!(
                "The {name} server ({host}) did not let this account in: {words}. If the account \
                 is right, its mailbox may lack an IMAP licence or permission; tell your administrator."
            ),
        ),
        EngineError::Token {
            kind, message, provider, ..
        } => {
            use crate::engine::TokenErrorKind as K;
            let (code, advice) = match kind {
                K::Revoked => ("sign_in_again", format!("Sign in with {provider} again.")),
                K::Unavailable => ("unreachable", "Try again in a few minutes.".to_owned()),
                K::Misconfigured => ("misconfigured", "Tell your administrator.".to_owned()),
            };
            result(side, false, code, format!("The {name} server cannot be signed in to: {message}. {advice}"))
        }
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
