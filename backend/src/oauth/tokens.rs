//! The tokens one mailbox's consent gave: kept sealed with the job's other credentials,
//! wiped from memory when dropped, never shown in `Debug`.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroize;

#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    /// Absent for providers that give none (or app modes, which need none).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Unix seconds; 0 when the provider did not say.
    #[serde(default)]
    pub expires_at: u64,
    /// Unix seconds when it was issued (for the renewal margin).
    #[serde(default)]
    pub issued_at: u64,
}

impl TokenSet {
    pub fn new(
        access_token: String,
        refresh_token: Option<String>,
        lifetime: Option<Duration>,
    ) -> Self {
        let now = unix_now();
        TokenSet {
            access_token,
            refresh_token,
            expires_at: lifetime.map_or(0, |l| now + l.as_secs()),
            issued_at: now,
        }
    }

    pub fn expires_at(&self) -> Option<SystemTime> {
        (self.expires_at > 0).then(|| UNIX_EPOCH + Duration::from_secs(self.expires_at))
    }

    /// Still good for a while: more than a quarter of its lifetime (at most a minute) left.
    pub fn fresh(&self) -> bool {
        if self.access_token.is_empty() {
            return false;
        }
        if self.expires_at == 0 {
            return true;
        }
        let lifetime = self.expires_at.saturating_sub(self.issued_at);
        let margin = (lifetime / 4).min(60);
        unix_now() + margin < self.expires_at
    }
}

impl Drop for TokenSet {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(refresh) = self.refresh_token.as_mut() {
            refresh.zeroize();
        }
    }
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Unix seconds now, from the project's one clock.
pub fn unix_now() -> u64 {
    crate::clock::unix_seconds().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_a_quarter_of_its_life_before_it_expires() {
        let mut t = TokenSet::new("a".into(), Some("r".into()), Some(Duration::from_secs(20)));
        assert!(t.fresh());
        t.expires_at = t.issued_at + 4; // 20 s lifetime, 5 s margin, 4 s left
        t.issued_at = t.expires_at - 20;
        assert!(!t.fresh());
        let forever = TokenSet::new("a".into(), None, None);
        assert!(forever.fresh() && forever.expires_at().is_none());
        let debug = format!("{t:?}");
        assert!(!debug.contains('a') || !debug.contains("\"a\""), "{debug}");
        assert!(!debug.contains("\"r\""), "{debug}");
    }
}
