use serde::{Deserialize, Serialize};

/// Where a migration stands. Every status says what is true now, in one word a
/// helpdesk can filter on; `JobView::status_reason` says why, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Signed in, credentials checked, not started yet.
    Ready,
    /// Waiting for a free worker (or for the server profile's concurrency limit).
    Queued,
    /// A worker is logging in to both servers.
    Connecting,
    /// Messages are being copied.
    Copying,
    /// Everything was copied; delta syncs may follow.
    Synced,
    /// The run finished but some messages could not be copied (see the skipped list).
    CompletedWithSkips,
    /// The run stopped on an error that a retry may fix (reason given).
    Failed,
    /// The target mailbox is full: make room, then retry.
    PausedOverQuota,
    /// The server asked us to slow down; the job resumes by itself.
    PausedThrottled,
    /// A password stopped working: the user must enter the new one.
    PausedPasswordChanged,
    /// An OAuth sign-in stopped working (consent withdrawn, refresh token expired): the
    /// user must sign in with the provider again; the job then resumes.
    PausedSignInAgain,
    /// Stopped by the user or the helpdesk.
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 12] = [
        JobStatus::Ready,
        JobStatus::Queued,
        JobStatus::Connecting,
        JobStatus::Copying,
        JobStatus::Synced,
        JobStatus::CompletedWithSkips,
        JobStatus::Failed,
        JobStatus::PausedOverQuota,
        JobStatus::PausedThrottled,
        JobStatus::PausedPasswordChanged,
        JobStatus::PausedSignInAgain,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ready => "ready",
            JobStatus::Queued => "queued",
            JobStatus::Connecting => "connecting",
            JobStatus::Copying => "copying",
            JobStatus::Synced => "synced",
            JobStatus::CompletedWithSkips => "completed_with_skips",
            JobStatus::Failed => "failed",
            JobStatus::PausedOverQuota => "paused_over_quota",
            JobStatus::PausedThrottled => "paused_throttled",
            JobStatus::PausedPasswordChanged => "paused_password_changed",
            JobStatus::PausedSignInAgain => "paused_sign_in_again",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A worker holds the job right now.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobStatus::Queued | JobStatus::Connecting | JobStatus::Copying
        )
    }

    /// The run is over (for now): nothing happens until someone acts or a sync is due.
    pub fn is_settled(self) -> bool {
        !self.is_active() && self != JobStatus::Ready
    }

    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            JobStatus::Ready => "Ready to start",
            JobStatus::Queued => "Waiting to start",
            JobStatus::Connecting => "Connecting",
            JobStatus::Copying => "Copying",
            JobStatus::Synced => "Done",
            JobStatus::CompletedWithSkips => "Done, some messages skipped",
            JobStatus::Failed => "Failed",
            JobStatus::PausedOverQuota => "Paused: new mailbox full",
            JobStatus::PausedThrottled => "Paused: server busy",
            JobStatus::PausedPasswordChanged => "Paused: password changed",
            JobStatus::PausedSignInAgain => "Paused: sign in again",
            JobStatus::Cancelled => "Cancelled",
        }
    }
}

/// The time left in words: "about 3 days at the provider's 450 MB/day limit" when a
/// provider's byte cap decides it (`note`), else "about 2 h 5 min", "under a minute".
pub fn eta_words(seconds: u64, note: Option<&str>) -> String {
    let minutes = seconds.div_ceil(60);
    let time = if seconds < 60 {
        if note.is_some() {
            format!("about {seconds} s")
        } else {
            "under a minute".into()
        }
    } else if minutes < 60 {
        format!("about {minutes} min")
    } else if seconds < 36 * 3600 {
        format!("about {} h {} min", minutes / 60, minutes % 60)
    } else {
        let days = (seconds as f64 / 86_400.0).round().max(2.0) as u64;
        format!("about {days} days")
    };
    match note {
        Some(note) => format!("{time} {note}"),
        None => time,
    }
}

/// The words that end the reason of a pause at a provider's cap (the backend's pacing
/// writes them; [`paused_until_words`] looks for them).
pub const PROVIDER_LIMIT: &str = "provider limit";

/// The line a `paused_throttled` job shows: "Paused until 14:05 (provider limit)", with
/// `time` already in the user's local time; "(server busy)" when a server, not a cap,
/// asked to wait.
pub fn paused_until_words(time: &str, reason: Option<&str>) -> String {
    let why = if reason.is_some_and(|r| r.contains(PROVIDER_LIMIT)) {
        PROVIDER_LIMIT
    } else {
        "server busy"
    };
    format!("Paused until {time} ({why})")
}

/// Messages and bytes: how many in all, how many done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub messages_total: u64,
    pub messages_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
}

