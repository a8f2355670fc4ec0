//! Headless Chromium driven through ChromeDriver (Debian's `chromium` and
//! `chromium-driver`). The driver and every browser process are killed on drop,
//! also when the test panics.

use crate::portal::workspace_root;
use crate::ports::free_port;
use anyhow::{bail, Context};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A ChromeDriver process in its own process group, with a fresh browser profile.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: ChromeDriver and the Chromium processes it started.
        // SAFETY: killpg only sends a signal; the group id is our own child's pid.
        unsafe {
            libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Runs `test` with a fresh headless Chromium session. The session is closed and the
/// browser killed afterwards, whether `test` returned, failed or panicked.
pub async fn with_browser<T>(
    test: impl AsyncFnOnce(&Client) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let profile = tempfile::Builder::new()
        .prefix("mailferry-chromium-")
        .tempdir()?;
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| {
            format!("start {CHROMEDRIVER} (install chromium-driver: scripts/install-test-deps.sh)")
        })?;
    let driver = Driver {
        child,
        port,
        profile,
    };
    let client = connect(&driver).await?;
    let outcome = AssertUnwindSafe(test(&client)).catch_unwind().await;
    let _ = client.close().await;
    drop(driver);
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn connect(driver: &Driver) -> anyhow::Result<Client> {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([format!(
        "--user-data-dir={}",
        driver.profile.path().display()
    )])
    .collect::<Vec<_>>();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), "chrome".into());
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let started = Instant::now();
    loop {
        let attempt = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await;
        match attempt {
            Ok(client) => return Ok(client),
            Err(err) if started.elapsed() < Duration::from_secs(20) => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => bail!(
                "ChromeDriver on port {} did not start a session: {err}",
                driver.port
            ),
        }
    }
}

/// Waits (up to 20 s) for the element matching `css` and returns its visible text.
pub async fn text_of(client: &Client, css: &str) -> anyhow::Result<String> {
    let element = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("no element matches `{css}`"))?;
    Ok(element.text().await?)
}

/// Waits (up to 20 s) until the element matching `css` has text containing `needle`.
pub async fn wait_for_text(client: &Client, css: &str, needle: &str) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let text = text_of(client, css).await.unwrap_or_default();
        if text.contains(needle) {
            return Ok(text);
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("`{css}` never showed {needle:?}; last text: {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where screenshots go: `e2e/artifacts/` (or `MAILFERRY_ARTIFACTS`).
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("MAILFERRY_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("e2e").join("artifacts"))
}

/// Saves a PNG screenshot of the current page as `artifacts/NAME.png` and returns its path.
pub async fn screenshot(client: &Client, name: &str) -> anyhow::Result<PathBuf> {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, client.screenshot().await?)?;
    Ok(path)
}
