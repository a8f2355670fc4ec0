//! Starts the real `mailferry` binary as a portal on a free loopback port with a fresh
//! database, as a user would run it, and stops it on drop.

use crate::ports::free_port;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A portal config with one route, `default`, from `source` to `target` (both over IMAPS,
/// trusting each test server's own CA), plus any `extra` TOML lines.
pub fn route_config(
    source: &crate::dovecot::Dovecot,
    target: &crate::dovecot::Dovecot,
    extra: &str,
) -> String {
    format!(
        "workers = 4\n{extra}\n\
         [servers.old]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n\
         [servers.new]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n\
         [routes.default]\nsource = \"old\"\ntarget = \"new\"\nlabel = \"Old server to new server\"\n",
        source.imaps_port(),
        source.ca_pem_path().display(),
        target.imaps_port(),
        target.ca_pem_path().display(),
    )
}

/// Writes `config` to a file that outlives restarts of the portal; returns its path.
fn config_file(config: &str) -> anyhow::Result<String> {
    let file = tempfile::Builder::new()
        .prefix("mailferry-config-")
        .suffix(".toml")
        .tempfile()?;
    std::fs::write(file.path(), config)?;
    let (_, path) = file.keep()?;
    Ok(path.display().to_string())
}

/// The repository's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e lives inside the workspace")
        .to_owned()
}

