//! Typed configuration, layered: command line > environment > config file > defaults.

use crate::cli::ServeArgs;
use crate::profiles::{ProfileError, RouteConfig, Routes, ServerProfile};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_STATIC_DIR: &str = "dist";
pub const SQLITE_FILE_NAME: &str = "mailferry.db";
pub const DEFAULT_WORKERS: usize = 4;
pub const DEFAULT_LEASE_SECONDS: u64 = 30;
/// A session unused this long ends (12 hours).
pub const DEFAULT_SESSION_IDLE_SECONDS: u64 = 12 * 3600;
/// A session ends this long after its sign-in, however busy (24 hours).
pub const DEFAULT_SESSION_LIFETIME_SECONDS: u64 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub static_dir: PathBuf,
    /// The migration routes end users may choose from.
    pub routes: Routes,
    /// Jobs this node runs at once.
    pub workers: usize,
    /// How long a node's hold on a job lasts without a heartbeat (renewed every third of
    /// it): after a node dies, another takes its jobs over this long after its last beat.
    pub lease_seconds: i64,
    /// Base64 key sealing credentials (inline); else read from `secret_key_file`.
    pub secret_key: Option<String>,
    /// The key file; default `DATA_DIR/secret.key`, created on first start. Every node
    /// sharing one database needs the same key.
    pub secret_key_file: PathBuf,
    /// This node's name in leases and job runs; default `HOSTNAME-RANDOM`.
    pub node_name: String,
    /// Run a delta sync this many minutes after each completed run (off when unset).
    pub delta_sync_minutes: Option<u64>,
    /// Keep credentials this long after a job completes (for delta syncs); 0 erases them at once.
    pub credential_retention_hours: u64,
    /// A job that makes no progress this long is stopped and retried (`None`: 0, never).
    pub stall_timeout_seconds: Option<u64>,
    /// Message bytes in flight on this node, all jobs together, in MiB.
    pub memory_budget_mb: u64,
    /// Mark cookies `Secure` and name the session cookie `__Host-mailferry_session`, and
    /// send HSTS. On by default; off only for plain-HTTP development on loopback.
    pub secure_cookies: bool,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The origin (`https://host[:port]`) users reach the portal at, from `public_url`.
    pub public_origin: Option<String>,
    /// Idle and absolute session lifetimes, in seconds.
    pub session_idle_seconds: u64,
    pub session_lifetime_seconds: u64,
    /// When the node stops (SIGTERM, Ctrl-C): how long running jobs may go on before they
    /// are stopped and released to other nodes.
    pub shutdown_grace_seconds: u64,
    /// Where `/metrics` is served (Prometheus text), apart from the portal; off when unset.
    pub metrics_listen: Option<SocketAddr>,
    /// The config file this came from (checked for safe permissions at start-up).
    pub config_file: Option<PathBuf>,
    /// Files holding secrets named by the config (master password files).
    pub secret_files: Vec<PathBuf>,
}

/// What a config file may hold; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    static_dir: Option<PathBuf>,
    #[serde(default)]
    servers: BTreeMap<String, ServerProfile>,
    #[serde(default)]
    routes: BTreeMap<String, RouteConfig>,
    workers: Option<usize>,
    lease_seconds: Option<u64>,
    secret_key: Option<String>,
    secret_key_file: Option<PathBuf>,
    node_name: Option<String>,
    delta_sync_minutes: Option<u64>,
    credential_retention_hours: Option<u64>,
    stall_timeout_seconds: Option<u64>,
    memory_budget_mb: Option<u64>,
    secure_cookies: Option<bool>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    public_url: Option<String>,
    session_idle_seconds: Option<u64>,
    session_lifetime_seconds: Option<u64>,
    metrics_listen: Option<SocketAddr>,
    shutdown_grace_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file: {0}")]
    Routes(#[from] ProfileError),
    #[error("config file: {0}")]
    Setting(String),
    #[error("public_url {url:?} is not valid: {reason}")]
    PublicUrl { url: String, reason: String },
}

