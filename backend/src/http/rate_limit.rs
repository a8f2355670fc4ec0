//! Slows down password guessing: failed sign-ins are counted per account and per client
//! address over a sliding window. The count lives in the database, so nodes sharing one
//! database share it: spreading attempts over several nodes gains nothing.

use sqlx::AnyPool;
use std::time::Duration;

#[derive(Debug)]
pub struct RateLimiter {
    pool: AnyPool,
    window: Duration,
    per_account: i64,
    per_address: i64,
}

use crate::clock::unix_millis as now_ms;

fn account_key(account: &str) -> String {
    format!("acct:{account}")
}

fn address_key(address: &str) -> String {
    format!("addr:{address}")
}

impl RateLimiter {
    /// Five failures per account and twenty per address in fifteen minutes.
    pub fn new(pool: AnyPool) -> Self {
        Self::with_limits(pool, Duration::from_secs(15 * 60), 5, 20)
    }

    pub fn with_limits(
        pool: AnyPool,
        window: Duration,
        per_account: i64,
        per_address: i64,
    ) -> Self {
        RateLimiter {
            pool,
            window,
            per_account,
            per_address,
        }
    }

    fn since(&self) -> i64 {
        now_ms() - self.window.as_millis() as i64
    }

    async fn recent(&self, key: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM sign_in_failures WHERE key = $1 AND at_ms >= $2")
            .bind(key)
            .bind(self.since())
            .fetch_one(&self.pool)
            .await
    }

    /// `Ok(Err(minutes))` when the account or the address has failed too often lately.
    pub async fn check(
        &self,
        account: &str,
        address: &str,
    ) -> Result<Result<(), u64>, sqlx::Error> {
        if self.recent(&account_key(account)).await? >= self.per_account
            || self.recent(&address_key(address)).await? >= self.per_address
        {
            return Ok(Err(self.window.as_secs().div_ceil(60)));
        }
        Ok(Ok(()))
    }

    /// Counts a failure (and forgets failures older than the window).
    pub async fn failed(&self, account: &str, address: &str) {
        let result = async {
            let at = now_ms();
            for key in [account_key(account), address_key(address)] {
                sqlx::query("INSERT INTO sign_in_failures (key, at_ms) VALUES ($1, $2)")
                    .bind(key)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
            }
            sqlx::query("DELETE FROM sign_in_failures WHERE at_ms < $1")
                .bind(self.since())
                .execute(&self.pool)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot count a failed sign-in");
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub async fn succeeded(&self, account: &str) {
        let result = sqlx::query("DELETE FROM sign_in_failures WHERE key = $1")
            .bind(account_key(account))
            .execute(&self.pool)
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot clear sign-in failures");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;

    async fn limiter(dir: &std::path::Path, per_account: i64, per_address: i64) -> RateLimiter {
        let db = Database::open(&crate::config::sqlite_url(&dir.join("r.db")))
            .await
            .unwrap();
        RateLimiter::with_limits(
            db.pool().clone(),
            Duration::from_secs(60),
            per_account,
            per_address,
        )
    }

    #[tokio::test]
    async fn too_many_failures_for_one_account_block_it_only() {
        let dir = tempfile::tempdir().unwrap();
        let limiter = limiter(dir.path(), 3, 100).await;
        for _ in 0..3 {
            assert!(limiter.check("alice", "1.2.3.4").await.unwrap().is_ok());
            limiter.failed("alice", "1.2.3.4").await;
        }
        assert!(limiter.check("alice", "5.6.7.8").await.unwrap().is_err());
        assert!(limiter.check("bob", "1.2.3.4").await.unwrap().is_ok());
        limiter.succeeded("alice").await;
        assert!(limiter.check("alice", "5.6.7.8").await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn too_many_failures_from_one_address_block_it() {
        let dir = tempfile::tempdir().unwrap();
        let limiter = limiter(dir.path(), 100, 2).await;
        limiter.failed("a", "9.9.9.9").await;
        limiter.failed("b", "9.9.9.9").await;
        assert!(limiter.check("c", "9.9.9.9").await.unwrap().is_err());
        assert!(limiter.check("c", "8.8.8.8").await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn another_limiter_on_the_same_database_sees_the_same_failures() {
        let dir = tempfile::tempdir().unwrap();
        let node_a = limiter(dir.path(), 2, 100).await;
        let node_b = limiter(dir.path(), 2, 100).await;
        node_a.failed("alice", "1.1.1.1").await;
        node_b.failed("alice", "2.2.2.2").await;
        assert!(node_a.check("alice", "3.3.3.3").await.unwrap().is_err());
        assert!(node_b.check("alice", "3.3.3.3").await.unwrap().is_err());
    }
}
