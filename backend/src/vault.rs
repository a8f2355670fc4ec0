//! Seals credentials at rest with an authenticated cipher (XChaCha20-Poly1305) under the
//! server's key. The key comes from the config (`secret_key`, base64) or from a key file
//! created on first start with mode 0600. Sealed values are base64 text, portable across
//! SQLite and PostgreSQL.
//!
//! Every sealed value is bound to what it belongs to (the job id, as associated data):
//! a value copied into another job's row does not open there. Plaintext and key bytes
//! are wiped from memory when dropped.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
pub const KEY_FILE_NAME: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cannot read or create the key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the key file {path} can be read by other users (mode {mode:03o}); make it private \
         to the server's user with `chmod 600 {path}` and start again",
        path = path.display()
    )]
    KeyFileNotPrivate { path: PathBuf, mode: u32 },
    #[error("the secret key must be {KEY_LEN} bytes, base64-encoded")]
    BadKey,
    #[error("the system random generator failed")]
    Random,
    /// Wrong key, or the value was tampered with: never decrypted silently.
    #[error("sealed credentials cannot be opened (wrong key or damaged data)")]
    Open,
}

#[derive(Clone)]
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(***)")
    }
}

impl Vault {
    /// The key from `secret_key` (base64) if given, else from `key_file` (usually
    /// `DATA_DIR/secret.key`), created on first use.
    pub fn open(secret_key: Option<&str>, key_file: &Path) -> Result<Self, VaultError> {
        let key = match secret_key {
            Some(text) => Zeroizing::new(B64.decode(text.trim()).map_err(|_| VaultError::BadKey)?),
            None => load_or_create_key_file(key_file)?,
        };
        if key.len() != KEY_LEN {
            return Err(VaultError::BadKey);
        }
        Ok(Vault {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// Seals `plain` for the owner named by `aad` (e.g. the job id): only
    /// [`open_sealed`](Self::open_sealed) with the same `aad` opens it.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|_| VaultError::Random)?;
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| VaultError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(B64.encode(out))
    }

    /// The plaintext of a value sealed for `aad`; wiped from memory when dropped. Another
    /// key, another `aad` or any change to the value is [`VaultError::Open`].
    pub fn open_sealed(&self, sealed: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let bytes = B64.decode(sealed).map_err(|_| VaultError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce, msg) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg, aad })
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Open)
    }
}

/// The settings entry holding a value sealed with the key every node must share.
const CANARY_SETTING: &str = "vault_canary";
const CANARY_TEXT: &[u8] = b"mailferry: credentials are sealed with this key";
/// The canary's own associated data: no job id can equal it (job ids start with `job-`).
const CANARY_AAD: &[u8] = b"mailferry key check";

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(
        "this database's stored passwords were sealed with a different secret key than this \
         server's. Every node (and every restart) must use the same key: copy the key file \
         (secret.key in the first node's data directory) to this node and point \
         --secret-key-file / MAILFERRY_SECRET_KEY_FILE at it, or set the same secret_key in \
         every config file"
    )]
    Mismatch,
    #[error("cannot check the secret key against the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot check the secret key: {0}")]
    Vault(#[from] VaultError),
}

impl Vault {
    /// Makes sure this key is the one the database's credentials are sealed with: the
    /// first server to start stores a value sealed with its key; later servers (other
    /// nodes, restarts) must be able to open it, or they refuse to start rather than
    /// fail every job with unreadable passwords.
    pub async fn check_against(&self, pool: &sqlx::AnyPool) -> Result<(), KeyCheckError> {
        let mine = self.seal(CANARY_TEXT, CANARY_AAD)?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(CANARY_SETTING)
        .bind(&mine)
        .execute(pool)
        .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(CANARY_SETTING)
            .fetch_one(pool)
            .await?;
        match self.open_sealed(&stored, CANARY_AAD) {
            Ok(plain) if plain.as_slice() == CANARY_TEXT => Ok(()),
            _ => Err(KeyCheckError::Mismatch),
        }
    }
}