/// The `mailferry` binary built beside this test binary (`target/<profile>/mailferry`),
/// or `MAILFERRY_BIN` when set. Tests need `cargo build -p mailferry` first;
/// `scripts/test.sh` does that.
pub fn mailferry_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MAILFERRY_BIN") {
        return PathBuf::from(bin);
    }
    // The test binary lives in target/<profile>/deps/; the server in target/<profile>/.
    let exe = std::env::current_exe().expect("path of the running test");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside target/<profile>/deps");
    let bin = profile_dir.join("mailferry");
    assert!(
        bin.is_file(),
        "{} does not exist: run `cargo build -p mailferry` before the tests (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// The built web app (`dist/`), or `MAILFERRY_STATIC_DIR` when set.
pub fn static_dir() -> PathBuf {
    std::env::var_os("MAILFERRY_STATIC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("dist"))
}

/// A running portal. Its data directory (SQLite database, logs) lives as long as it does.
pub struct Portal {
    child: Option<Child>,
    port: u16,
    data_dir: tempfile::TempDir,
    extra_env: Vec<(String, String)>,
    /// The private PostgreSQL behind this portal when the suite runs on PostgreSQL
    /// (dropped after the portal is stopped).
    postgres: Option<crate::postgres::SuitePostgres>,
}

impl Portal {
    /// Starts a portal with a fresh SQLite database and waits until `/api/health` answers.
    pub async fn start() -> anyhow::Result<Portal> {
        Self::start_with_env(Vec::new()).await
    }

    /// A portal whose config file is `config` (TOML: servers, routes, workers...).
    pub async fn start_with_config(config: &str) -> anyhow::Result<Portal> {
        Self::start_with_config_and_env(config, Vec::new()).await
    }

    /// A portal with a config file and extra environment variables: e.g. one node of
    /// several sharing `MAILFERRY_DATABASE_URL`, named by `MAILFERRY_NODE_NAME`.
    pub async fn start_with_config_and_env(
        config: &str,
        mut env: Vec<(String, String)>,
    ) -> anyhow::Result<Portal> {
        env.push(("MAILFERRY_CONFIG".into(), config_file(config)?));
        Self::start_with_env(env).await
    }

    /// One node of a cluster: a portal with `config` on the shared database `db_url`,
    /// named `name`, its secret key in `key_dir` (the nodes share it).
    pub async fn start_node(
        config: &str,
        db_url: &str,
        key_dir: &Path,
        name: &str,
    ) -> anyhow::Result<Portal> {
        let env = vec![
            ("MAILFERRY_DATABASE_URL".into(), db_url.to_owned()),
            ("MAILFERRY_NODE_NAME".into(), name.into()),
            (
                "MAILFERRY_SECRET_KEY_FILE".into(),
                key_dir.join("secret.key").display().to_string(),
            ),
        ];
        Self::start_with_config_and_env(config, env).await
    }

    /// Runs `mailferry ARGS` against this portal's database (e.g. `staff add`), with
    /// `stdin` as standard input.
    pub fn command(&self, args: &[&str], stdin: &str) -> anyhow::Result<std::process::Output> {
        use std::io::Write;
        let mut child = Command::new(mailferry_bin())
            .args(args)
            .env("MAILFERRY_DATA_DIR", self.data_dir.path())
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    /// Creates a staff account through the command line, as an admin would.
    pub fn add_staff(&self, username: &str, password: &str, role: &str) -> anyhow::Result<()> {
        let out = self.command(
            &["staff", "add", username, "--role", role],
            &format!("{password}\n"),
        )?;
        if !out.status.success() {
            bail!(
                "mailferry staff add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// As [`Portal::start`], with extra environment variables (e.g. `MAILFERRY_DATABASE_URL`).
    /// Without a `MAILFERRY_DATABASE_URL` there, the database is SQLite in the data
    /// directory, or a private PostgreSQL when the suite runs on PostgreSQL.
    pub async fn start_with_env(extra_env: Vec<(String, String)>) -> anyhow::Result<Portal> {
        Self::start_on_port(free_port(), extra_env).await
    }

    /// A portal with `config` on a port chosen beforehand (an OAuth provider must know
    /// the portal's redirect URI, `http://127.0.0.1:PORT/api/oauth/callback`, before
    /// the portal starts and checks the provider).
    pub async fn start_with_config_on_port(config: &str, port: u16) -> anyhow::Result<Portal> {
        let env = vec![("MAILFERRY_CONFIG".into(), config_file(config)?)];
        Self::start_on_port(port, env).await
    }

    async fn start_on_port(
        port: u16,
        mut extra_env: Vec<(String, String)>,
    ) -> anyhow::Result<Portal> {
        let data_dir = tempfile::Builder::new()
            .prefix("mailferry-portal-")
            .tempdir()?;
        let mut postgres = None;
        if !extra_env.iter().any(|(k, _)| k == "MAILFERRY_DATABASE_URL") {
            postgres =
                tokio::task::spawn_blocking(crate::postgres::SuitePostgres::for_suite).await??;
            if let Some(pg) = &postgres {
                extra_env.push(("MAILFERRY_DATABASE_URL".into(), pg.url.clone()));
            }
        }
        let mut portal = Portal {
            child: None,
            port,
            data_dir,
            extra_env,
            postgres,
        };
        portal.launch().await?;
        Ok(portal)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut command = Command::new(mailferry_bin());
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--static-dir")
            .arg(static_dir())
            .env("MAILFERRY_LOG", "info,mailferry=debug")
            // Tests speak plain HTTP; `extra_env` may turn Secure cookies back on.
            .env("MAILFERRY_SECURE_COOKIES", "false")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        self.child = Some(command.spawn().context("start the mailferry binary")?);
        self.wait_healthy(Duration::from_secs(30)).await
    }

    async fn wait_healthy(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "the portal exited with {status} before answering; its log:\n{}",
                        self.log_text()
                    );
                }
            }
            if let Ok(response) = client.get(self.url("/api/health")).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > limit {
                bail!(
                    "the portal did not answer /api/health within {limit:?}; its log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The private PostgreSQL behind this portal, when the suite runs on PostgreSQL.
    pub fn postgres(&self) -> Option<&crate::postgres::PgServer> {
        self.postgres.as_ref().map(|p| &p.server)
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("portal.log")
    }

    /// Everything the portal has logged so far (stdout and stderr), across restarts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM, as a service manager stopping the node would, and waits up to
    /// `limit` for the process to exit: its exit status.
    pub fn terminate(&mut self, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let Some(mut child) = self.child.take() else {
            anyhow::bail!("the portal is not running");
        };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the portal did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again on the same port and database.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch().await
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.kill();
    }
}
