//! Slows down password guessing: failed sign-ins are counted per account and per client
//! address over a sliding window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    window: Duration,
    per_account: usize,
    per_address: usize,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(Duration::from_secs(15 * 60), 5, 20)
    }
}

impl RateLimiter {
    pub fn new(window: Duration, per_account: usize, per_address: usize) -> Self {
        RateLimiter {
            window,
            per_account,
            per_address,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn recent(&self, key: &str) -> usize {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match map.get_mut(key) {
            Some(times) => {
                times.retain(|t| now.duration_since(*t) < self.window);
                times.len()
            }
            None => 0,
        }
    }

    /// `Err(minutes)` when the account or the address has failed too often lately.
    pub fn check(&self, account: &str, address: &str) -> Result<(), u64> {
        if self.recent(&format!("acct:{account}")) >= self.per_account
            || self.recent(&format!("addr:{address}")) >= self.per_address
        {
            return Err(self.window.as_secs().div_ceil(60));
        }
        Ok(())
    }

    pub fn failed(&self, account: &str, address: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for key in [format!("acct:{account}"), format!("addr:{address}")] {
            map.entry(key).or_default().push(now);
        }
    }

    pub fn succeeded(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("acct:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_failures_for_one_account_block_it_only() {
        let limiter = RateLimiter::new(Duration::from_secs(60), 3, 100);
        for _ in 0..3 {
            assert!(limiter.check("alice", "1.2.3.4").is_ok());
            limiter.failed("alice", "1.2.3.4");
        }
        assert!(limiter.check("alice", "5.6.7.8").is_err());
        assert!(limiter.check("bob", "1.2.3.4").is_ok());
        limiter.succeeded("alice");
        assert!(limiter.check("alice", "5.6.7.8").is_ok());
    }

    #[test]
    fn too_many_failures_from_one_address_block_it() {
        let limiter = RateLimiter::new(Duration::from_secs(60), 100, 2);
        limiter.failed("a", "9.9.9.9");
        limiter.failed("b", "9.9.9.9");
        assert!(limiter.check("c", "9.9.9.9").is_err());
        assert!(limiter.check("c", "8.8.8.8").is_ok());
    }
}
