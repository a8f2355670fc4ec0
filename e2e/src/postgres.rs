//! Private PostgreSQL servers for tests.
//!
//! Each [`PgServer`] owns a temporary directory with a fresh cluster (`initdb`), listens
//! only on a free 127.0.0.1 port, and requires a password over TCP (SCRAM), as a real
//! deployment would. It runs as an unprivileged user when the tests run as root
//! (PostgreSQL refuses root), and is stopped, its directory removed, on drop.
//!
//! [`suite_database`] says whether the suite runs against PostgreSQL instead of SQLite:
//! `MAILFERRY_TEST_DATABASE=postgres` (set by `scripts/test.sh` for its second pass).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::ports::free_port;

/// The cluster's superuser (who the portals connect as) and its password.
pub const PG_USER: &str = "mailferry";
const PG_PASSWORD: &str = "pg-test-secret";

/// Which database the integration tests put behind each portal and migrate command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteDatabase {
    Sqlite,
    Postgres,
}

/// `MAILFERRY_TEST_DATABASE` (`sqlite`, the default, or `postgres`).
pub fn suite_database() -> SuiteDatabase {
    match std::env::var("MAILFERRY_TEST_DATABASE").as_deref() {
        Ok("postgres") | Ok("postgresql") => SuiteDatabase::Postgres,
        Ok("sqlite") | Ok("") | Err(_) => SuiteDatabase::Sqlite,
        Ok(other) => panic!("MAILFERRY_TEST_DATABASE={other:?}: use sqlite or postgres"),
    }
}

/// How a private server is tuned.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgOptions {
    /// `fsync` and `synchronous_commit` as shipped (on). Tests turn them off for speed;
    /// benchmarks keep them on so the figures mean something.
    pub durable: bool,
}

#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
    running: bool,
}

/// The directory holding `initdb` and `pg_ctl`: the newest Debian install, else `PATH`.
fn bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .context("look for initdb")?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    match Path::new(&path).parent() {
        Some(dir) if found.status.success() => Ok(dir.to_owned()),
        _ => bail!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): \
             run scripts/install-test-deps.sh"
        ),
    }
}

/// PostgreSQL will not run as root: pick the `postgres` account (or `nobody`) then.
fn unprivileged_user() -> Option<(String, u32, u32)> {
    // SAFETY: geteuid/getpwnam are called with valid, NUL-terminated arguments and the
    // result is read at once.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        for name in ["postgres", "nobody"] {
            let c = std::ffi::CString::new(name).expect("no NUL");
            let pw = libc::getpwnam(c.as_ptr());
            if !pw.is_null() {
                return Some((name.to_owned(), (*pw).pw_uid, (*pw).pw_gid));
            }
        }
    }
    panic!("running as root, but neither a `postgres` nor a `nobody` account exists");
}

impl PgServer {
    /// Starts a fresh, fast (non-durable) cluster and waits until it accepts connections.
    /// Blocking, about two seconds.
    pub fn start() -> Result<PgServer> {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(options: PgOptions) -> Result<PgServer> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("mailferry-pg-").tempdir()?;
        let user = unprivileged_user();
        if let Some((_, uid, gid)) = &user {
            std::os::unix::fs::chown(dir.path(), Some(*uid), Some(*gid))
                .context("hand the cluster directory to the postgres user")?;
        }
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PG_PASSWORD)?;
        if let Some((_, uid, gid)) = &user {
            std::os::unix::fs::chown(&pwfile, Some(*uid), Some(*gid))?;
        }
        let mut server = PgServer {
            bin,
            run_as: user.map(|(name, _, _)| name),
            port: free_port(),
            running: false,
            dir,
        };
        let data = server.data_dir();
        let out = server.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                PG_USER,
                &format!("--pwfile={}", pwfile.display()),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = std::fs::remove_file(&pwfile);
        let mut settings = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c max_connections=300",
            server.port,
            server.dir.path().display()
        );
        if !options.durable {
            settings.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = server.log_path().display().to_string();
        let out = server.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &log,
                "-o",
                &settings,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        if !out.status.success() {
            bail!(
                "PostgreSQL did not start: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                server.log_text()
            );
        }
        // `pg_ctl -w` returned once the server accepts connections.
        server.running = true;
        Ok(server)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<Output> {
        let program = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", program.display()))
    }

    /// The URL of database `name` (which [`PgServer::create_database`] makes).
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// The password in every URL, for tests that check it is never shown.
    pub fn password(&self) -> &'static str {
        PG_PASSWORD
    }

    /// Runs one SQL statement as the superuser through `psql` (over the private socket).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let socket = self.dir.path().display().to_string();
        let port = self.port.to_string();
        let out = self.run(
            "psql",
            &[
                "-h",
                &socket,
                "-p",
                &port,
                "-U",
                PG_USER,
                "-d",
                database,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )?;
        if !out.status.success() {
            bail!("psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// Stops the server at once (the data directory goes with the value).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let data = self.data_dir().display().to_string();
        let stopped = self
            .run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .is_ok_and(|o| o.status.success());
        if !stopped {
            // Last resort: the postmaster's pid is the first line of postmaster.pid.
            if let Ok(text) = std::fs::read_to_string(self.data_dir().join("postmaster.pid")) {
                if let Some(pid) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                    // SAFETY: sending a signal to a pid has no memory-safety concerns.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL database for one portal or migrate command when the suite runs on
/// PostgreSQL: its own private server, so tests stay independent.
#[derive(Debug)]
pub struct SuitePostgres {
    pub server: PgServer,
    pub url: String,
}

impl SuitePostgres {
    /// `Some` when `MAILFERRY_TEST_DATABASE=postgres`.
    pub fn for_suite() -> Result<Option<SuitePostgres>> {
        if suite_database() != SuiteDatabase::Postgres {
            return Ok(None);
        }
        let server = PgServer::start()?;
        let url = server.create_database("mailferry")?;
        Ok(Some(SuitePostgres { server, url }))
    }
}

/// The URL of a migrate command's UID map: `postgres`'s database when the suite runs on
/// PostgreSQL, else the SQLite file `map.db` in `dir`.
pub fn map_url(postgres: Option<&SuitePostgres>, dir: &Path) -> String {
    match postgres {
        Some(pg) => pg.url.clone(),
        None => format!("sqlite://{}?mode=rwc", dir.join("map.db").display()),
    }
}
