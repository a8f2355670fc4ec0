//! Waiting out a transient refusal: the wait is told to the listeners
//! ([`Event::Waiting`]) and logged, then slept; past the patience the run ends with
//! [`EngineError::Paused`] carrying the server's words.

use super::backoff::RetryPolicy;
use super::patience::{Next, Patience};
use crate::clock;
use crate::engine::error::{EngineError, Result, Side};
use crate::engine::events::{Event, Events};
use std::time::Duration;

/// How long one command may be refused as transient before the run pauses, unless the
/// settings say otherwise.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(6 * 3600);

/// What a connection needs to wait out refusals: where to tell, how to wait, how long.
#[derive(Debug, Clone)]
pub struct Waiter {
    pub events: Events,
    pub policy: RetryPolicy,
    /// How long one command may be refused as transient before the run pauses.
    pub patience: Duration,
}

impl Default for Waiter {
    fn default() -> Self {
        Waiter {
            events: Events::default(),
            policy: RetryPolicy::default(),
            patience: DEFAULT_PATIENCE,
        }
    }
}

impl Waiter {
    /// Patience for one new command.
    pub fn patience(&self) -> Patience {
        Patience::new(self.patience)
    }

    /// The server refused (transient) with `words`: waits, or returns `Paused`.
    pub async fn wait_out(
        &self,
        patience: &mut Patience,
        side: Side,
        host: &str,
        words: &str,
        suggested: Option<Duration>,
    ) -> Result<()> {
        self.wait(patience, side, host, words, suggested, "asked to slow down")
            .await
    }

    /// The server could not be reached again (`error`): waits, or returns `Paused`.
    pub async fn wait_out_unreachable(
        &self,
        patience: &mut Patience,
        side: Side,
        host: &str,
        error: &str,
    ) -> Result<()> {
        self.wait(patience, side, host, error, None, "cannot be reached")
            .await
    }

    async fn wait(
        &self,
        patience: &mut Patience,
        side: Side,
        host: &str,
        words: &str,
        suggested: Option<Duration>,
        what: &str,
    ) -> Result<()> {
        let next = patience.next(&self.policy, suggested);
        let since = patience.since().unwrap_or_else(clock::unix_seconds);
        let (wait, pause) = match next {
            Next::Wait(w) => (w, false),
            Next::Pause(w) => (w, true),
        };
        let until = (clock::unix_millis() + wait.as_millis() as i64) / 1000;
        if pause {
            tracing::warn!(%side, host, words, since, until, "the server keeps refusing; pausing the run");
            return Err(EngineError::Paused {
                side,
                host: host.to_owned(),
                reason: format!(
                    "the {side} server {what} (\"{words}\") since {} UTC; trying again after {} UTC",
                    hh_mm(since),
                    hh_mm(until)
                ),
                words: Some(words.to_owned()),
                since,
                until,
            });
        }
        tracing::warn!(
            %side,
            host,
            words,
            wait_ms = wait.as_millis() as u64,
            attempt = patience.attempts(),
            "the server refused for now; waiting before trying again"
        );
        self.events.emit(Event::Waiting {
            side,
            words: words.to_owned(),
            since,
            until,
        });
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// `HH:MM` (UTC) of a Unix time.
pub fn hh_mm(unix: i64) -> String {
    let day = unix.rem_euclid(86_400);
    format!("{:02}:{:02}", day / 3600, day % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_hours_and_minutes() {
        assert_eq!(hh_mm(0), "00:00");
        assert_eq!(hh_mm(14 * 3600 + 5 * 60 + 59), "14:05");
    }

    #[tokio::test]
    async fn every_wait_is_told_and_patience_ends_in_paused() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = Waiter {
            events: Events::new(Some(tx)),
            policy: RetryPolicy {
                first: Duration::from_millis(5),
                max: Duration::from_millis(10),
                longest_sleep: Duration::from_secs(60),
            },
            patience: Duration::from_millis(200),
        };
        let mut p = waiter.patience();
        let words = "NO Request is throttled. Suggested Backoff Time: 50 milliseconds";
        let started = std::time::Instant::now();
        waiter
            .wait_out(
                &mut p,
                Side::Source,
                "h:1",
                words,
                Some(Duration::from_millis(50)),
            )
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(50));
        match rx.try_recv().unwrap() {
            Event::Waiting {
                side,
                words: w,
                since,
                until,
            } => {
                assert_eq!((side, w.as_str()), (Side::Source, words));
                assert!(until >= since);
            }
            other => panic!("{other:?}"),
        }
        let err = loop {
            if let Err(e) = waiter
                .wait_out(
                    &mut p,
                    Side::Source,
                    "h:1",
                    words,
                    Some(Duration::from_millis(50)),
                )
                .await
            {
                break e;
            }
        };
        let EngineError::Paused {
            words: Some(w),
            reason,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(w, words);
        assert!(reason.contains("asked to slow down"), "{reason}");
    }
}
