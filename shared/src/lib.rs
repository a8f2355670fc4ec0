//! The API contract between the backend and the browser. Every type the backend
//! sends or receives over HTTP is declared here, once; the frontend never re-declares one.

pub mod auth;
pub mod batch;
pub mod error;
pub mod health;
pub mod import;
pub mod jobs;

pub use auth::*;
pub use batch::{BatchView, ImportResult, StatusCount};
pub use error::ApiError;
pub use health::{Health, HealthStatus};
pub use import::{ImportPreview, ImportRequest, ImportRow, RowError};
pub use jobs::*;
