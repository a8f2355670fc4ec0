//! The admin's bulk import of users from a CSV file: what the browser sends, and the
//! preview it gets back (every valid row and every bad one).
//!
//! Passwords never travel back to the browser: a row only says whether one was given.

use serde::{Deserialize, Serialize};

/// What the browser sends: the CSV file's text and what to do if some rows are bad.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    /// The whole CSV file, header line first (a leading UTF-8 byte order mark is fine).
    pub csv: String,
    /// Import the valid rows even when other rows have errors. When `false`, a file with
    /// any error imports nothing and the answer is only the preview.
    #[serde(default)]
    pub import_valid_rows: bool,
}

/// One valid user from the file, as the browser may see it (no passwords).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRow {
    /// Physical line of the file where the row starts (the header is line 1).
    pub line: u64,
    /// Login on the source server.
    pub source_user: String,
    /// Login on the target server.
    pub target_user: String,
    /// Name of the migration route the user goes through.
    pub route: String,
    /// `true` when the file left the route empty and the default route was used.
    #[serde(default)]
    pub route_from_default: bool,
    /// Whether the file gave a source password; without one, the route's master user
    /// logs in for the user.
    pub source_password_given: bool,
    /// Whether the file gave a target password (same rule as the source).
    pub target_password_given: bool,
}

/// One problem in the file, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Physical line of the file (the header is line 1); for problems with the whole
    /// file (empty, too many rows) the line where the problem shows.
    pub line: u64,
    /// The column the problem is in (`source_user`, `target_password`, ... or, for an
    /// unknown column, its name as written in the header); `None` for the whole row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is wrong and how to fix it; never contains a password.
    pub reason: String,
}

/// The answer to an import: the valid rows and every error, in line order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportPreview {
    /// The rows that can be imported.
    pub rows: Vec<ImportRow>,
    /// Every problem found; empty when the whole file is good.
    pub errors: Vec<RowError>,
    /// User rows in the file (lines after the header that are not blank), good or bad.
    pub total_rows: u64,
    /// Rows without any error (`rows.len()`).
    pub valid_rows: u64,
}

impl ImportPreview {
    /// `true` when the file has no error at all, so importing it imports every row.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}
