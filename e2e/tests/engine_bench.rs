//! Throughput of `mailferry migrate` against mbsync (Debian `isync`) on the same seeded
//! 10,000-message mailbox between two local Dovecots. Prints messages/s, MB/s and peak
//! memory of each. Slow and machine-dependent, so ignored by default:
//!
//! `cargo build --release -p mailferry && MAILFERRY_BIN=target/release/mailferry \
//!  cargo test --release -p mailferry-e2e --test engine_bench -- --ignored --nocapture`

mod engine_common;

use engine_common::*;
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::memory::peak_rss_kb;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use std::time::{Duration, Instant};

/// Runs a child to its end, sampling its peak resident memory (VmHWM) meanwhile.
async fn measure(mut cmd: tokio::process::Command) -> (Duration, u64, std::process::ExitStatus) {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id().unwrap_or(0);
    let mut peak_kb = 0u64;
    loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (start.elapsed(), peak_kb, status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes of work; run explicitly"]
async fn benchmark_ten_thousand_messages_against_mbsync() {
    let count: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    pair.target.add_user("carol", "mbsync-secret").unwrap();
    let seeded = seed_mailbox(&pair.source_account(), &SeedSpec::new(2026, count))
        .await
        .unwrap();
    let source = snapshot(&pair.source_account()).await.unwrap();
    let bytes: u64 = seeded.folders.iter().map(|f| f.bytes).sum();
    let mb = bytes as f64 / 1e6;

    // The same copy by each mailferry variant, each into its own target account: the
    // build under test with no caps (as a generic server), the same build with a server
    // profile whose caps are on but never reached (the pacing bookkeeping's cost), and
    // an earlier build when MAILFERRY_BIN_BEFORE names one (before/after in one run).
    let current = mailferry_e2e::portal::mailferry_bin();
    let before = std::env::var_os("MAILFERRY_BIN_BEFORE").map(std::path::PathBuf::from);
    let config = paced_config(&pair);
    // BENCH_ROUNDS repeats the variants in turn (the first run also warms the caches).
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut runs: Vec<(&str, std::path::PathBuf, String, bool)> = Vec::new();
    for round in 1..=rounds {
        if let Some(before) = &before {
            runs.push((
                "mailferry (before)",
                before.clone(),
                format!("before{round}"),
                false,
            ));
        }
        runs.push(("mailferry", current.clone(), format!("plain{round}"), false));
        runs.push((
            "mailferry, paced",
            current.clone(),
            format!("paced{round}"),
            true,
        ));
    }
    for (label, bin, user, paced) in runs {
        let user = user.as_str();
        pair.target.add_user(user, TARGET_PASSWORD).unwrap();
        let mut cmd = tokio::process::Command::new(bin);
        // An earlier build keeps its own database: it does not know the newer migrations.
        let db = if label.contains("before") {
            format!(
                "sqlite://{}?mode=rwc",
                pair.dir.path().join("before.db").display()
            )
        } else {
            pair.db_url()
        };
        cmd.arg("migrate").arg("--db").arg(db);
        if paced {
            cmd.arg("--config")
                .arg(&config)
                .args(["--from-profile", "old", "--from", SOURCE_USER])
                .args(["--to-profile", "new", "--to", user]);
        } else {
            cmd.arg("--from")
                .arg(format!(
                    "imap://{SOURCE_USER}@127.0.0.1:{}",
                    pair.source.imap_port()
                ))
                .arg("--to")
                .arg(format!(
                    "imap://{user}@127.0.0.1:{}",
                    pair.target.imap_port()
                ))
                .arg("--allow-plaintext");
        }
        cmd.env("MAILFERRY_FROM_PASSWORD", SOURCE_PASSWORD)
            .env("MAILFERRY_TO_PASSWORD", TARGET_PASSWORD)
            .env("MAILFERRY_LOG", "warn")
            .env_remove("MAILFERRY_DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let (took, peak_kb, status) = measure(cmd).await;
        assert!(status.success(), "{label} failed: {status}");
        let copy = snapshot(&pair.target.account(user, TARGET_PASSWORD))
            .await
            .unwrap();
        let diffs = compare(&source, &copy, &FolderMap::identity());
        assert!(
            diffs.is_empty(),
            "{label}: the copy differs: {}",
            diffs.len()
        );
        let secs = took.as_secs_f64();
        println!(
            "{label:<19} {count} messages, {mb:.1} MB in {secs:.1} s = {:.0} msg/s, {:.1} MB/s, peak {:.0} MB",
            count as f64 / secs,
            mb / secs,
            peak_kb as f64 / 1024.0
        );
    }

    let state = pair.dir.path().join("mbsync-state");
    std::fs::create_dir_all(&state).unwrap();
    let config = pair.dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount src\nHost 127.0.0.1\nPort {}\nUser {SOURCE_USER}\nPass {SOURCE_PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore src\nAccount src\n\n\
             IMAPAccount dst\nHost 127.0.0.1\nPort {}\nUser carol\nPass mbsync-secret\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore dst\nAccount dst\n\n\
             Channel copy\nFar :src:\nNear :dst:\nPatterns *\nCreate Near\nSync Pull\nExpunge None\nCopyArrivalDate yes\nSyncState {}/\n",
            pair.source.imap_port(),
            pair.target.imap_port(),
            state.display()
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new("mbsync");
    cmd.arg("-c").arg(&config).arg("-q").arg("copy");
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let (took, peak_kb, status) = measure(cmd).await;
    let carol = pair.target.account("carol", "mbsync-secret");
    let mbsync_copied: usize = snapshot(&carol)
        .await
        .unwrap()
        .folders
        .values()
        .map(|f| f.messages.len())
        .sum();
    println!("mbsync copied {mbsync_copied} of {count} messages");
    let secs = took.as_secs_f64();
    println!(
        "{:<19} {count} messages, {mb:.1} MB in {secs:.1} s = {:.0} msg/s, {:.1} MB/s, peak {:.0} MB (exit {status})",
        "mbsync",
        count as f64 / secs,
        mb / secs,
        peak_kb as f64 / 1024.0
    );
}

/// A config file naming both servers as profiles with pacing caps that are on but far
/// from reached: every fetch and APPEND goes through the bookkeeping.
fn paced_config(pair: &Pair) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let server = |name: &str, port: u16, caps: &str| {
        format!(
            "[servers.{name}]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\n\
             allow_plaintext = true\n[servers.{name}.pacing]\nconnections = 50\n\
             messages_per_hour = 100000000\n{caps}\n"
        )
    };
    let text = server(
        "old",
        pair.source.imap_port(),
        "download_mb_per_day = 100000000",
    ) + &server(
        "new",
        pair.target.imap_port(),
        "upload_mb_per_day = 100000000",
    );
    let path = pair.dir.path().join("paced.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
