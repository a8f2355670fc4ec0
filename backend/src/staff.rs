//! Staff accounts (helpdesk and admin): argon2id password hashes in the database,
//! created with `mailferry staff add`, changed with `staff passwd`, removed with
//! `staff remove`. Argon2 is slow on purpose: it runs on the blocking thread pool, at
//! most [`HASHES_AT_ONCE`] at a time, so sign-ins never stall the async threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use mailferry_shared::StaffRole;
use sqlx::AnyPool;
use tokio::sync::Semaphore;

/// Argon2 computations running at once (each takes ~19 MiB and a core for tens of
/// milliseconds); further sign-ins wait their turn.
pub const HASHES_AT_ONCE: usize = 2;
static HASHING: Semaphore = Semaphore::const_new(HASHES_AT_ONCE);

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("staff user names are 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    BadName,
    #[error("staff passwords need at least 10 characters")]
    WeakPassword,
    #[error(
        "a staff account named {0} already exists (use --reset-password to change its password)"
    )]
    Exists(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the system random generator failed")]
    Random,
    #[error("there is no staff account named {0} (see `mailferry staff list`)")]
    NoSuchAccount(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

pub fn role_name(role: StaffRole) -> &'static str {
    match role {
        StaffRole::Helpdesk => "helpdesk",
        StaffRole::Admin => "admin",
    }
}

fn parse_role(text: &str) -> Option<StaffRole> {
    match text {
        "helpdesk" => Some(StaffRole::Helpdesk),
        "admin" => Some(StaffRole::Admin),
        _ => None,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Runs `work` (argon2) on the blocking pool once a hashing slot is free.
async fn off_the_async_threads<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StaffError> {
    let _slot = HASHING
        .acquire()
        .await
        .map_err(|_| StaffError::Hash("the hashing queue is closed".into()))?;
    #[cfg(test)]
    let _count = tests::InFlight::enter();
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StaffError::Hash(format!("the hashing task failed: {e}")))
}

async fn hash_password(password: &str) -> Result<String, StaffError> {
    let password = password.to_owned();
    off_the_async_threads(move || hash_now(&password)).await?
}

fn hash_now(password: &str) -> Result<String, StaffError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|_| StaffError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StaffError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StaffError::Hash(e.to_string()))
}

/// Creates a staff account, or with `reset` replaces the password (and role) of one.
pub async fn add(
    pool: &AnyPool,
    username: &str,
    password: &str,
    role: StaffRole,
    reset: bool,
) -> Result<(), StaffError> {
    if !valid_name(username) {
        return Err(StaffError::BadName);
    }
    if password.chars().count() < 10 {
        return Err(StaffError::WeakPassword);
    }
    let hash = hash_password(password).await?;
    let exists: Option<String> =
        sqlx::query_scalar("SELECT username FROM staff WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    match (exists, reset) {
        (Some(_), false) => Err(StaffError::Exists(username.to_owned())),
        (Some(_), true) => {
            sqlx::query(
                "UPDATE staff SET password_hash = $1, role = $2, password_changed_at = $3 \
                 WHERE username = $4",
            )
            .bind(hash)
            .bind(role_name(role))
            .bind(crate::clock::unix_millis())
            .bind(username)
            .execute(pool)
            .await?;
            Ok(())
        }
        (None, _) => {
            sqlx::query(
                "INSERT INTO staff (username, password_hash, role, created_at, password_changed_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(username)
            .bind(hash)
            .bind(role_name(role))
            .bind(crate::jobs::now())
            .bind(crate::clock::unix_millis())
            .execute(pool)
            .await?;
            Ok(())
        }
    }
}

/// The account's role when the password is right. Unknown users cost the same time as
/// known ones, so the answer's timing does not tell which names exist.
pub async fn verify(
    pool: &AnyPool,
    username: &str,
    password: &str,
) -> Result<Option<StaffRole>, StaffError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT password_hash, role FROM staff WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    let (hash, role) = match row {
        Some(row) => row,
        None => {
            // Spend the same effort on a throw-away hash.
            let _ = hash_password(password).await;
            return Ok(None);
        }
    };
    let password = password.to_owned();
    let matches = off_the_async_threads(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| StaffError::Hash(e.to_string()))?;
        Ok::<_, StaffError>(
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
        )
    })
    .await??;
    Ok(if matches { parse_role(&role) } else { None })
}

/// Gives an existing account a new password. Every session signed in before this moment
/// stops working at its next request.
pub async fn set_password(
    pool: &AnyPool,
    username: &str,
    password: &str,
) -> Result<(), StaffError> {
    if password.chars().count() < 10 {
        return Err(StaffError::WeakPassword);
    }
    let hash = hash_password(password).await?;
    let changed = sqlx::query(
        "UPDATE staff SET password_hash = $1, password_changed_at = $2 WHERE username = $3",
    )
    .bind(hash)
    .bind(crate::clock::unix_millis())
    .bind(username)
    .execute(pool)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(StaffError::NoSuchAccount(username.to_owned()));
    }
    Ok(())
}

/// Removes an account; its sessions stop working at their next request.
pub async fn remove(pool: &AnyPool, username: &str) -> Result<(), StaffError> {
    let removed = sqlx::query("DELETE FROM staff WHERE username = $1")
        .bind(username)
        .execute(pool)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(StaffError::NoSuchAccount(username.to_owned()));
    }
    Ok(())
}

