//! The two passwords of a job (and the OAuth tokens of a side that signs in with a
//! provider), sealed together in the job row while they are needed.
//! Sealed for that job only (its id is the associated data), and wiped from memory when
//! dropped.

use crate::vault::{Vault, VaultError};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub source_password: String,
    pub target_password: String,
    /// Tokens of a side whose user signed in with an OAuth provider (`auth = "oauth2"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_tokens: Option<crate::oauth::TokenSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tokens: Option<crate::oauth::TokenSet>,
}

/// Statuses of a job that waits for its user's credentials (a password, a provider
/// sign-in): new ones resume it.
pub const WAITING_FOR_CREDENTIALS: [mailferry_shared::JobStatus; 2] = [
    mailferry_shared::JobStatus::PausedSignInAgain,
    mailferry_shared::JobStatus::PausedPasswordChanged,
];

/// How [`Credentials::update`] writes the changed credentials back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// The user gave new credentials: stored even if none were left (unreadable ones are
    /// replaced), and the retention clock restarts.
    Replace,
    /// Refreshed tokens while the job runs: written only while credentials are still
    /// stored (an erase meanwhile wins), and not a change of the job.
    Refresh,
}

impl Credentials {
    /// Opens job `job_id`'s stored credentials, lets `change` edit them, and seals them
    /// back as `how` says.
    pub async fn update(
        store: &super::JobStore,
        vault: &Vault,
        job_id: &str,
        how: Update,
        change: impl FnOnce(&mut Credentials),
    ) -> Result<(), super::StoreError> {
        let sealed = store.credentials(job_id).await?;
        let mut credentials = match (sealed, how) {
            (None, Update::Refresh) => return Ok(()),
            (Some(sealed), Update::Refresh) => Credentials::open(&sealed, vault, job_id)?,
            (Some(sealed), Update::Replace) => {
                Credentials::open(&sealed, vault, job_id).unwrap_or_default()
            }
            (None, Update::Replace) => Credentials::default(),
        };
        change(&mut credentials);
        let sealed = credentials.seal(vault, job_id)?;
        match how {
            Update::Replace => store.set_credentials(job_id, &sealed).await,
            Update::Refresh => store.replace_credentials(job_id, &sealed).await,
        }
    }

    pub fn tokens_mut(
        &mut self,
        side: mailferry_shared::AccountSide,
    ) -> &mut Option<crate::oauth::TokenSet> {
        match side {
            mailferry_shared::AccountSide::Source => &mut self.source_tokens,
            mailferry_shared::AccountSide::Target => &mut self.target_tokens,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        self.source_password.zeroize();
        self.target_password.zeroize();
    }
}

impl Credentials {
    /// Sealed for the job `job_id`: the value opens in that job's row only.
    pub fn seal(&self, vault: &Vault, job_id: &str) -> Result<String, VaultError> {
        let json = Zeroizing::new(serde_json::to_vec(self).map_err(|_| VaultError::Open)?);
        vault.seal(&json, job_id.as_bytes())
    }

    /// Opens what [`seal`](Self::seal) sealed for `job_id`; a value sealed for another
    /// job (copied between rows) is [`VaultError::Open`].
    pub fn open(sealed: &str, vault: &Vault, job_id: &str) -> Result<Self, VaultError> {
        let json = vault.open_sealed(sealed, job_id.as_bytes())?;
        serde_json::from_slice(&json).map_err(|_| VaultError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(dir: &std::path::Path) -> Vault {
        Vault::open(None, &dir.join(crate::vault::KEY_FILE_NAME)).unwrap()
    }

    #[test]
    fn credentials_copied_to_another_job_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let sealed = Credentials {
            source_password: "old-secret".into(),
            target_password: "new-secret".into(),
            source_tokens: None,
            target_tokens: None,
        }
        .seal(&vault, "job-a")
        .unwrap();
        let opened = Credentials::open(&sealed, &vault, "job-a").unwrap();
        assert_eq!(opened.source_password, "old-secret");
        assert_eq!(opened.target_password, "new-secret");
        assert!(matches!(
            Credentials::open(&sealed, &vault, "job-b"),
            Err(VaultError::Open)
        ));
    }

    #[tokio::test]
    async fn a_sealed_value_moved_between_job_rows_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let db = crate::db::Database::open(&crate::config::sqlite_url(&dir.path().join("c.db")))
            .await
            .unwrap();
        let store = super::super::JobStore::new(
            db.pool().clone(),
            db.kind(),
            super::super::Notifier::default(),
        );
        let alice = store
            .open_job(
                "alice@old:993",
                "alice@new:993",
                "r",
                "alice",
                "alice",
                None,
            )
            .await
            .unwrap();
        let mallory = store
            .open_job("mallory@old:993", "mallory@new:993", "r", "m", "m", None)
            .await
            .unwrap();
        let sealed = Credentials {
            source_password: "alice-old".into(),
            target_password: "alice-new".into(),
            source_tokens: None,
            target_tokens: None,
        }
        .seal(&vault, &alice)
        .unwrap();
        store.set_credentials(&alice, &sealed).await.unwrap();
        // Someone with write access to the database copies Alice's sealed passwords into
        // their own job, hoping the worker will log in to Alice's mailbox for them.
        sqlx::query("UPDATE jobs SET credentials = (SELECT credentials FROM jobs WHERE id = $1) WHERE id = $2")
            .bind(&alice)
            .bind(&mallory)
            .execute(db.pool())
            .await
            .unwrap();
        let copied = store.credentials(&mallory).await.unwrap().unwrap();
        assert!(Credentials::open(&copied, &vault, &mallory).is_err());
        let own = store.credentials(&alice).await.unwrap().unwrap();
        assert_eq!(
            Credentials::open(&own, &vault, &alice)
                .unwrap()
                .source_password,
            "alice-old"
        );
    }
}
