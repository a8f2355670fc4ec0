//! The database: SQLite by default (embedded, zero set-up), PostgreSQL when the URL says so.
//! One `AnyPool` serves both; the migrations in `/migrations` are valid on both.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    /// The clock the nodes sharing this database agree on (for pacing windows and slots).
    pub fn clock(self) -> crate::engine::pacing::Clock {
        match self {
            DatabaseKind::Sqlite => crate::engine::pacing::Clock::Local,
            DatabaseKind::Postgres => crate::engine::pacing::Clock::Database,
        }
    }

    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(DatabaseKind::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(DatabaseKind::Postgres)
        } else {
            Err(DbError::UnsupportedUrl(redact_url(url)))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL {0} is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot make {path} readable by its owner only: {source}")]
    FileMode {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    kind: DatabaseKind,
}

impl Database {
    /// Opens (creating a SQLite file and its directory if needed) and migrates the database.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let kind = DatabaseKind::from_url(url)?;
        let sqlite_file = match kind {
            DatabaseKind::Sqlite => sqlite_file(url),
            DatabaseKind::Postgres => None,
        };
        if let Some(file) = sqlite_file.as_deref() {
            if let Some(dir) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(dir).map_err(|source| DbError::DataDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files
            // the database file's mode.
            create_private_file(file).map_err(|source| DbError::FileMode {
                path: file.display().to_string(),
                source,
            })?;
        }
        let options = AnyConnectOptions::from_str(url).map_err(|source| DbError::Connect {
            url: redact_url(url),
            source,
        })?;
        let pool = AnyPoolOptions::new()
            .max_connections(if kind == DatabaseKind::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if kind == DatabaseKind::Sqlite {
                        // WAL lets readers (SSE, helpdesk) run while a worker writes;
                        // busy_timeout makes concurrent writers wait instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        // Erased rows (sealed passwords, sessions) are overwritten with
                        // zeros, not left readable in free pages.
                        conn.execute("PRAGMA secure_delete = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| DbError::Connect {
                url: redact_url(url),
                source,
            })?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        if let Some(file) = sqlite_file.as_deref() {
            // Files made by an older version (or another umask) are tightened too.
            for path in sqlite_files(file) {
                restrict_to_owner(&path).map_err(|source| DbError::FileMode {
                    path: path.display().to_string(),
                    source,
                })?;
            }
        }
        Ok(Database { pool, kind })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// The file a `sqlite://` URL names, if any (not `:memory:`), with its percent-escapes
/// decoded as SQLite's driver decodes them (`my%20data` is the directory `my data`): the
/// directory and file made before opening must be the ones it then opens.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(percent_decoded(path)))
}

/// `%XX` escapes decoded to bytes (as SQLite's driver reads the path); a `%` without two
/// hex digits is kept as it is.
fn percent_decoded(s: &str) -> std::ffi::OsString {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
    #[cfg(unix)]
    {
        std::os::unix::ffi::OsStringExt::from_vec(bytes)
    }
    #[cfg(not(unix))]
    {
        String::from_utf8_lossy(&bytes).into_owned().into()
    }
}

/// The directory a `sqlite://` URL's file lives in, if it names one.
#[cfg(test)]
fn sqlite_parent_dir(url: &str) -> Option<PathBuf> {
    sqlite_file(url)?
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// The database file and the journal files SQLite keeps beside it.
fn sqlite_files(file: &Path) -> Vec<PathBuf> {
    let name = file.as_os_str();
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut path = name.to_owned();
            path.push(suffix);
            PathBuf::from(path)
        })
        .filter(|path| path.exists())
        .collect()
}

/// Creates `dir` (and missing parents) readable by this user only; an existing
/// directory is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `file` empty with mode 0600 unless it exists.
fn create_private_file(file: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file).map(drop)
}

/// Mode 0600 (owner read and write only).
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The URL without any password, safe to show in errors and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_the_password_only() {
        assert_eq!(
            redact_url("postgres://mf:s3cret@127.0.0.1:5432/mf"),
            "postgres://mf:***@127.0.0.1:5432/mf"
        );
        assert_eq!(redact_url("postgres://mf@db/mf"), "postgres://mf@db/mf");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn sqlite_parent_dir_is_found() {
        assert_eq!(
            sqlite_parent_dir("sqlite://data/mailferry.db?mode=rwc"),
            Some(PathBuf::from("data"))
        );
        assert_eq!(
            sqlite_parent_dir("sqlite:///srv/my%20data/m.db"),
            Some(PathBuf::from("/srv/my data"))
        );
        assert_eq!(sqlite_parent_dir("sqlite://x.db"), None);
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
    }

    #[test]
    fn unknown_scheme_is_refused_with_advice() {
        let err = DatabaseKind::from_url("mysql://u:p@h/db").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sqlite://") && !text.contains(":p@"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn sqlite_file_and_directory_are_created_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/data/mailferry.db");
        let db = Database::open(&crate::config::sqlite_url(&path))
            .await
            .unwrap();
        assert!(path.exists());
        db.ping().await.unwrap();
        let tables: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'settings'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(tables, 1);
        // Opening again is idempotent: migrations already applied are skipped.
        Database::open(&crate::config::sqlite_url(&path))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_plain_url_in_new_directories_creates_the_database() {
        // `mailferry migrate --db sqlite:///new/dir/file.db`: no `?mode=rwc`, missing
        // parents, and a directory name with a percent-escaped space.
        let dir = tempfile::tempdir().unwrap();
        for (url, file) in [
            (
                format!("sqlite://{}/new/dir/file.db", dir.path().display()),
                dir.path().join("new/dir/file.db"),
            ),
            (
                format!("sqlite://{}/my%20data/sub/m.db", dir.path().display()),
                dir.path().join("my data/sub/m.db"),
            ),
        ] {
            let db = Database::open(&url)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            db.ping().await.unwrap();
            assert!(file.is_file(), "{} created", file.display());
            drop(db);
            Database::open(&url).await.unwrap();
        }
    }

    #[tokio::test]
    async fn erased_rows_are_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url(&dir.path().join("t.db"));
        let db = Database::open(&url).await.unwrap();
        let secure: i64 = sqlx::query_scalar("PRAGMA secure_delete")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(secure, 1);
    }
}
