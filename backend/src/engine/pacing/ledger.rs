//! The database side of pacing: connection slots and per-window usage, shared by every
//! node (SQLite for one, PostgreSQL for several). Every statement is one atomic upsert or
//! update that is valid on both, so two nodes can never both take the last slot or the
//! last bytes of a window. Times come from the database's clock (see `jobs::lease`).

use sqlx::AnyPool;

/// Which clock the nodes agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// This machine's (SQLite: every worker runs in this process).
    Local,
    /// The PostgreSQL server's.
    Database,
}

pub async fn now_ms(pool: &AnyPool, clock: Clock) -> sqlx::Result<i64> {
    match clock {
        Clock::Local => Ok(crate::clock::unix_millis()),
        Clock::Database => {
            sqlx::query_scalar(
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            )
            .fetch_one(pool)
            .await
        }
    }
}

/// Adds `amount` to the account's count of `kind` in the window starting at `start`,
/// unless that would take it past `cap`. Returns whether it was added. An amount larger
/// than the whole cap is added only to an empty window (else it could never pass).
pub async fn add_within(
    pool: &AnyPool,
    account: &str,
    kind: &str,
    start: i64,
    amount: u64,
    cap: u64,
) -> sqlx::Result<bool> {
    let amount = i64::try_from(amount).unwrap_or(i64::MAX);
    let cap = i64::try_from(cap).unwrap_or(i64::MAX).max(amount);
    let added = sqlx::query(
        "INSERT INTO pacing_usage (account, kind, window_start_ms, amount) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account, kind, window_start_ms) DO UPDATE \
         SET amount = pacing_usage.amount + excluded.amount \
         WHERE pacing_usage.amount + excluded.amount <= $5",
    )
    .bind(account)
    .bind(kind)
    .bind(start)
    .bind(amount)
    .bind(cap)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(added == 1)
}

/// Forgets the account's counts of `kind` in windows that started before `before`.
pub async fn forget_before(
    pool: &AnyPool,
    account: &str,
    kind: &str,
    before: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM pacing_usage WHERE account = $1 AND kind = $2 AND window_start_ms < $3",
    )
    .bind(account)
    .bind(kind)
    .bind(before)
    .execute(pool)
    .await?;
    Ok(())
}

/// What the account used of `kind` in the window starting at `start` (for tests and the
/// helpdesk).
pub async fn used(pool: &AnyPool, account: &str, kind: &str, start: i64) -> sqlx::Result<u64> {
    let amount: Option<i64> = sqlx::query_scalar(
        "SELECT amount FROM pacing_usage WHERE account = $1 AND kind = $2 AND window_start_ms = $3",
    )
    .bind(account)
    .bind(kind)
    .bind(start)
    .fetch_optional(pool)
    .await?;
    Ok(amount.unwrap_or(0).max(0) as u64)
}

/// Takes slot `slot` of the account for `holder` until `expires`, if it is free or its
/// holder let it expire (a crashed node). Returns whether it is ours now.
pub async fn take_slot(
    pool: &AnyPool,
    account: &str,
    slot: u32,
    holder: &str,
    now: i64,
    expires: i64,
) -> sqlx::Result<bool> {
    let taken = sqlx::query(
        "INSERT INTO pacing_slots (account, slot, holder, expires_at_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account, slot) DO UPDATE \
         SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
         WHERE pacing_slots.expires_at_ms < $5",
    )
    .bind(account)
    .bind(i64::from(slot))
    .bind(holder)
    .bind(expires)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// Keeps a slot ours until `expires`. Returns false when it is no longer ours.
pub async fn renew_slot(
    pool: &AnyPool,
    account: &str,
    slot: u32,
    holder: &str,
    expires: i64,
) -> sqlx::Result<bool> {
    let renewed = sqlx::query(
        "UPDATE pacing_slots SET expires_at_ms = $1 WHERE account = $2 AND slot = $3 AND holder = $4",
    )
    .bind(expires)
    .bind(account)
    .bind(i64::from(slot))
    .bind(holder)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(renewed == 1)
}

pub async fn release_slot(
    pool: &AnyPool,
    account: &str,
    slot: u32,
    holder: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM pacing_slots WHERE account = $1 AND slot = $2 AND holder = $3")
        .bind(account)
        .bind(i64::from(slot))
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

/// Slots of the account held now (for tests and the helpdesk).
pub async fn slots_held(pool: &AnyPool, account: &str, now: i64) -> sqlx::Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pacing_slots WHERE account = $1 AND expires_at_ms >= $2",
    )
    .bind(account)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(n.max(0) as u64)
}
