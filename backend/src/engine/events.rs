//! What the engine tells the outside world while it works, and its final report.
//! The terminal command and (later) the portal's job store consume these; neither the
//! events nor the engine know anything about HTTP.

use super::error::Side;
use super::watchdog::{Hold, Watchdog};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A folder's work is known: how many messages it has and how many will be copied.
    FolderPlanned {
        source: String,
        target: String,
        messages: u64,
        to_copy: u64,
        bytes_to_copy: u64,
    },
    MessageCopied {
        folder: String,
        uid: u32,
        bytes: u64,
    },
    MessageSkipped {
        folder: String,
        uid: u32,
        reason: String,
    },
    FlagsUpdated {
        folder: String,
        messages: u64,
    },
    FolderDone {
        folder: String,
        copied: u64,
        already_present: u64,
        skipped: u64,
    },
    FolderFailed {
        folder: String,
        error: String,
    },
    /// What the label policy of a label-style source (Gmail) did, in words.
    LabelPolicy {
        note: String,
    },
    /// A message was copied without a keyword or its date (the target refused them),
    /// without a flag the target did not keep, or changed by the target.
    MessageAltered {
        folder: String,
        uid: u32,
        /// "copied without the keyword X (the target said ...)".
        what: String,
    },
    /// A server refused a command for now (throttled, busy): the engine waits until
    /// `until` and sends it again. `since` is when this command's refusals began (both
    /// Unix seconds); `words` are the server's.
    Waiting {
        side: Side,
        words: String,
        since: i64,
        until: i64,
    },
    /// The run made no progress for the stall timeout: it was stopped, its connections
    /// closed, and (when `retrying`) started again. `words`: "no progress for 30 min
    /// (last: copying INBOX, 1,204 of 3,000); retrying".
    Stalled {
        words: String,
        retrying: bool,
    },
    /// The job stopped before the end for a reason the user must act on (over quota).
    Stopped {
        reason: String,
    },
    Finished {
        report: Report,
    },
}

/// A message that was not copied, with what a user needs to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedMessage {
    pub folder: String,
    pub uid: u32,
    pub reason: String,
    pub size: Option<u64>,
    /// INTERNALDATE as unix seconds.
    pub date: Option<i64>,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedFolder {
    pub folder: String,
    pub error: String,
    /// Messages the folder had that this run could not handle.
    pub messages: u64,
}

/// The outcome of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub job_id: String,
    pub copied: u64,
    pub already_present: u64,
    pub skipped: u64,
    pub failed: u64,
    pub flags_updated: u64,
    pub bytes_copied: u64,
    pub folders: u64,
    pub skipped_messages: Vec<SkippedMessage>,
    pub failed_folders: Vec<FailedFolder>,
    /// Set when the run stopped early (e.g. the target is over quota).
    pub stopped: Option<String>,
    /// What the label policy did (label-style sources only), e.g. "All Mail: 1203
    /// messages already in label folders, 57 archived-only to Archive".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label_policy: Vec<String>,
    /// Labels added on a Gmail target by `UID COPY` (not counted in `copied`).
    pub label_copies: u64,
    /// Messages copied with less than the source had, because the target refused a
    /// keyword or the date ("INBOX UID 7: copied without the keyword $Junk (the target
    /// said ...)"), did not keep a flag ("keyword $Foo not kept by the target"), or
    /// stored the message changed ("the target stored 1,203 bytes of 1,210 sent: it
    /// changed the message"). They are on the target; this says what is not as sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub altered: Vec<String>,
    /// Source folders not copied because they are not this mailbox's own: "Other
    /// Users/bob/Projects: another user's folder, not this mailbox".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    /// Source folders whose names an old server sent as raw 8-bit bytes or invalid
    /// modified UTF-7, with the name each got on the target and why: "Caf\xe9 -> Café
    /// (Caf&AOk- on the target): the source name is raw 8-bit bytes...".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<String>,
}

impl Report {
    /// Whether every message is on the target: nothing skipped, nothing failed, and no
    /// folder failed (a folder can fail before its messages are counted).
    pub fn is_complete(&self) -> bool {
        self.skipped == 0 && self.failed == 0 && self.failed_folders.is_empty()
    }
}

/// Sends events if anyone listens; a closed receiver never stops the copy. Every event
/// is also progress for the run's stall watchdog, when one watches.
#[derive(Debug, Clone, Default)]
pub struct Events {
    sender: Option<UnboundedSender<Event>>,
    watchdog: Option<Watchdog>,
}

impl Events {
    pub fn new(sender: Option<UnboundedSender<Event>>) -> Self {
        Events {
            sender,
            watchdog: None,
        }
    }

    /// The same listeners, with `watchdog` told of every event.
    pub(crate) fn watched_by(&self, watchdog: Watchdog) -> Self {
        Events {
            sender: self.sender.clone(),
            watchdog: Some(watchdog),
        }
    }

    pub fn emit(&self, event: Event) {
        if let Some(dog) = &self.watchdog {
            dog.saw(&event);
        }
        if let Some(tx) = &self.sender {
            let _ = tx.send(event);
        }
    }

    /// A pacing pause begins: the stall watchdog waits until the returned hold is dropped.
    pub fn pausing(&self) -> Hold {
        self.watchdog
            .as_ref()
            .map_or_else(Hold::none, Watchdog::hold)
    }
}

/// `1210` as `1,210`: numbers in the words of the report and the job log.
pub fn with_commas(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
