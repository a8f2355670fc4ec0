//! The API contract between the backend and the browser. Every type the backend
//! sends or receives over HTTP is declared here, once; the frontend never re-declares one.

pub mod error;
pub mod health;

pub use error::ApiError;
pub use health::{Health, HealthStatus};
