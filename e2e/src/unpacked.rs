//! Servers unpacked from Debian packages (not installed): Cyrus and Courier conflict with
//! Dovecot as packages, so `scripts/install-test-deps.sh` unpacks them into a tools
//! directory, `/opt/mailferry-kit/root` unless `MAILFERRY_KIT_TOOLS` names another base.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// The root the packages were unpacked into (it holds `usr/...`).
pub fn tools_root() -> PathBuf {
    let base = std::env::var_os("MAILFERRY_KIT_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/mailferry-kit"));
    base.join("root")
}

/// A binary under the tools root; an error (never a skip) when it is missing.
pub fn tool(relative: &str) -> Result<PathBuf> {
    let path = tools_root().join(relative);
    if !path.is_file() {
        bail!(
            "{} is missing: run scripts/install-test-deps.sh (it unpacks Cyrus and Courier)",
            path.display()
        );
    }
    Ok(path)
}

/// `LD_LIBRARY_PATH` for the unpacked binaries (their own libraries live beside them).
pub fn library_path() -> String {
    let root = tools_root();
    [root.join("usr/lib"), root.join("usr/lib/x86_64-linux-gnu")]
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Waits until 127.0.0.1:`port` sends an `* OK` greeting, or the child exits.
pub fn wait_for_greeting(child: &mut Child, port: u16, what: &str) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited at start ({status})");
        }
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{what} did not greet on 127.0.0.1:{port} within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a process group: SIGTERM, a short wait, then SIGKILL for what is left.
pub fn stop_group(child: &mut Child, pgid: i32) {
    // SAFETY: signalling our own child's process group.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Makes `path` (and everything below) owned by the unprivileged `nobody` when we are root.
pub fn give_to_nobody(path: &Path) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let status = std::process::Command::new("chown")
        .arg("-R")
        .arg("65534:65534")
        .arg(path)
        .status()?;
    if !status.success() {
        bail!("chown -R nobody {}", path.display());
    }
    Ok(())
}
