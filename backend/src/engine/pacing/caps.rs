//! What one account may do (the caps of its server profile), the windows they are
//! counted in, and the words that say so. Pure: no database, no clock.

use mailferry_shared::PROVIDER_LIMIT;
use std::time::Duration;

/// The caps of one account. `None` is "no cap". A generic server has none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connections open at once, all jobs and nodes together.
    pub connections: Option<u32>,
    /// Messages fetched (source) or appended (target) per hour.
    pub messages_per_hour: Option<u64>,
    /// Bytes of message bodies downloaded (when the account is a source) per window.
    pub download_bytes: Option<u64>,
    /// Bytes of messages uploaded (when the account is a target) per window.
    pub upload_bytes: Option<u64>,
    /// The largest message the account takes as a target.
    pub max_message: Option<u64>,
    /// The window of the byte caps ("per day": 24 h unless set otherwise).
    pub window: Duration,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            connections: None,
            messages_per_hour: None,
            download_bytes: None,
            upload_bytes: None,
            max_message: None,
            window: DAY,
        }
    }
}

pub const DAY: Duration = Duration::from_secs(86_400);
pub const HOUR: Duration = Duration::from_secs(3_600);

impl Caps {
    /// No cap at all: nothing to count, nothing to ask the database.
    pub fn is_unlimited(&self) -> bool {
        self.connections.is_none()
            && self.messages_per_hour.is_none()
            && self.download_bytes.is_none()
            && self.upload_bytes.is_none()
            && self.max_message.is_none()
    }
}

/// The most bytes one fetch batch may hold so that the window's last batch wastes little
/// of a byte cap (a batch is admitted whole or not at all): a twentieth of the smallest
/// cap, so at most 5 % of a window goes unused.
pub fn batch_bytes(wanted: u64, caps: &[Option<u64>]) -> u64 {
    match caps.iter().flatten().min() {
        Some(cap) => wanted.min((cap / 20).max(1)),
        None => wanted,
    }
}

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Download = 0,
    Upload = 1,
    Messages = 2,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Download => "download",
            Kind::Upload => "upload",
            Kind::Messages => "messages",
        }
    }
}

/// The fixed window holding `now_ms`: `(start, end)` in Unix milliseconds. Windows are
/// aligned to the Unix epoch (a day's window starts at 00:00 UTC).
pub fn window_of(now_ms: i64, window: Duration) -> (i64, i64) {
    let len = (window.as_millis() as i64).max(1);
    let start = now_ms - now_ms.rem_euclid(len);
    (start, start + len)
}

/// "450 MB", "2.5 MB", "800 kB": decimal units, as providers state their limits.
pub fn bytes_words(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        let mb = bytes as f64 / 1e6;
        if bytes.is_multiple_of(1_000_000) {
            format!("{} MB", bytes / 1_000_000)
        } else {
            format!("{mb:.1} MB")
        }
    } else if bytes >= 1_000 {
        format!("{} kB", bytes / 1_000)
    } else {
        format!("{bytes} bytes")
    }
}

/// The window in words after a limit: "/day", "/hour", " per 8 s".
pub fn per_window(window: Duration) -> String {
    match window.as_secs() {
        86_400 => "/day".into(),
        3_600 => "/hour".into(),
        s => format!(" per {s} s"),
    }
}

/// Why the run pauses at a byte cap: "daily upload limit of 450 MB reached (provider
/// limit)", or with a window other than a day "upload limit of 2 MB per 8 s reached ...".
/// (The portal tells a cap's pause from a busy server's by [`PROVIDER_LIMIT`].)
pub fn reached_words(kind: Kind, cap: u64, window: Duration) -> String {
    let label = PROVIDER_LIMIT;
    let what = match kind {
        Kind::Download => "download",
        Kind::Upload => "upload",
        Kind::Messages => "message",
    };
    let amount = match kind {
        Kind::Messages => format!("{cap} messages"),
        _ => bytes_words(cap),
    };
    match window.as_secs() {
        86_400 => format!("daily {what} limit of {amount} reached ({label})"),
        3_600 => format!("hourly {what} limit of {amount} reached ({label})"),
        _ => format!(
            "{what} limit of {amount}{} reached ({label})",
            per_window(window)
        ),
    }
}

/// How a byte cap bounds the time left: "at the provider's 450 MB/day limit", and the
/// seconds that `remaining` bytes take at `cap` bytes per `window`.
pub fn cap_eta(remaining: u64, cap: u64, window: Duration) -> u64 {
    if remaining == 0 || cap == 0 {
        return 0;
    }
    ((remaining as f64 / cap as f64) * window.as_secs_f64()).ceil() as u64
}

/// "at the provider's 450 MB/day limit" (for an ETA decided by a byte cap).
pub fn eta_note(cap: u64, window: Duration) -> String {
    format!(
        "at the provider's {}{} limit",
        bytes_words(cap),
        per_window(window)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_aligned() {
        let day = DAY;
        // 2026-12-01 15:00:00 UTC
        let t = 1_796_137_200_000;
        let (start, end) = window_of(t, day);
        assert_eq!(start % 86_400_000, 0);
        assert_eq!(end - start, 86_400_000);
        assert!(start <= t && t < end);
        // The last millisecond of a window and the first of the next.
        assert_eq!(window_of(end - 1, day), (start, end));
        assert_eq!(window_of(end, day), (end, end + 86_400_000));
        // Short windows for tests.
        assert_eq!(window_of(12_345, Duration::from_secs(5)), (10_000, 15_000));
        // A zero window does not divide by zero.
        assert_eq!(window_of(7, Duration::ZERO), (7, 8));
    }

    #[test]
    fn words_name_the_limit_and_its_window() {
        assert_eq!(
            reached_words(Kind::Upload, 450_000_000, DAY),
            "daily upload limit of 450 MB reached (provider limit)"
        );
        assert_eq!(
            reached_words(Kind::Download, 2_500_000, Duration::from_secs(8)),
            "download limit of 2.5 MB per 8 s reached (provider limit)"
        );
        assert_eq!(
            reached_words(Kind::Messages, 3000, HOUR),
            "hourly message limit of 3000 messages reached (provider limit)"
        );
        assert_eq!(bytes_words(800_000), "800 kB");
        assert_eq!(bytes_words(12), "12 bytes");
    }

    #[test]
    fn a_daily_cap_decides_the_time_left_in_days() {
        // 1.35 GB left at 450 MB/day: three days.
        assert_eq!(cap_eta(1_350_000_000, 450_000_000, DAY), 3 * 86_400);
        assert_eq!(cap_eta(0, 450_000_000, DAY), 0);
        assert_eq!(cap_eta(1, 450_000_000, DAY), 1);
        assert_eq!(
            eta_note(450_000_000, DAY),
            "at the provider's 450 MB/day limit"
        );
    }

    #[test]
    fn batches_stay_small_against_a_byte_cap() {
        assert_eq!(batch_bytes(16 << 20, &[None, None]), 16 << 20);
        assert_eq!(batch_bytes(16 << 20, &[None, Some(2_000_000)]), 100_000);
        assert_eq!(
            batch_bytes(16 << 20, &[Some(2_000_000_000), Some(2_000_000)]),
            100_000
        );
        assert_eq!(batch_bytes(16 << 20, &[Some(2_000_000_000_000)]), 16 << 20);
        assert!(Caps::default().is_unlimited());
    }
}
