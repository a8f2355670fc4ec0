//! Turns the engine's stream of events into what people watch: counts per job and per
//! folder, a rate over the last minute, and the time left.

use crate::engine::{pacing, Event};
use mailferry_shared::{Counts, FolderProgress};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the store keeps of a run's progress (the `jobs.progress` column, JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    pub counts: Counts,
    pub skipped: u64,
    pub failed: u64,
    pub rate_messages: f64,
    pub rate_bytes: f64,
    pub eta_seconds: Option<u64>,
    /// What decides the time left when a byte cap does: "at the provider's 450 MB/day
    /// limit".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_note: Option<String>,
    pub folders: Vec<FolderProgress>,
}

const RATE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct ProgressTracker {
    snapshot: ProgressSnapshot,
    /// (when, messages done, bytes done) samples for the rate.
    samples: VecDeque<(Instant, u64, u64)>,
    /// Byte caps of the accounts (bytes per window): they bound the time left.
    caps: Vec<(u64, Duration)>,
    /// The run paused at a cap until then (Unix seconds).
    paused_until: Option<i64>,
}

impl Default for ProgressTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressTracker {
    pub fn new() -> Self {
        ProgressTracker {
            snapshot: ProgressSnapshot::default(),
            samples: VecDeque::new(),
            caps: Vec::new(),
            paused_until: None,
        }
    }

    /// A byte cap (download of the source, upload to the target) that bounds the time left.
    pub fn limit_by(&mut self, cap: u64, window: Duration) {
        if cap > 0 {
            self.caps.push((cap, window));
        }
    }

    /// The run paused at a cap until `until` (Unix seconds): the time left starts with
    /// the wait.
    pub fn pause_until(&mut self, until: i64) {
        self.paused_until = Some(until);
    }

    fn folder(&mut self, source: &str) -> Option<&mut FolderProgress> {
        self.snapshot
            .folders
            .iter_mut()
            .find(|f| f.source == source)
    }

    /// Takes one engine event into account.
    pub fn apply(&mut self, event: &Event) {
        let s = &mut self.snapshot;
        match event {
            Event::FolderPlanned {
                source,
                target,
                messages,
                to_copy,
                bytes_to_copy,
            } => {
                if let Some(f) = self.folder(source) {
                    // Planned again (the run was started again after a stall): what is
                    // left to copy replaces what was left.
                    let left = f.to_copy.saturating_sub(f.copied + f.skipped);
                    let bytes_left = f.bytes_to_copy.saturating_sub(f.bytes_copied);
                    f.to_copy = f.copied + f.skipped + to_copy;
                    f.bytes_to_copy = f.bytes_copied + bytes_to_copy;
                    f.done = false;
                    f.error = None;
                    let s = &mut self.snapshot;
                    s.counts.messages_total =
                        s.counts.messages_total.saturating_sub(left) + to_copy;
                    s.counts.bytes_total =
                        s.counts.bytes_total.saturating_sub(bytes_left) + bytes_to_copy;
                    return;
                }
                let s = &mut self.snapshot;
                s.counts.messages_total += to_copy;
                s.counts.bytes_total += bytes_to_copy;
                s.folders.push(FolderProgress {
                    source: source.clone(),
                    target: target.clone(),
                    messages: *messages,
                    to_copy: *to_copy,
                    copied: 0,
                    skipped: 0,
                    bytes_to_copy: *bytes_to_copy,
                    bytes_copied: 0,
                    done: false,
                    error: None,
                });
            }
            Event::MessageCopied { folder, bytes, .. } => {
                s.counts.messages_done += 1;
                s.counts.bytes_done += bytes;
                if let Some(f) = self.folder(folder) {
                    f.copied += 1;
                    f.bytes_copied += bytes;
                }
            }
            Event::MessageSkipped { folder, .. } => {
                s.skipped += 1;
                // A skipped message is settled: it counts towards the total's progress.
                s.counts.messages_done += 1;
                if let Some(f) = self.folder(folder) {
                    f.skipped += 1;
                }
            }
            Event::FolderDone { folder, .. } => {
                if let Some(f) = self.folder(folder) {
                    f.done = true;
                }
            }
            Event::FolderFailed { folder, error } => {
                s.failed += 1;
                if let Some(f) = self.folder(folder) {
                    f.done = true;
                    f.error = Some(error.clone());
                }
            }
            Event::FlagsUpdated { .. }
            | Event::LabelPolicy { .. }
            | Event::Waiting { .. }
            | Event::MessageAltered { .. }
            | Event::Stopped { .. }
            | Event::Stalled { .. }
            | Event::Finished { .. } => {}
        }
    }

