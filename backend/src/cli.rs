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
    /// TOML config file with any of the `serve` settings (listen, data_dir, database_url, static_dir).
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
}
