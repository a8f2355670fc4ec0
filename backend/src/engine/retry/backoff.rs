//! How long to wait before sending a refused command again: the server's suggested wait
//! when it gave one (never less), otherwise exponential with jitter, capped.

use std::time::Duration;

/// How waits grow when the server suggests none, and the longest wait slept in-process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
    /// A wait longer than this (even a suggested one) is not slept: the run pauses and
    /// the job resumes by itself when the wait is over.
    pub longest_sleep: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(1),
            max: Duration::from_secs(120),
            longest_sleep: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1 for the first retry). A suggested wait
    /// is honoured, plus up to a tenth more so that connections do not all come back at
    /// the same instant; without one the wait doubles from `first` up to `max`, with
    /// jitter in its upper half.
    pub fn wait(&self, attempt: u32, suggested: Option<Duration>) -> Duration {
        match suggested {
            Some(s) => s + jitter(s / 10),
            None => {
                let exp = self
                    .first
                    .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
                    .min(self.max);
                exp / 2 + jitter(exp / 2)
            }
        }
    }
}

/// A random duration in `0..=most`.
fn jitter(most: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return most / 2;
    }
    let fraction = u64::from_le_bytes(bytes) as f64 / u64::MAX as f64;
    most.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggested_wait_is_never_shortened() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            let w = p.wait(attempt, Some(Duration::from_millis(1500)));
            assert!(
                w >= Duration::from_millis(1500) && w <= Duration::from_millis(1650),
                "{w:?}"
            );
        }
        // Even beyond the longest in-process sleep: the caller pauses instead.
        let w = p.wait(1, Some(Duration::from_secs(3600)));
        assert!(w >= Duration::from_secs(3600));
    }

    #[test]
    fn without_a_suggestion_waits_grow_with_jitter_up_to_the_cap() {
        let p = RetryPolicy::default();
        let w1 = p.wait(1, None);
        assert!(
            w1 >= Duration::from_millis(500) && w1 <= Duration::from_secs(1),
            "{w1:?}"
        );
        let w4 = p.wait(4, None);
        assert!(
            w4 >= Duration::from_secs(4) && w4 <= Duration::from_secs(8),
            "{w4:?}"
        );
        for attempt in [10, 40, u32::MAX] {
            let w = p.wait(attempt, None);
            assert!(
                w >= Duration::from_secs(60) && w <= Duration::from_secs(120),
                "{w:?}"
            );
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| p.wait(6, None)).collect();
        assert!(spread.len() > 1, "jitter varies the waits");
    }
}
