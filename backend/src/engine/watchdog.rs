//! The stall watchdog: a run that makes no progress for `Settings::stall_timeout` is
//! stopped (its connections closed) and started again, and after `max_attempts` such
//! stalls in a row it ends with [`EngineError::Stalled`].
//!
//! Progress is what the run tells its listeners ([`Event`]s): a message copied, skipped
//! or settled, flags updated, a folder planned or finished. An announced wait is not a
//! stall: a [`Event::Waiting`] holds the watchdog until its end, and a pacing pause (a
//! connection slot, an hourly cap) holds it while [`Hold`] lives. A server that keeps a
//! connection alive without ever answering (untagged lines, a byte now and then) sends
//! no events, so the per-step timeouts never fire but this does.
//!
//! [`EngineError::Stalled`]: super::EngineError::Stalled

use super::events::{with_commas, Event};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Watches one run attempt.
#[derive(Debug, Clone)]
pub struct Watchdog {
    timeout: Duration,
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    last: Instant,
    /// The end of an announced wait, if one is under way.
    waiting_until: Option<Instant>,
    /// Pacing pauses under way.
    holds: usize,
    /// What the run did last, in words ("copying INBOX, 1,204 of 3,000").
    doing: String,
    /// Per source folder: what was seen of it.
    folders: HashMap<String, FolderSeen>,
    /// Messages settled in this attempt.
    settled: u64,
    /// What this attempt copied, for the run's report when a later attempt finishes.
    carried: Carried,
}

#[derive(Debug, Clone, Copy)]
struct FolderSeen {
    settled: u64,
    to_copy: u64,
    finished: bool,
    touched: Instant,
}

/// What a stopped attempt copied (its report is lost with it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    pub copied: u64,
    pub bytes_copied: u64,
    pub flags_updated: u64,
}

/// Why a run was stopped: how long it was idle and what it did last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub idle: Duration,
    pub last: String,
    /// Messages settled in the stopped attempt (progress before the stall).
    pub settled: u64,
    /// What the stopped attempt copied.
    pub carried: Carried,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no progress for {} (last: {})",
            duration_words(self.idle),
            self.last
        )
    }
}

/// While alive, the watchdog does not fire (a pacing pause); the end of a pause that
/// really waited (a second or more) counts as progress, so the time waited is not idle.
#[derive(Debug)]
pub struct Hold(Option<(Arc<Mutex<State>>, Instant)>);

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some((state, since)) = &self.0 {
            if let Ok(mut s) = state.lock() {
                s.holds = s.holds.saturating_sub(1);
                if since.elapsed() >= Duration::from_secs(1) {
                    s.last = s.last.max(Instant::now());
                }
            }
        }
    }
}

impl Hold {
    /// A hold that holds nothing (no watchdog listens).
    pub fn none() -> Hold {
        Hold(None)
    }
}

impl Watchdog {
    pub fn new(timeout: Duration) -> Self {
        Watchdog {
            timeout,
            state: Arc::new(Mutex::new(State {
                last: Instant::now(),
                waiting_until: None,
                holds: 0,
                doing: "connecting and listing folders".into(),
                folders: HashMap::new(),
                settled: 0,
                carried: Carried::default(),
            })),
        }
    }

    /// Notes an event of the run.
    pub fn saw(&self, event: &Event) {
        let Ok(mut s) = self.state.lock() else { return };
        s.last = Instant::now();
        let now = s.last;
        let copying = |s: &mut State, folder: &str| {
            let seen = s.folders.get_mut(folder).map(|f| {
                f.touched = now;
                *f
            });
            let (done, of) = seen.map_or((0, 0), |f| (f.settled, f.to_copy));
            s.doing = format!(
                "copying {folder}, {} of {}",
                with_commas(done),
                with_commas(of.max(done))
            );
        };
        match event {
            Event::FolderPlanned {
                source, to_copy, ..
            } => {
                s.folders.insert(
                    source.clone(),
                    FolderSeen {
                        settled: 0,
                        to_copy: *to_copy,
                        finished: false,
                        touched: now,
                    },
                );
                copying(&mut s, source);
            }
            Event::MessageCopied { folder, bytes, .. } => {
                s.carried.copied += 1;
                s.carried.bytes_copied += bytes;
                s.settled += 1;
                if let Some(f) = s.folders.get_mut(folder) {
                    f.settled += 1;
                }
                copying(&mut s, folder);
            }
            Event::MessageSkipped { folder, .. } => {
                s.settled += 1;
                if let Some(f) = s.folders.get_mut(folder) {
                    f.settled += 1;
                }
                copying(&mut s, folder);
            }
            Event::FlagsUpdated { folder, messages } => {
                s.settled += messages;
                s.carried.flags_updated += messages;
                s.doing = format!("updating flags in {folder}");
            }
            Event::FolderDone { folder, .. } | Event::FolderFailed { folder, .. } => {
                if let Some(f) = s.folders.get_mut(folder) {
                    f.finished = true;
                }
                s.doing = format!("finished {folder}");
            }
            Event::Waiting { side, until, .. } => {
                let left = (*until - crate::clock::unix_seconds()).max(0) as u64;
                s.waiting_until = Some(now + Duration::from_secs(left));
                s.doing = format!("waiting for the {side} server");
            }
            Event::LabelPolicy { .. }
            | Event::MessageAltered { .. }
            | Event::Stopped { .. }
            | Event::Stalled { .. }
            | Event::Finished { .. } => {}
        }
    }