/// What a signed-in session is checked against on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffStanding {
    pub role: StaffRole,
    /// Unix milliseconds of the last password (or role reset) change.
    pub password_changed_at: i64,
}

/// The account's current role and password age, or `None` when it no longer exists.
pub async fn standing(pool: &AnyPool, username: &str) -> Result<Option<StaffStanding>, StaffError> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT role, password_changed_at FROM staff WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(role, password_changed_at)| {
        parse_role(&role).map(|role| StaffStanding {
            role,
            password_changed_at,
        })
    }))
}

/// Everyone on the staff, for the admin overview.
/// Whether any staff account exists (while none does, the server offers a setup link).
pub async fn any(pool: &AnyPool) -> Result<bool, StaffError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT username FROM staff LIMIT 1")
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

pub async fn list(pool: &AnyPool) -> Result<Vec<(String, StaffRole)>, StaffError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT username, role FROM staff ORDER BY username")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, role)| parse_role(&role).map(|r| (name, r)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    /// Counts hashes running at once (test builds only).
    pub(super) struct InFlight;

    impl InFlight {
        pub(super) fn enter() -> InFlight {
            let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::SeqCst);
            InFlight
        }
    }

    impl Drop for InFlight {
        fn drop(&mut self) {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// On a single-threaded runtime, another task keeps running while passwords are
    /// checked, and no more than HASHES_AT_ONCE hashes run together.
    #[tokio::test(flavor = "current_thread")]
    async fn argon2_leaves_the_async_thread_free_and_is_bounded() {
        let (_dir, db) = db().await;
        add(
            db.pool(),
            "tick",
            "tick tock tick",
            StaffRole::Helpdesk,
            false,
        )
        .await
        .unwrap();
        let pool = db.pool().clone();
        let checks = tokio::spawn(async move {
            let all = (0..6).map(|_| verify(&pool, "tick", "tick tock tick"));
            futures::future::join_all(all).await
        });
        let mut ticks = 0u32;
        while !checks.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            ticks += 1;
        }
        for result in checks.await.unwrap() {
            assert_eq!(result.unwrap(), Some(StaffRole::Helpdesk));
        }
        assert!(
            ticks >= 20,
            "the runtime's only thread was blocked while hashing ({ticks} ticks)"
        );
        assert!(PEAK.load(Ordering::SeqCst) <= HASHES_AT_ONCE);
        assert!(PEAK.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn passwd_and_remove_change_the_standing() {
        let (_dir, db) = db().await;
        add(db.pool(), "max", "first password", StaffRole::Admin, false)
            .await
            .unwrap();
        let before = standing(db.pool(), "max").await.unwrap().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        set_password(db.pool(), "max", "second password")
            .await
            .unwrap();
        let after = standing(db.pool(), "max").await.unwrap().unwrap();
        assert!(after.password_changed_at > before.password_changed_at);
        assert_eq!(
            verify(db.pool(), "max", "second password").await.unwrap(),
            Some(StaffRole::Admin)
        );
        assert_eq!(
            verify(db.pool(), "max", "first password").await.unwrap(),
            None
        );
        remove(db.pool(), "max").await.unwrap();
        assert_eq!(standing(db.pool(), "max").await.unwrap(), None);
        assert!(matches!(
            remove(db.pool(), "max").await,
            Err(StaffError::NoSuchAccount(_))
        ));
        assert!(matches!(
            set_password(db.pool(), "nobody", "long enough pw").await,
            Err(StaffError::NoSuchAccount(_))
        ));
    }

    async fn db() -> (tempfile::TempDir, crate::db::Database) {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url(&dir.path().join("t.db"));
        let db = crate::db::Database::open(&url).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn staff_password_is_hashed_and_verified() {
        let (_dir, db) = db().await;
        add(
            db.pool(),
            "helen",
            "correct horse",
            StaffRole::Helpdesk,
            false,
        )
        .await
        .unwrap();
        let stored: String = sqlx::query_scalar("SELECT password_hash FROM staff")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains("correct horse"));
        assert_eq!(
            verify(db.pool(), "helen", "correct horse").await.unwrap(),
            Some(StaffRole::Helpdesk)
        );
        assert_eq!(
            verify(db.pool(), "helen", "wrong horse!").await.unwrap(),
            None
        );
        assert_eq!(
            verify(db.pool(), "nobody", "correct horse").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn existing_account_needs_reset_to_change() {
        let (_dir, db) = db().await;
        add(db.pool(), "ada", "first password", StaffRole::Admin, false)
            .await
            .unwrap();
        assert!(matches!(
            add(db.pool(), "ada", "second password", StaffRole::Admin, false).await,
            Err(StaffError::Exists(_))
        ));
        add(db.pool(), "ada", "second password", StaffRole::Admin, true)
            .await
            .unwrap();
        assert_eq!(
            verify(db.pool(), "ada", "second password").await.unwrap(),
            Some(StaffRole::Admin)
        );
        assert!(matches!(
            add(
                db.pool(),
                "bad name",
                "long enough pw",
                StaffRole::Admin,
                false
            )
            .await,
            Err(StaffError::BadName)
        ));
        assert!(matches!(
            add(db.pool(), "short", "short", StaffRole::Admin, false).await,
            Err(StaffError::WeakPassword)
        ));
    }
}
