//! Slows down password guessing without letting a stranger lock a victim out.
//!
//! Every sign-in attempt is *reserved* before the slow login starts: one row per key it
//! counts against is written first, then the keys are counted, own row included. A burst
//! of parallel guesses therefore sees its own rows: 100 parallel wrong passwords make at
//! most `per_pair` real logins, not 100. A success deletes the reservation (and the
//! pair's failures), a wrong password keeps it as a failure, anything else (server
//! unreachable, a field missing) deletes it.
//!
//! The keys, each over a sliding window:
//! - the account *and* client address pair: a stranger's failures lock only the
//!   stranger's own pair;
//! - the client address across all accounts: one address cannot try many accounts;
//! - the account across all addresses: past a ceiling it is *slowed*, not locked (one
//!   attempt at a time, each after a pause), so the real owner still gets in;
//! - the mail server an attempt logs in to: a cap on failed outbound logins, so the portal
//!   never gets itself banned by the server it migrates.
//!
//! The rows live in the database: nodes sharing it share the counts.

use crate::clock::unix_millis as now_ms;
use sqlx::AnyPool;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Limits {
    pub window: Duration,
    /// Failures of one account from one address before that pair is refused.
    pub per_pair: i64,
    /// Failures from one address (all accounts) before it is refused.
    pub per_address: i64,
    /// Failures of one account (all addresses) after which it is slowed.
    pub account_ceiling: i64,
    /// The pause before each attempt of a slowed account.
    pub slow_pause: Duration,
    /// Failed logins to one mail server (all accounts) before the portal stops trying.
    pub per_server: i64,
}

impl Default for Limits {
    /// Per fifteen minutes: 5 per account and address, 20 per address, slowed after 10 per
    /// account, and at most 50 failed logins to one mail server.
    fn default() -> Self {
        Limits {
            window: Duration::from_secs(15 * 60),
            per_pair: 5,
            per_address: 20,
            account_ceiling: 10,
            slow_pause: Duration::from_secs(3),
            per_server: 50,
        }
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    pool: AnyPool,
    limits: Limits,
}

/// What an attempt is counted against.
#[derive(Debug, Clone)]
pub struct AttemptKeys {
    /// The account tried (e.g. `route:Source:alice`, `staff:bob`), already normalised.
    pub account: String,
    /// The client address, grouped (see [`address_group`]).
    pub address: String,
    /// The mail server the login goes to (`host:port`), if any.
    pub server: Option<String>,
}

/// Why an attempt may not go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures lately: wait this many minutes.
    TooMany { minutes: u64 },
    /// The account is being slowed and another attempt for it is under way.
    Busy,
    /// The mail server refused many logins lately; the portal holds back.
    ServerProtected { minutes: u64 },
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::TooMany { minutes } => {
                format!("Too many failed sign-in attempts. Wait {minutes} minutes, then try again.")
            }
            Refusal::Busy => {
                "Another sign-in for this account is being checked. Try again in a few seconds."
                    .into()
            }
            Refusal::ServerProtected { minutes } => format!(
                "This mail server refused many sign-ins lately, so the portal pauses sign-ins \
                 to it to avoid being blocked. Try again in {minutes} minutes."
            ),
        }
    }
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// A wrong user name or password: counted.
    WrongCredentials,
    /// Anything that says nothing about the password (unreachable, missing field).
    NotCounted,
}

/// A reserved attempt: its rows count until [`RateLimiter::finish`] settles them. One
/// that is never finished (a dropped request) keeps counting as a failure.
#[derive(Debug)]
#[must_use = "finish the attempt with its outcome"]
pub struct Attempt {
    ids: Vec<String>,
    keys: AttemptKeys,
}

/// Pending rows older than this are from attempts that never finished (a node died).
const PENDING_STALE_MS: i64 = 120_000;

fn pair_key(keys: &AttemptKeys) -> String {
    format!("pair:{}|{}", keys.account, keys.address)
}

fn address_key(keys: &AttemptKeys) -> String {
    format!("addr:{}", keys.address)
}

fn account_key(keys: &AttemptKeys) -> String {
    format!("acct:{}", keys.account)
}

fn server_key(server: &str) -> String {
    format!("srv:{server}")
}

