use crate::import::ImportPreview;
use crate::jobs::JobStatus;
use serde::{Deserialize, Serialize};

/// The answer to `POST /api/admin/import`: the preview, and the batch when jobs were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportResult {
    pub preview: ImportPreview,
    /// `None` when nothing was imported (the file had errors and the admin did not ask
    /// to import the valid rows, or it had no valid row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchView>,
}

/// One CSV import and how its jobs are doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchView {
    pub id: String,
    pub created_at: i64,
    pub created_by: String,
    pub jobs: u64,
    /// How many jobs are in each status (statuses with no job are left out).
    pub by_status: Vec<StatusCount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCount {
    pub status: JobStatus,
    pub jobs: u64,
}