/// Progress of one folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderProgress {
    pub source: String,
    pub target: String,
    /// Messages in the source folder.
    pub messages: u64,
    /// Of those, how many this run copies (the rest are already on the target).
    pub to_copy: u64,
    pub copied: u64,
    pub skipped: u64,
    pub bytes_to_copy: u64,
    pub bytes_copied: u64,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A message that could not be copied, and why, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedMessageView {
    pub folder: String,
    pub uid: u32,
    pub reason: String,
    pub size: Option<u64>,
    /// INTERNALDATE, unix seconds.
    pub date: Option<i64>,
    pub subject: Option<String>,
}

/// Everything a page shows about one job. Never carries a password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub route: String,
    pub source_user: String,
    pub target_user: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Progress of the current (or last) run.
    pub counts: Counts,
    pub skipped: u64,
    pub failed: u64,
    /// Messages per second over the last minute of copying.
    pub rate_messages: f64,
    pub rate_bytes: f64,
    /// Seconds left at the current rate, when it can be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// Set when a provider's byte cap decides the time left: "at the provider's
    /// 450 MB/day limit" (see [`eta_words`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_note: Option<String>,
    /// For `paused_throttled`: when the job resumes by itself (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<i64>,
    pub folders: Vec<FolderProgress>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

/// One entry of a job's event log, as stored and as streamed (SSE `id` = `seq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub seq: i64,
    pub at: i64,
    #[serde(flatten)]
    pub kind: JobEventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobEventKind {
    /// The job's status changed.
    Status {
        status: JobStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Copy progress (sent at most about once a second while copying).
    Progress {
        counts: Counts,
        rate_messages: f64,
        rate_bytes: f64,
    },
    FolderPlanned {
        source: String,
        target: String,
        messages: u64,
        to_copy: u64,
    },
    FolderDone {
        source: String,
        copied: u64,
        skipped: u64,
    },
    FolderFailed {
        source: String,
        error: String,
    },
    MessageSkipped {
        folder: String,
        uid: u32,
        reason: String,
    },
    /// A server refused for now (throttled, busy): the copy waits from `since` until
    /// `until` (Unix seconds) and then sends the same command again. `side` is
    /// `source` or `target`; `words` are the server's.
    Waiting {
        side: String,
        words: String,
        since: i64,
        until: i64,
    },
    /// Something the user should know that is neither a skip nor a failure: what the
    /// label policy of a Gmail source did, a message copied without a keyword or the date
    /// the target refused.
    Note {
        text: String,
    },
    /// Someone acted on the job (start, cancel, sync now, retry, password change).
    Action {
        actor: String,
        action: String,
    },
}

/// One sample of a job's progress over time (`GET /api/my/job/history`,
/// `/api/helpdesk/jobs/{id}/history`), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressPoint {
    /// Unix seconds.
    pub at: i64,
    pub messages_done: u64,
    pub bytes_done: u64,
    /// Messages per second then (over the minute before).
    pub rate_messages: f64,
}

/// A page of jobs for the helpdesk table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// The whole story of one job for the helpdesk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    pub job: JobView,
    pub events: Vec<JobEvent>,
    pub skipped_messages: Vec<SkippedMessageView>,
    /// Every run of the job, oldest first (which node, when, how it ended).
    #[serde(default)]
    pub runs: Vec<JobRunView>,
}

/// One run of a job on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRunView {
    pub node: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// How it ended: a job status (`synced`, `failed`...), `lease_lost`, or `abandoned`
    /// (its node stopped and another took the job over); `None` while it runs.
    pub outcome: Option<String>,
}

#[cfg(test)]
mod eta_tests {
    use super::*;

    #[test]
    fn a_daily_cap_gives_the_time_left_in_days() {
        assert_eq!(
            eta_words(3 * 86_400, Some("at the provider's 450 MB/day limit")),
            "about 3 days at the provider's 450 MB/day limit"
        );
        assert_eq!(eta_words(59, None), "under a minute");
        assert_eq!(eta_words(12 * 60, None), "about 12 min");
        assert_eq!(eta_words(2 * 3600 + 300, None), "about 2 h 5 min");
        assert_eq!(eta_words(40 * 3600, None), "about 2 days");
        assert_eq!(
            eta_words(25, Some("at the provider's 2 MB per 8 s limit")),
            "about 25 s at the provider's 2 MB per 8 s limit"
        );
    }

    #[test]
    fn a_pause_says_until_when_and_why() {
        assert_eq!(
            paused_until_words(
                "14:05",
                Some("The new (target) server: daily upload limit of 450 MB reached (provider limit).")
            ),
            "Paused until 14:05 (provider limit)"
        );
        assert_eq!(
            paused_until_words("14:05", Some("Request is throttled")),
            "Paused until 14:05 (server busy)"
        );
    }
}
