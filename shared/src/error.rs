use serde::{Deserialize, Serialize};

/// The JSON body of every error answer from the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable machine-readable code, e.g. `not_found`.
    pub code: String,
    /// What went wrong and what to do, in words a person can act on.
    pub message: String,
}