impl Config {
    /// Builds the configuration from an optional TOML file and the (CLI or environment) arguments.
    pub fn load(file: Option<&Path>, args: &ServeArgs) -> Result<Self, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|err| ConfigError::Parse {
                    path: path.to_owned(),
                    message: err.message().to_owned(),
                })?
            }
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(from_file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = args
            .database_url
            .clone()
            .or(from_file.database_url)
            .unwrap_or_else(|| sqlite_url(&data_dir.join(SQLITE_FILE_NAME)));
        let secret_files = from_file
            .servers
            .values()
            .flat_map(|server| {
                let oauth = server.oauth.as_ref();
                [
                    server.master_password_file.clone(),
                    oauth.and_then(|o| o.client_secret_file.clone()),
                    oauth.and_then(|o| o.private_key_file.clone()),
                ]
            })
            .flatten()
            .collect();
        let routes = Routes::new(from_file.servers, from_file.routes)?;
        let trusted_proxies =
            crate::http::client_address::parse_trusted(&from_file.trusted_proxies)
                .map_err(ConfigError::Setting)?;
        let public_origin = match args.public_url.clone().or(from_file.public_url) {
            Some(url) if !url.trim().is_empty() => Some(
                crate::http::origin_of_url(url.trim())
                    .map_err(|reason| ConfigError::PublicUrl { url, reason })?,
            ),
            _ => None,
        };
        Ok(Config {
            trusted_proxies,
            public_origin,
            session_idle_seconds: from_file
                .session_idle_seconds
                .unwrap_or(DEFAULT_SESSION_IDLE_SECONDS)
                .max(1),
            session_lifetime_seconds: from_file
                .session_lifetime_seconds
                .unwrap_or(DEFAULT_SESSION_LIFETIME_SECONDS)
                .max(1),
            metrics_listen: args.metrics_listen.or(from_file.metrics_listen),
            shutdown_grace_seconds: from_file
                .shutdown_grace_seconds
                .unwrap_or(crate::jobs::worker::DEFAULT_SHUTDOWN_GRACE.as_secs())
                .min(3600),
            config_file: file.map(Path::to_path_buf),
            secret_files,
            routes,
            workers: from_file.workers.unwrap_or(DEFAULT_WORKERS).max(1),
            lease_seconds: from_file
                .lease_seconds
                .unwrap_or(DEFAULT_LEASE_SECONDS)
                .clamp(3, 3600) as i64,
            secret_key: from_file.secret_key,
            secret_key_file: args
                .secret_key_file
                .clone()
                .or(from_file.secret_key_file)
                .unwrap_or_else(|| data_dir.join(crate::vault::KEY_FILE_NAME)),
            node_name: args
                .node_name
                .clone()
                .or(from_file.node_name)
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(default_node_name),
            delta_sync_minutes: from_file.delta_sync_minutes,
            credential_retention_hours: from_file.credential_retention_hours.unwrap_or(0),
            stall_timeout_seconds: match from_file.stall_timeout_seconds {
                None => Some(crate::engine::DEFAULT_STALL_TIMEOUT.as_secs()),
                Some(0) => None,
                Some(seconds) => Some(seconds),
            },
            memory_budget_mb: from_file
                .memory_budget_mb
                .unwrap_or(crate::engine::copy::budget::DEFAULT_BUDGET_BYTES >> 20)
                .max(1),
            secure_cookies: args
                .secure_cookies
                .or(from_file.secure_cookies)
                .unwrap_or(true),
            listen: args
                .listen
                .or(from_file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("default address is valid")),
            data_dir,
            database_url,
            static_dir: args
                .static_dir
                .clone()
                .or(from_file.static_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATIC_DIR)),
        })
    }
}

/// `HOSTNAME-XXXXXX`: readable in the helpdesk, unique across restarts (a restarted node
/// is a new node: the old one's leases run out and its jobs are taken over).
fn default_node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", &crate::jobs::random_id()[..6])
}

/// `sqlite://` URL that creates the file if it does not exist yet.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_put_sqlite_under_the_data_dir() {
        let config = Config::load(None, &ServeArgs::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert_eq!(config.database_url, "sqlite://data/mailferry.db?mode=rwc");
        assert_eq!(config.static_dir, PathBuf::from("dist"));
        assert!(
            config.secure_cookies,
            "cookies are Secure unless turned off"
        );
        assert_eq!(config.public_origin, None);
        assert_eq!(config.session_idle_seconds, 12 * 3600);
        assert_eq!(config.session_lifetime_seconds, 24 * 3600);
    }

    #[test]
    fn public_url_becomes_an_origin_and_bad_ones_are_refused() {
        let args = ServeArgs {
            public_url: Some("HTTPS://Migrate.Example.org:443/portal/".into()),
            ..ServeArgs::default()
        };
        let config = Config::load(None, &args).unwrap();
        assert_eq!(
            config.public_origin.as_deref(),
            Some("https://migrate.example.org")
        );
        let args = ServeArgs {
            public_url: Some("migrate.example.org".into()),
            ..ServeArgs::default()
        };
        let text = Config::load(None, &args).unwrap_err().to_string();
        assert!(
            text.contains("public_url") && text.contains("https://"),
            "{text}"
        );
    }

    #[test]
    fn command_line_beats_file_and_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mailferry.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/mf\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..ServeArgs::default()
        };
        let config = Config::load(Some(&file), &args).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.data_dir, PathBuf::from("/srv/mf"));
        assert_eq!(
            config.database_url,
            "sqlite:///srv/mf/mailferry.db?mode=rwc"
        );
    }

    #[test]
    fn unknown_setting_in_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mailferry.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::load(Some(&file), &ServeArgs::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("mailferry.toml") && text.contains("lisen"),
            "{text}"
        );
    }
}
