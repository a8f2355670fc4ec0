//! Staff accounts (helpdesk and admin): argon2id password hashes in the database,
//! created with `mailferry staff add`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use mailferry_shared::StaffRole;
use sqlx::AnyPool;

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

fn hash_password(password: &str) -> Result<String, StaffError> {
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
    let hash = hash_password(password)?;
    let exists: Option<String> =
        sqlx::query_scalar("SELECT username FROM staff WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    match (exists, reset) {
        (Some(_), false) => Err(StaffError::Exists(username.to_owned())),
        (Some(_), true) => {
            sqlx::query("UPDATE staff SET password_hash = $1, role = $2 WHERE username = $3")
                .bind(hash)
                .bind(role_name(role))
                .bind(username)
                .execute(pool)
                .await?;
            Ok(())
        }
        (None, _) => {
            sqlx::query(
                "INSERT INTO staff (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(username)
            .bind(hash)
            .bind(role_name(role))
            .bind(crate::jobs::now())
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
            let _ = hash_password(password);
            return Ok(None);
        }
    };
    let parsed = PasswordHash::new(&hash).map_err(|e| StaffError::Hash(e.to_string()))?;
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
    {
        Ok(parse_role(&role))
    } else {
        Ok(None)
    }
}

/// Everyone on the staff, for the admin overview.
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
