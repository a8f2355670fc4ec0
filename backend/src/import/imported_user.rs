//! One valid user from an import file, with the passwords the jobs will need.

use super::user_name::UserName;
use crate::engine::Password;
use mailferry_shared::ImportRow;

/// A row that passed every check. `Debug` shows passwords as `Password(***)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedUser {
    /// Physical line of the file where the row starts.
    pub line: u64,
    pub source_user: UserName,
    /// `None` when the route's master user logs in on the source server.
    pub source_password: Option<Password>,
    pub target_user: UserName,
    /// `None` when the route's master user logs in on the target server.
    pub target_password: Option<Password>,
    /// The route's name as configured (whatever case the file used).
    pub route: String,
    /// The file left the route empty, so the default route was used.
    pub route_from_default: bool,
}

impl ImportedUser {
    /// The form the browser may see: no passwords, only whether they were given.
    pub fn to_wire(&self) -> ImportRow {
        ImportRow {
            line: self.line,
            source_user: self.source_user.as_str().to_owned(),
            target_user: self.target_user.as_str().to_owned(),
            route: self.route.clone(),
            route_from_default: self.route_from_default,
            source_password_given: self.source_password.is_some(),
            target_password_given: self.target_password.is_some(),
        }
    }
}
