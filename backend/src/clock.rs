//! This machine's wall clock as Unix time, the one place every module reads it from.
//! (Leases read the database's clock instead: see `jobs::lease`.)

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now.
pub fn unix_seconds() -> i64 {
    unix_millis() / 1000
}

/// Unix milliseconds now.
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
