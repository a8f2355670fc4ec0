use serde::{Deserialize, Serialize};

/// Answer of `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    /// The server's version (the `mailferry` crate version).
    pub version: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The name of the node that answered (several may share one PostgreSQL).
    #[serde(default)]
    pub node: String,
    /// Why the server is not healthy, in words an operator can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Degraded,
}
