use serde::{Deserialize, Serialize};

/// Which account of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountSide {
    Source,
    Target,
}

/// A migration route the admin configured: which server mail comes from and goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    pub name: String,
    pub label: String,
    pub source_server: String,
    pub target_server: String,
    /// How the new account's user name is found: typed by the user, or derived from the
    /// old one by the admin's rule (then the user never types it).
    pub target_user: TargetUserRule,
    /// Sides where an admin (master) login does the copying once the user has proved,
    /// with their own password, that the mailbox is theirs.
    pub source_master: bool,
    pub target_master: bool,
    /// Sides where the user signs in with an OAuth provider instead of a password: the
    /// provider's name for the button ("Sign in with Microsoft"). The mailbox is then the
    /// account the user signs in with; no user name is typed.
    #[serde(default)]
    pub source_oauth: Option<String>,
    #[serde(default)]
    pub target_oauth: Option<String>,
}

/// How a route binds the target account to the source account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetUserRule {
    /// The user types the new account's name (and proves it with its password).
    Typed,
    /// The same user name as on the old server.
    SameAsSource,
    /// A template with `{user}` (the whole old name), `{local}` (before the `@`) and
    /// `{domain}` (after it), e.g. `{local}@new.example.org`.
    Template { template: String },
}

impl TargetUserRule {
    /// The target user name this rule gives for `source_user`, or `None` when the user
    /// types it.
    pub fn derive(&self, source_user: &str) -> Option<String> {
        let source_user = source_user.trim();
        match self {
            TargetUserRule::Typed => None,
            TargetUserRule::SameAsSource => Some(source_user.to_owned()),
            TargetUserRule::Template { template } => {
                let (local, domain) = source_user.split_once('@').unwrap_or((source_user, ""));
                Some(
                    template
                        .replace("{user}", source_user)
                        .replace("{local}", local)
                        .replace("{domain}", domain),
                )
            }
        }
    }

    /// In words, for the sign-in page and the admin overview.
    pub fn describe(&self) -> String {
        match self {
            TargetUserRule::Typed => "typed by the user".to_owned(),
            TargetUserRule::SameAsSource => "the same user name as the old mailbox".to_owned(),
            TargetUserRule::Template { template } => {
                format!("derived from the old one: {template}")
            }
        }
    }
}

/// `POST /api/check`: try one side's credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub route: String,
    pub side: AccountSide,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for CheckRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckRequest")
            .field("route", &self.route)
            .field("side", &self.side)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The answer for one side: did the login work, and if not, why, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub side: AccountSide,
    pub ok: bool,
    /// `ok`, `missing`, `wrong_password`, `unreachable`, `tls`, `not_allowed`,
    /// `rate_limited`, `wrong_target`, `other`.
    pub code: String,
    pub message: String,
}

/// `POST /api/session`: sign in to the portal with both accounts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInRequest {
    pub route: String,
    pub source_user: String,
    pub source_password: String,
    pub target_user: String,
    pub target_password: String,
}

impl std::fmt::Debug for SignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInRequest")
            .field("route", &self.route)
            .field("source_user", &self.source_user)
            .field("target_user", &self.target_user)
            .finish_non_exhaustive()
    }
}

/// The answer to a sign-in: each side's check, and the job when both worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignInResult {
    pub source: CheckResult,
    pub target: CheckResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// `POST /api/my/job/password`: a password changed during the migration.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordUpdate {
    pub side: AccountSide,
    pub password: String,
}

impl std::fmt::Debug for PasswordUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordUpdate")
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Helpdesk,
    Admin,
}

/// `POST /api/staff/session`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffSignIn {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for StaffSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSignIn")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `GET /api/setup`: whether this server still waits for its first administrator (no
/// staff account exists and this node holds a setup link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupStatus {
    pub needed: bool,
}

/// `POST /api/setup`: the first administrator, with the one-time token from the setup link
/// the server printed when it started.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstAdmin {
    pub token: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for FirstAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstAdmin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Who is signed in (`GET /api/me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Me {
    Anonymous,
    User {
        job_id: String,
        source_user: String,
        target_user: String,
        route: String,
    },
    Staff {
        username: String,
        role: StaffRole,
    },
}

/// One staff account, as the admin overview lists it (`GET /api/admin/staff`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffAccount {
    pub username: String,
    pub role: StaffRole,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_rules_derive_the_new_name_from_the_old() {
        assert_eq!(TargetUserRule::Typed.derive("a@old.example"), None);
        assert_eq!(
            TargetUserRule::SameAsSource.derive(" alice "),
            Some("alice".to_owned())
        );
        let rule = TargetUserRule::Template {
            template: "{local}@new.example".into(),
        };
        assert_eq!(
            rule.derive("alice@old.example"),
            Some("alice@new.example".to_owned())
        );
        assert_eq!(rule.derive("bob"), Some("bob@new.example".to_owned()));
        let rule = TargetUserRule::Template {
            template: "{domain}/{local} {user}".into(),
        };
        assert_eq!(
            rule.derive("é@ü.example"),
            Some("ü.example/é é@ü.example".to_owned())
        );
    }
}

/// `GET /api/oauth/status`: the sides this browser has signed in to with an OAuth
/// provider (before the migration is started), and the outcome of the last attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthStatus {
    pub signed_in: Vec<OAuthSignedIn>,
    /// Set once after a sign-in came back from the provider (then cleared).
    pub notice: Option<OAuthNotice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthSignedIn {
    pub route: String,
    pub side: AccountSide,
    /// The mailbox: the account the user signed in with.
    pub user: String,
    /// "Microsoft", "Google", ...
    pub provider: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthNotice {
    pub route: String,
    pub side: AccountSide,
    pub ok: bool,
    /// `ok`, `cancelled`, `refused`, `wrong_account`, `unreachable`, `misconfigured`,
    /// `expired`, or a code of [`CheckResult`].
    pub code: String,
    pub message: String,
}