/// The address a limit counts: IPv4 as it is, IPv6 by its /64 network (one host usually
/// holds a whole /64, so single IPv6 addresses would be free to rotate through).
pub fn address_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl RateLimiter {
    pub fn new(pool: AnyPool) -> Self {
        Self::with_limits(pool, Limits::default())
    }

    pub fn with_limits(pool: AnyPool, limits: Limits) -> Self {
        RateLimiter { pool, limits }
    }

    fn since(&self) -> i64 {
        now_ms() - self.limits.window.as_millis() as i64
    }

    fn window_minutes(&self) -> u64 {
        self.limits.window.as_secs().div_ceil(60)
    }

    async fn count(&self, key: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM login_attempts WHERE key = $1 AND at_ms >= $2")
            .bind(key)
            .bind(self.since())
            .fetch_one(&self.pool)
            .await
    }

    /// Reserves an attempt, or says why it may not go ahead. A slowed account's attempt
    /// returns only after its pause.
    pub async fn begin(&self, keys: AttemptKeys) -> Result<Result<Attempt, Refusal>, sqlx::Error> {
        let at = now_ms();
        let mut rows = vec![pair_key(&keys), address_key(&keys), account_key(&keys)];
        if let Some(server) = &keys.server {
            rows.push(server_key(server));
        }
        let mut ids = Vec::with_capacity(rows.len());
        for key in &rows {
            let id = crate::jobs::random_id();
            sqlx::query(
                "INSERT INTO login_attempts (id, key, at_ms, pending) VALUES ($1, $2, $3, 1)",
            )
            .bind(&id)
            .bind(key)
            .bind(at)
            .execute(&self.pool)
            .await?;
            ids.push(id);
        }
        let attempt = Attempt { ids, keys };
        match self.admit(&attempt).await {
            Ok(None) => Ok(Ok(attempt)),
            Ok(Some(refusal)) => {
                self.delete(&attempt.ids).await?;
                Ok(Err(refusal))
            }
            Err(err) => {
                let _ = self.delete(&attempt.ids).await;
                Err(err)
            }
        }
    }

    /// Counts the attempt's keys (its own rows included); `Some` refuses it.
    async fn admit(&self, attempt: &Attempt) -> Result<Option<Refusal>, sqlx::Error> {
        let keys = &attempt.keys;
        let too_many = Refusal::TooMany {
            minutes: self.window_minutes(),
        };
        if self.count(&pair_key(keys)).await? > self.limits.per_pair
            || self.count(&address_key(keys)).await? > self.limits.per_address
        {
            return Ok(Some(too_many));
        }
        if let Some(server) = &keys.server {
            if self.count(&server_key(server)).await? > self.limits.per_server {
                return Ok(Some(Refusal::ServerProtected {
                    minutes: self.window_minutes(),
                }));
            }
        }
        let account = account_key(keys);
        if self.count(&account).await? > self.limits.account_ceiling {
            // Slowed: one attempt at a time for this account, each after a pause.
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM login_attempts WHERE key = $1 AND pending = 1 \
                 AND at_ms >= $2 AND id <> $3",
            )
            .bind(&account)
            .bind(now_ms() - PENDING_STALE_MS)
            .bind(&attempt.ids[2])
            .fetch_one(&self.pool)
            .await?;
            if others > 0 {
                return Ok(Some(Refusal::Busy));
            }
            tokio::time::sleep(self.limits.slow_pause).await;
        }
        Ok(None)
    }

    async fn delete(&self, ids: &[String]) -> Result<(), sqlx::Error> {
        for id in ids {
            sqlx::query("DELETE FROM login_attempts WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Settles a reserved attempt (and forgets rows older than the window).
    pub async fn finish(&self, attempt: Attempt, outcome: Outcome) {
        let result = async {
            match outcome {
                Outcome::WrongCredentials => {
                    for id in &attempt.ids {
                        sqlx::query("UPDATE login_attempts SET pending = 0 WHERE id = $1")
                            .bind(id)
                            .execute(&self.pool)
                            .await?;
                    }
                }
                Outcome::NotCounted => self.delete(&attempt.ids).await?,
                Outcome::Succeeded => {
                    self.delete(&attempt.ids).await?;
                    // The owner got in: their account and pair start afresh (the address
                    // and the server keep their counts).
                    for key in [pair_key(&attempt.keys), account_key(&attempt.keys)] {
                        sqlx::query("DELETE FROM login_attempts WHERE key = $1")
                            .bind(key)
                            .execute(&self.pool)
                            .await?;
                    }
                }
            }
            sqlx::query("DELETE FROM login_attempts WHERE at_ms < $1")
                .bind(self.since())
                .execute(&self.pool)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot settle a sign-in attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;

    async fn limiter(dir: &std::path::Path, limits: Limits) -> RateLimiter {
        let db = Database::open(&crate::config::sqlite_url(&dir.join("r.db")))
            .await
            .unwrap();
        RateLimiter::with_limits(db.pool().clone(), limits)
    }

    fn limits(per_pair: i64, per_address: i64, account_ceiling: i64) -> Limits {
        Limits {
            window: Duration::from_secs(60),
            per_pair,
            per_address,
            account_ceiling,
            slow_pause: Duration::from_millis(200),
            per_server: 1000,
        }
    }

    fn keys(account: &str, address: &str) -> AttemptKeys {
        AttemptKeys {
            account: account.into(),
            address: address.into(),
            server: None,
        }
    }

    async fn fail(limiter: &RateLimiter, account: &str, address: &str) -> bool {
        match limiter.begin(keys(account, address)).await.unwrap() {
            Ok(attempt) => {
                limiter.finish(attempt, Outcome::WrongCredentials).await;
                true
            }
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn a_strangers_failures_lock_only_the_strangers_pair() {
        let dir = tempfile::tempdir().unwrap();
        let limiter = limiter(dir.path(), limits(3, 100, 100)).await;
        for _ in 0..3 {
            assert!(fail(&limiter, "alice", "6.6.6.6").await);
        }
        assert!(!fail(&limiter, "alice", "6.6.6.6").await, "pair locked");
        // The owner, from their own address, is not locked out.
        let owner = limiter.begin(keys("alice", "1.2.3.4")).await.unwrap();
        let owner = owner.expect("the owner may still try");
        limiter.finish(owner, Outcome::Succeeded).await;
        assert!(limiter.begin(keys("bob", "6.6.6.6")).await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn too_many_failures_from_one_address_block_it() {
        let dir = tempfile::tempdir().unwrap();
        let limiter = limiter(dir.path(), limits(100, 2, 100)).await;
        assert!(fail(&limiter, "a", "9.9.9.9").await);
        assert!(fail(&limiter, "b", "9.9.9.9").await);
        assert!(limiter.begin(keys("c", "9.9.9.9")).await.unwrap().is_err());
        assert!(limiter.begin(keys("c", "8.8.8.8")).await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_burst_of_parallel_attempts_reserves_before_counting() {
        let dir = tempfile::tempdir().unwrap();
        let limiter = std::sync::Arc::new(limiter(dir.path(), limits(5, 1000, 1000)).await);
        let admitted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let (limiter, admitted) = (limiter.clone(), admitted.clone());
                tokio::spawn(async move {
                    if let Ok(attempt) = limiter.begin(keys("alice", "6.6.6.6")).await.unwrap() {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        // The slow login happens here, while the others are counted.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        limiter.finish(attempt, Outcome::WrongCredentials).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let admitted = admitted.load(std::sync::atomic::Ordering::SeqCst);
        assert!(admitted <= 5, "{admitted} attempts were evaluated");
    }

    #[tokio::test]
    async fn an_account_past_its_ceiling_is_slowed_not_locked() {
        let dir = tempfile::tempdir().unwrap();
        let limiter = std::sync::Arc::new(limiter(dir.path(), limits(100, 100, 2)).await);
        for address in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
            assert!(fail(&limiter, "alice", address).await);
        }
        // Past the ceiling: still admitted, but after the pause.
        let started = std::time::Instant::now();
        let attempt = limiter
            .begin(keys("alice", "4.4.4.4"))
            .await
            .unwrap()
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        // While it runs, a second attempt for the account is turned away for now.
        assert_eq!(
            limiter.begin(keys("alice", "5.5.5.5")).await.unwrap().err(),
            Some(Refusal::Busy)
        );
        limiter.finish(attempt, Outcome::Succeeded).await;
        // The owner got in: the account is no longer slowed.
        let started = std::time::Instant::now();
        let attempt = limiter.begin(keys("alice", "5.5.5.5")).await.unwrap();
        assert!(attempt.is_ok() && started.elapsed() < Duration::from_millis(200));
    }

    #[tokio::test]
    async fn failed_logins_to_one_server_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = limits(100, 100, 100);
        l.per_server = 2;
        let limiter = limiter(dir.path(), l).await;
        for user in ["a", "b"] {
            let mut k = keys(user, &format!("10.0.0.{}", user.len()));
            k.server = Some("imap.example:993".into());
            let attempt = limiter.begin(k).await.unwrap().unwrap();
            limiter.finish(attempt, Outcome::WrongCredentials).await;
        }
        let mut k = keys("c", "10.9.9.9");
        k.server = Some("imap.example:993".into());
        assert!(matches!(
            limiter.begin(k).await.unwrap(),
            Err(Refusal::ServerProtected { .. })
        ));
        let mut k = keys("c", "10.9.9.9");
        k.server = Some("other.example:993".into());
        assert!(limiter.begin(k).await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn another_limiter_on_the_same_database_sees_the_same_failures() {
        let dir = tempfile::tempdir().unwrap();
        let node_a = limiter(dir.path(), limits(100, 100, 1)).await;
        let node_b = limiter(dir.path(), limits(100, 100, 1)).await;
        assert!(fail(&node_a, "alice", "1.1.1.1").await);
        assert!(fail(&node_b, "alice", "2.2.2.2").await);
        // Both nodes now slow the account (a pause before each attempt).
        let started = std::time::Instant::now();
        let attempt = node_a.begin(keys("alice", "3.3.3.3")).await.unwrap();
        assert!(attempt.is_ok() && started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_group(a), address_group(b));
        assert_ne!(address_group(a), address_group(c));
        assert_eq!(address_group("::ffff:1.2.3.4".parse().unwrap()), "1.2.3.4");
        assert_eq!(address_group("1.2.3.4".parse().unwrap()), "1.2.3.4");
    }
}
