//! How long one command may keep being refused as transient before the run gives up
//! waiting in-process and pauses (the job resumes by itself later).

use super::backoff::RetryPolicy;
use std::time::{Duration, Instant};

/// The state of one command's retries: when the refusals began, and how many.
#[derive(Debug, Clone)]
pub struct Patience {
    limit: Duration,
    /// When the refusals began: for measuring, and as Unix seconds for telling.
    began: Option<(Instant, i64)>,
    attempts: u32,
}

/// What to do after one more transient refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then send the command again.
    Wait(Duration),
    /// Patience is spent (or the wait is too long to sleep): pause the run until `now + wait`.
    Pause(Duration),
}

impl Patience {
    pub fn new(limit: Duration) -> Self {
        Patience {
            limit,
            began: None,
            attempts: 0,
        }
    }

    /// When the refusals began (Unix seconds), once they have.
    pub fn since(&self) -> Option<i64> {
        self.began.map(|b| b.1)
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// One more transient refusal: how long to wait, or that the run must pause.
    pub fn next(&mut self, policy: &RetryPolicy, suggested: Option<Duration>) -> Next {
        let (began, _) = *self
            .began
            .get_or_insert_with(|| (Instant::now(), crate::clock::unix_seconds()));
        self.attempts += 1;
        let wait = policy.wait(self.attempts, suggested);
        let waited = began.elapsed();
        if waited.saturating_add(wait) > self.limit || wait > policy.longest_sleep {
            Next::Pause(wait)
        } else {
            Next::Wait(wait)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_ends_in_a_pause_and_long_suggestions_pause_at_once() {
        let policy = RetryPolicy {
            first: Duration::from_millis(10),
            max: Duration::from_millis(20),
            longest_sleep: Duration::from_secs(60),
        };
        let mut p = Patience::new(Duration::from_millis(50));
        assert!(matches!(p.next(&policy, None), Next::Wait(_)));
        assert!(p.since().is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(p.next(&policy, None), Next::Pause(_)));
        let mut p = Patience::new(Duration::from_secs(6 * 3600));
        assert!(matches!(
            p.next(&policy, Some(Duration::from_secs(300))),
            Next::Pause(w) if w >= Duration::from_secs(300)
        ));
    }
}
