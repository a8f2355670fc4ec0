//! The `mailferry` command line. Every option of `serve` can also come from the
//! environment (shown in `--help`) or from the config file (`--config`).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "mailferry",
    version,
    about = "Mailbox migration portal and IMAP copy engine",
    long_about = "Mailferry moves whole mailboxes from one IMAP server to another: every message, \
folder, flag and date, with no duplicates. `mailferry serve` runs the web portal; \
the other commands use the same engine and database from a terminal.\n\n\
Settings are taken, strongest first, from command-line options, MAILFERRY_* environment \
variables, the TOML config file, and built-in defaults."
)]
pub struct Cli {
    /// TOML config file with any of the `serve` settings (listen, data_dir, database_url,
    /// static_dir, servers, routes); `migrate --from-profile/--to-profile` reads its servers.
    #[arg(long, global = true, env = "MAILFERRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter, e.g. `info` or `mailferry=debug,sqlx=warn`.
    #[arg(long, global = true, env = "MAILFERRY_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web portal (end users, helpdesk, admin) and its job workers.
    Serve(ServeArgs),
    /// Copy one mailbox from a source IMAP server to a target IMAP server (re-runs copy only
    /// what is new). Passwords come from MAILFERRY_FROM_PASSWORD / MAILFERRY_TO_PASSWORD or
    /// the password-file options; OAuth 2.0 from a server profile of the config file
    /// (--from-profile / --to-profile) or a token file. Exit status: 0 all copied, 3 some messages skipped or
    /// failed, other non-zero on a fatal error.
    Migrate(Box<MigrateArgs>),
    /// Manage helpdesk and admin accounts of the portal.
    #[command(subcommand)]
    Staff(StaffCommand),
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Create a staff account (or change its password with --reset-password). The password
    /// is read from MAILFERRY_STAFF_PASSWORD, --password-file, or standard input.
    Add(StaffAddArgs),
    /// List staff accounts.
    List(StaffDbArgs),
    /// Delete a staff account; its open sessions stop working at their next request.
    Remove(StaffNameArgs),
    /// Give a staff account a new password (read like `staff add` reads it); every
    /// session signed in with the old one stops working at its next request.
    Passwd(StaffPasswdArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StaffNameArgs {
    /// Login name of the account.
    pub username: String,

    #[command(flatten)]
    pub db: StaffDbArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StaffPasswdArgs {
    /// Login name of the account.
    pub username: String,

    /// File holding the new password (first line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    #[command(flatten)]
    pub db: StaffDbArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StaffDbArgs {
    /// Data directory of the portal (its SQLite database) [default: ./data].
    #[arg(long, env = "MAILFERRY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL, as for `serve` [default: sqlite in the data directory].
    #[arg(long, env = "MAILFERRY_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StaffAddArgs {
    /// Login name (letters, digits, '.', '_', '-', '@').
    pub username: String,

    /// `helpdesk` (jobs: view, retry, cancel, sync) or `admin` (also CSV import and routes).
    #[arg(long, value_parser = ["helpdesk", "admin"], default_value = "helpdesk")]
    pub role: String,

    /// File holding the password (first line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Replace the password (and role) of an existing account.
    #[arg(long)]
    pub reset_password: bool,

    #[command(flatten)]
    pub db: StaffDbArgs,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Source account: `imaps://USER@HOST[:PORT]` (TLS) or `imap://USER@HOST[:PORT]` (STARTTLS).
    /// With --from-profile, just the mailbox's user name or address (a URL is accepted too
    /// if it names the profile's host and port).
    #[arg(long, value_name = "URL|USER")]
    pub from: String,

    /// Target account, same form as --from.
    #[arg(long, value_name = "URL|USER")]
    pub to: String,

    /// Connect to the source as server profile NAME of the config file (`[servers.NAME]`,
    /// the file `serve` uses, given with --config): host, port, TLS, CA and how to log in
    /// come from there. `auth = "oauth2_app"` gets tokens for the mailbox by itself,
    /// `master` uses the profile's master login, `password` takes the user's password as
    /// usual; `oauth2` (user consent in a browser) needs --from-oauth2-token-file.
    #[arg(long, value_name = "NAME")]
    pub from_profile: Option<String>,

    /// Connect to the target as server profile NAME, as --from-profile.
    #[arg(long, value_name = "NAME")]
    pub to_profile: Option<String>,

    /// Log in to the source with the OAuth 2.0 access token in FILE (XOAUTH2 or
    /// OAUTHBEARER), obtained elsewhere: for one-off runs. It is used as it is, never
    /// refreshed, so it must outlast the copy. The file must be private (chmod 600).
    #[arg(long, value_name = "FILE")]
    pub from_oauth2_token_file: Option<PathBuf>,

    /// Log in to the target with the access token in FILE, as --from-oauth2-token-file.
    #[arg(long, value_name = "FILE")]
    pub to_oauth2_token_file: Option<PathBuf>,

    /// File holding the source password (instead of MAILFERRY_FROM_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,

    /// File holding the target password (instead of MAILFERRY_TO_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub to_password_file: Option<PathBuf>,

    /// Master/admin login on the source: the URL's user is the admin, who logs in with
    /// AUTHENTICATE PLAIN on behalf of this user. (Dovecot's `user*master` works as a URL user too.)
    #[arg(long, value_name = "USER")]
    pub from_auth_as: Option<String>,

    /// Master/admin login on the target, as --from-auth-as.
    #[arg(long, value_name = "USER")]
    pub to_auth_as: Option<String>,

    /// Allow `imap://` without STARTTLS (passwords then cross the network in clear).
    #[arg(long)]
    pub allow_plaintext: bool,

    /// Extra CA certificate(s) to trust (PEM), e.g. for a company CA or a test server.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Database URL for the UID map [default: the portal's database].
    #[arg(long, env = "MAILFERRY_DATABASE_URL", value_name = "URL")]
    pub db: Option<String>,

    /// Directory of the portal's default SQLite database [default: ./data].
    #[arg(long, env = "MAILFERRY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Only show the folder plan and message counts; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Put source folder SOURCE (and its sub-folders) into TARGET; names use `/`. Repeatable.
    #[arg(long = "map", value_name = "SOURCE=TARGET")]
    pub map: Vec<String>,

    /// Copy only folders matching this pattern (`*`, `?`; names use `/`). Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub include: Vec<String>,

    /// Leave out folders matching this pattern. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// Label-style source (Gmail: labels shown as folders, plus All Mail): `auto` (when it
    /// offers X-GM-EXT-1 or has a \All folder), `on` or `off`.
    #[arg(long, default_value = "auto", value_name = "auto|on|off")]
    pub labels: String,

    /// With a label-style source: one copy per label folder (All Mail gives only the
    /// unlabelled messages) instead of one copy per message with other labels as keywords.
    #[arg(long)]
    pub labels_as_folders: bool,

    /// With a label-style source: the target folder for mail archived without a label.
    #[arg(long, default_value = "Archive", value_name = "FOLDER")]
    pub archive_folder: String,

    /// Folders copied at once (each over its own pair of connections).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub connections: usize,

    /// Longest wait for any one network step, in seconds (also: a write that makes no
    /// progress this long means the link is dead). Given twice, the last one counts.
    #[arg(
        long,
        default_value_t = 120,
        value_name = "SECONDS",
        overrides_with = "timeout"
    )]
    pub timeout: u64,

    /// How long one command may keep being refused for now (throttled, server busy)
    /// before the run pauses, in seconds; each refusal is waited out meanwhile.
    #[arg(long, default_value_t = crate::engine::retry::wait::DEFAULT_PATIENCE.as_secs(), value_name = "SECONDS")]
    pub patience: u64,

    /// A run that makes no progress this long (no message copied, no folder finished,
    /// outside waits a server or a pacing cap asked for) is stopped and started again;
    /// after three such stalls in a row it ends. In seconds; 0: never.
    #[arg(long, default_value_t = crate::engine::DEFAULT_STALL_TIMEOUT.as_secs(), value_name = "SECONDS")]
    pub stall_timeout: u64,

    /// Message bytes in flight (fetched, not yet appended) at once, all folders
    /// together, in MiB. A larger message is still copied, alone.
    #[arg(long, default_value_t = crate::engine::copy::budget::DEFAULT_BUDGET_BYTES >> 20, value_name = "MIB")]
    pub memory_budget_mb: u64,

    /// Largest message copied, in MiB; larger ones are skipped and reported.
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub max_message_mb: u64,

    /// Do not read back flags and sizes after each appended batch (faster, but blind to
    /// flags the target dropped and to messages it changed).
    #[arg(long)]
    pub no_read_back: bool,

    /// After the run, write the UID map to FILE (`.csv` or `.json`).
    #[arg(long, value_name = "FILE")]
    pub export_map: Option<PathBuf>,

    /// Print the result as JSON: the last line on stdout is one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "MAILFERRY_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Directory for the SQLite database and key files; created if missing [default: ./data].
    #[arg(long, env = "MAILFERRY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: `sqlite://PATH` or `postgres://...` [default: sqlite in the data directory].
    #[arg(long, env = "MAILFERRY_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Directory holding the built web app (Trunk's output) [default: ./dist].
    #[arg(long, env = "MAILFERRY_STATIC_DIR", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,

    /// File holding the key that seals stored passwords; every node sharing one database
    /// needs the same key [default: DATA_DIR/secret.key, created on first start].
    #[arg(long, env = "MAILFERRY_SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// This node's name in leases, job runs and /api/health [default: HOSTNAME-RANDOM].
    #[arg(long, env = "MAILFERRY_NODE_NAME", value_name = "NAME")]
    pub node_name: Option<String>,

    /// The address users open, e.g. `https://migrate.example.org`: state-changing requests
    /// must come from pages of this origin. Required unless listening on loopback.
    #[arg(long, env = "MAILFERRY_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Send the session cookie only over HTTPS (`Secure`, `__Host-` name) and send HSTS.
    /// Set to false only for plain-HTTP development on loopback [default: true].
    #[arg(long, env = "MAILFERRY_SECURE_COOKIES", value_name = "true|false")]
    pub secure_cookies: Option<bool>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics, apart from the portal
    /// (e.g. 127.0.0.1:9464) [default: off].
    #[arg(long, env = "MAILFERRY_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}
