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

    let mut cmd = pair.command(pair.source.imap_port(), pair.target.imap_port(), &[]);
    cmd.stdout(std::process::Stdio::null());
    let (took, peak_kb, status) = measure(cmd).await;
    assert!(status.success(), "mailferry failed: {status}");
    let diffs = compare(
        &source,
        &snapshot(&pair.target_account()).await.unwrap(),
        &FolderMap::identity(),
    );
    assert!(diffs.is_empty(), "mailferry copy differs: {}", diffs.len());
    let secs = took.as_secs_f64();
    println!(
        "mailferry: {count} messages, {mb:.1} MB in {secs:.1} s = {:.0} msg/s, {:.1} MB/s, peak {:.0} MB",
        count as f64 / secs,
        mb / secs,
        peak_kb as f64 / 1024.0
    );

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
        "mbsync:    {count} messages, {mb:.1} MB in {secs:.1} s = {:.0} msg/s, {:.1} MB/s, peak {:.0} MB (exit {status})",
        count as f64 / secs,
        mb / secs,
        peak_kb as f64 / 1024.0
    );
}