    /// A pacing pause: the watchdog waits while the hold lives.
    pub fn hold(&self) -> Hold {
        if let Ok(mut s) = self.state.lock() {
            s.holds += 1;
        }
        Hold(Some((self.state.clone(), Instant::now())))
    }

    /// Resolves once the run has made no progress for the timeout (outside announced
    /// waits).
    pub async fn stalled(&self) -> Stall {
        loop {
            let due = {
                let Ok(s) = self.state.lock() else {
                    return std::future::pending().await;
                };
                let from = s.waiting_until.map_or(s.last, |w| w.max(s.last));
                let due = from + self.timeout;
                if s.holds == 0 && Instant::now() >= due {
                    return Stall {
                        idle: self.timeout,
                        last: s.stuck_on(),
                        settled: s.settled,
                        carried: s.carried,
                    };
                }
                due
            };
            // Checked at least every second, so a hold's end or new progress is seen.
            let now = Instant::now();
            tokio::time::sleep_until(due.max(now).min(now + Duration::from_secs(1))).await;
        }
    }
}

impl State {
    /// Where the run is stuck: the unfinished folder worked on last, or else what it
    /// did last.
    fn stuck_on(&self) -> String {
        let stuck = self
            .folders
            .iter()
            .filter(|(_, f)| !f.finished)
            .max_by_key(|(name, f)| (f.touched, std::cmp::Reverse(name.as_str())));
        match stuck {
            Some((name, f)) => format!(
                "copying {name}, {} of {}",
                with_commas(f.settled),
                with_commas(f.to_copy.max(f.settled))
            ),
            None => self.doing.clone(),
        }
    }
}

/// "30 min", "1 h 30 min", "45 s".
pub fn duration_words(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (h, 0, 0) => format!("{h} h"),
        (h, m, 0) => format!("{h} h {m} min"),
        _ if secs < 3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_durations_and_counts() {
        assert_eq!(duration_words(Duration::from_secs(1800)), "30 min");
        assert_eq!(duration_words(Duration::from_secs(3)), "3 s");
        assert_eq!(duration_words(Duration::from_secs(5400)), "1 h 30 min");
        assert_eq!(with_commas(1204), "1,204");
        assert_eq!(with_commas(3_000_000), "3,000,000");
        assert_eq!(with_commas(12), "12");
    }

    fn planned(dog: &Watchdog, folder: &str, to_copy: u64) {
        dog.saw(&Event::FolderPlanned {
            source: folder.into(),
            target: folder.into(),
            messages: to_copy,
            to_copy,
            bytes_to_copy: 0,
        });
    }

    #[tokio::test]
    async fn it_names_the_unfinished_folder_it_is_stuck_on() {
        let dog = Watchdog::new(Duration::from_millis(200));
        planned(&dog, "INBOX", 3000);
        for uid in 0..1204 {
            dog.saw(&Event::MessageCopied {
                folder: "INBOX".into(),
                uid,
                bytes: 10,
            });
        }
        planned(&dog, "Sent", 2);
        dog.saw(&Event::FolderDone {
            folder: "Sent".into(),
            copied: 2,
            already_present: 0,
            skipped: 0,
        });
        let started = Instant::now();
        let stall = dog.stalled().await;
        assert!(started.elapsed() >= Duration::from_millis(190));
        assert_eq!(
            stall.to_string(),
            "no progress for 0 s (last: copying INBOX, 1,204 of 3,000)"
        );
        assert_eq!((stall.settled, stall.carried.copied), (1204, 1204));
    }

    #[tokio::test]
    async fn announced_waits_and_pacing_pauses_do_not_trip_it() {
        // A server asked for a wait of two seconds: not a stall.
        let dog = Watchdog::new(Duration::from_millis(300));
        planned(&dog, "INBOX", 10);
        dog.saw(&Event::Waiting {
            side: crate::engine::Side::Target,
            words: "NO [UNAVAILABLE]".into(),
            since: crate::clock::unix_seconds(),
            until: crate::clock::unix_seconds() + 2,
        });
        let started = Instant::now();
        dog.stalled().await;
        assert!(started.elapsed() >= Duration::from_millis(1300));
        // A pacing pause holds it for as long as it lasts, and its end counts.
        let dog = Watchdog::new(Duration::from_millis(300));
        let hold = dog.hold();
        let held = tokio::time::timeout(Duration::from_millis(1200), dog.stalled()).await;
        assert!(held.is_err(), "fired during a pacing pause");
        drop(hold);
        let released = Instant::now();
        let stall = dog.stalled().await;
        assert!(released.elapsed() >= Duration::from_millis(250));
        assert_eq!(stall.last, "connecting and listing folders");
    }
}