    /// The snapshot now, with the rate and time left brought up to date.
    pub fn snapshot(&mut self) -> ProgressSnapshot {
        let now = Instant::now();
        let counts = self.snapshot.counts;
        self.samples
            .push_back((now, counts.messages_done, counts.bytes_done));
        while let Some(&(at, _, _)) = self.samples.front() {
            if now.duration_since(at) > RATE_WINDOW && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
        let (rate_messages, rate_bytes) = match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, m0, b0)), Some(&(t1, m1, b1))) if t1 > t0 => {
                let secs = t1.duration_since(t0).as_secs_f64();
                ((m1 - m0) as f64 / secs, (b1 - b0) as f64 / secs)
            }
            _ => (0.0, 0.0),
        };
        let left = counts.messages_total.saturating_sub(counts.messages_done);
        self.snapshot.rate_messages = rate_messages;
        self.snapshot.rate_bytes = rate_bytes;
        let wait = self
            .paused_until
            .map(|until| (until - crate::clock::unix_seconds()).max(0) as u64);
        self.snapshot.eta_seconds = if left == 0 {
            // (Paused before the rest was even listed: at least the wait.)
            Some(wait.unwrap_or(0))
        } else if rate_messages > 0.01 && self.paused_until.is_none() {
            Some((left as f64 / rate_messages).ceil() as u64)
        } else {
            None
        };
        self.snapshot.eta_note = None;
        if left > 0 {
            let remaining = counts.bytes_total.saturating_sub(counts.bytes_done);
            if let Some((eta, note)) = capped_eta(&self.caps, remaining, wait) {
                if self.snapshot.eta_seconds.is_none_or(|rated| eta > rated) {
                    self.snapshot.eta_seconds = Some(eta);
                    self.snapshot.eta_note = Some(note);
                }
            }
        }
        self.snapshot.clone()
    }
}

/// The time `remaining` bytes take under the slowest of `caps`, and its words. `wait`:
/// the run is paused at a cap for that many seconds; the next window then takes a cap's
/// worth at once.
fn capped_eta(
    caps: &[(u64, Duration)],
    remaining: u64,
    wait: Option<u64>,
) -> Option<(u64, String)> {
    caps.iter()
        .map(|&(cap, window)| {
            let eta = match wait {
                Some(wait) => wait + pacing::cap_eta(remaining.saturating_sub(cap), cap, window),
                None => pacing::cap_eta(remaining, cap, window),
            };
            (eta, pacing::eta_note(cap, window))
        })
        .max_by_key(|(eta, _)| *eta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_planned_again_after_a_stall_is_not_counted_twice() {
        let mut t = ProgressTracker::new();
        let planned = |to_copy| Event::FolderPlanned {
            source: "INBOX".into(),
            target: "INBOX".into(),
            messages: 10,
            to_copy,
            bytes_to_copy: to_copy * 100,
        };
        t.apply(&planned(10));
        for uid in 0..4 {
            t.apply(&Event::MessageCopied {
                folder: "INBOX".into(),
                uid,
                bytes: 100,
            });
        }
        // The run is started again: 6 left to copy.
        t.apply(&planned(6));
        let s = t.snapshot();
        assert_eq!(s.folders.len(), 1);
        assert_eq!((s.counts.messages_total, s.counts.messages_done), (10, 4));
        assert_eq!((s.counts.bytes_total, s.folders[0].to_copy), (1000, 10));
    }

    #[test]
    fn counts_follow_the_engine_events() {
        let mut tracker = ProgressTracker::new();
        tracker.apply(&Event::FolderPlanned {
            source: "INBOX".into(),
            target: "INBOX".into(),
            messages: 5,
            to_copy: 3,
            bytes_to_copy: 300,
        });
        for uid in 1..=2 {
            tracker.apply(&Event::MessageCopied {
                folder: "INBOX".into(),
                uid,
                bytes: 100,
            });
        }
        tracker.apply(&Event::MessageSkipped {
            folder: "INBOX".into(),
            uid: 3,
            reason: "too large".into(),
        });
        tracker.apply(&Event::FolderDone {
            folder: "INBOX".into(),
            copied: 2,
            already_present: 2,
            skipped: 1,
        });
        let snap = tracker.snapshot();
        assert_eq!(snap.counts.messages_total, 3);
        assert_eq!(snap.counts.messages_done, 3);
        assert_eq!(snap.counts.bytes_done, 200);
        assert_eq!(snap.skipped, 1);
        assert_eq!(snap.eta_seconds, Some(0));
        let folder = &snap.folders[0];
        assert!(folder.done && folder.copied == 2 && folder.skipped == 1);
    }

    #[test]
    fn a_daily_cap_decides_the_time_left() {
        let mut tracker = ProgressTracker::new();
        tracker.limit_by(450_000_000, Duration::from_secs(86_400));
        tracker.apply(&Event::FolderPlanned {
            source: "INBOX".into(),
            target: "INBOX".into(),
            messages: 10,
            to_copy: 10,
            bytes_to_copy: 1_350_000_000,
        });
        let snap = tracker.snapshot();
        assert_eq!(snap.eta_seconds, Some(3 * 86_400));
        assert_eq!(
            mailferry_shared::eta_words(snap.eta_seconds.unwrap(), snap.eta_note.as_deref()),
            "about 3 days at the provider's 450 MB/day limit"
        );
        // Paused at the cap for an hour: the wait, then two more days.
        tracker.pause_until(crate::clock::unix_seconds() + 3600);
        let snap = tracker.snapshot();
        let eta = snap.eta_seconds.unwrap();
        assert!(
            (2 * 86_400 + 3595..=2 * 86_400 + 3600).contains(&eta),
            "{eta}"
        );
    }
}