fn load_or_create_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let io = |source| VaultError::KeyFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path).map(Zeroizing::new) {
        Ok(text) => {
            refuse_if_not_private(path)?;
            Ok(Zeroizing::new(
                B64.decode(text.trim()).map_err(|_| VaultError::BadKey)?,
            ))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
            getrandom::getrandom(&mut key).map_err(|_| VaultError::Random)?;
            write_private(path, Zeroizing::new(B64.encode(&*key)).as_bytes()).map_err(io)?;
            tracing::info!(path = %path.display(), "created a new secret key for credentials");
            Ok(key)
        }
        Err(err) => Err(io(err)),
    }
}

/// A key file others on the machine can read is a key they have: refuse it, with the fix.
fn refuse_if_not_private(path: &Path) -> Result<(), VaultError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| VaultError::KeyFile {
                path: path.to_owned(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::KeyFileNotPrivate {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates the file readable by its owner only, failing if it already exists.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_with_the_same_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(None, &dir.path().join(KEY_FILE_NAME)).unwrap();
        let sealed = vault.seal(b"hunter2", b"job-1").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            vault.open_sealed(&sealed, b"job-1").unwrap().as_slice(),
            b"hunter2"
        );
        // The key file is reused on the next start...
        let again = Vault::open(None, &dir.path().join(KEY_FILE_NAME)).unwrap();
        assert_eq!(
            again.open_sealed(&sealed, b"job-1").unwrap().as_slice(),
            b"hunter2"
        );
        // ...and another key cannot open it.
        let other = tempfile::tempdir().unwrap();
        let stranger = Vault::open(None, &other.path().join(KEY_FILE_NAME)).unwrap();
        assert!(matches!(
            stranger.open_sealed(&sealed, b"job-1"),
            Err(VaultError::Open)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Vault::open(None, &dir.path().join(KEY_FILE_NAME)).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn tampered_value_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(None, &dir.path().join(KEY_FILE_NAME)).unwrap();
        let mut raw = B64
            .decode(vault.seal(b"secret", b"job-1").unwrap())
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(vault.open_sealed(&B64.encode(raw), b"job-1").is_err());
    }

    #[test]
    fn a_value_sealed_for_one_owner_does_not_open_for_another() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(None, &dir.path().join(KEY_FILE_NAME)).unwrap();
        let sealed = vault.seal(b"secret", b"job-1").unwrap();
        assert!(matches!(
            vault.open_sealed(&sealed, b"job-2"),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            vault.open_sealed(&sealed, b""),
            Err(VaultError::Open)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        Vault::open(None, &path).unwrap();
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Vault::open(None, &path).unwrap_err();
            assert!(
                matches!(err, VaultError::KeyFileNotPrivate { .. }),
                "mode {mode:o}: {err}"
            );
            let advice = format!("chmod 600 {}", path.display());
            assert!(err.to_string().contains(&advice), "{err}");
        }
        // Once fixed as advised, the server starts again with the same key.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Vault::open(None, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        Vault::open(None, &path).unwrap();
    }

    #[test]
    fn configured_key_must_have_the_right_length() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Vault::open(Some("c2hvcnQ="), &dir.path().join(KEY_FILE_NAME)),
            Err(VaultError::BadKey)
        ));
    }

    #[tokio::test]
    async fn a_server_with_another_key_refuses_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url(&dir.path().join("db.sqlite"));
        let db = crate::db::Database::open(&url).await.unwrap();
        let first = Vault::open(None, &dir.path().join("a.key")).unwrap();
        first.check_against(db.pool()).await.unwrap();
        // The same key again (a restart, another node given the key file) is accepted...
        let same = Vault::open(None, &dir.path().join("a.key")).unwrap();
        same.check_against(db.pool()).await.unwrap();
        // ...a different one is refused, with advice.
        let other = Vault::open(None, &dir.path().join("b.key")).unwrap();
        let err = other.check_against(db.pool()).await.unwrap_err();
        assert!(matches!(err, KeyCheckError::Mismatch));
        assert!(err.to_string().contains("same key"), "{err}");
    }
}
