//! Memory of `mailferry migrate` (peak resident memory, VmHWM) for one large message
//! between two local Dovecots, beside its idle figure (a mailbox with nothing to copy) and
//! mbsync (Debian `isync`) copying the same message. Figures, not pass/fail (the copy is
//! still checked exact); ignored by default:
//!
//! `cargo build --release -p mailferry --bins && MAILFERRY_BIN=target/release/mailferry \
//!  cargo test --release -p mailferry-e2e --test engine_bench_memory -- --ignored --nocapture`
//!
//! `BENCH_LARGE_MB` sets the message's size (default 100); `MAILFERRY_BIN_BEFORE=PATH`
//! adds an earlier build's runs beside the current one's.

mod engine_common;

use engine_common::*;
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::imap_client::{connect, AppendItem};
use mailferry_e2e::memory::run_measured;
use std::path::PathBuf;

/// A text message of `size` bytes or a little more (CRLF lines).
fn large_message(size: usize) -> Vec<u8> {
    let mut out = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: large\r\n\
Message-ID: <large@example.org>\r\nDate: Tue, 15 Jun 2021 12:00:00 +0200\r\n\r\n"
        .to_vec();
    out.reserve(size + 100);
    let mut line = 0u64;
    while out.len() < size {
        out.extend_from_slice(
            format!("{line:010} the quick brown fox jumps over the lazy dog, again\r\n").as_bytes(),
        );
        line += 1;
    }
    out
}

/// `mailferry migrate` with `bin` from `from` (source) to `to` (a fresh target account).
fn migrate(bin: &PathBuf, pair: &Pair, from: &str, to: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("migrate")
        .arg("--db")
        .arg(format!(
            "sqlite://{}?mode=rwc",
            pair.dir.path().join(format!("{to}.db")).display()
        ))
        .arg("--from")
        .arg(format!(
            "imap://{from}@127.0.0.1:{}",
            pair.source.imap_port()
        ))
        .arg("--to")
        .arg(format!("imap://{to}@127.0.0.1:{}", pair.target.imap_port()))
        .arg("--allow-plaintext")
        .env("MAILFERRY_FROM_PASSWORD", SOURCE_PASSWORD)
        .env("MAILFERRY_TO_PASSWORD", TARGET_PASSWORD)
        .env("MAILFERRY_LOG", "warn")
        .env_remove("MAILFERRY_DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn benchmark_memory_of_one_large_message_against_mbsync() {
    let size_mb: usize = std::env::var("BENCH_LARGE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    pair.source.add_user("empty", SOURCE_PASSWORD).unwrap();
    {
        let body = large_message(size_mb * 1_000_000);
        let mut conn = connect(&pair.source_account()).await.unwrap();
        let flags = vec!["\\Seen".to_owned()];
        let items = [AppendItem {
            mailbox: "INBOX",
            flags: &flags,
            internal_date: Some("15-Jun-2021 12:00:00 +0200"),
            bytes: &body,
        }];
        for r in conn.append_pipelined(&items).await.unwrap() {
            r.unwrap();
        }
        conn.logout().await;
    }
    let source = snapshot(&pair.source_account()).await.unwrap();
    let bytes: u64 = source
        .folders
        .values()
        .flat_map(|f| f.messages.iter())
        .map(|m| m.size as u64)
        .sum();
    let mb = bytes as f64 / (1 << 20) as f64;
    println!("one message of {bytes} bytes ({mb:.1} MiB)");

    let mut bins = Vec::new();
    if let Some(before) = std::env::var_os("MAILFERRY_BIN_BEFORE") {
        bins.push(("mailferry (before)", PathBuf::from(before)));
    }
    bins.push(("mailferry", mailferry_e2e::portal::mailferry_bin()));
    for (n, (label, bin)) in bins.iter().enumerate() {
        let idle_user = format!("idle{n}");
        let copy_user = format!("copy{n}");
        pair.target.add_user(&idle_user, TARGET_PASSWORD).unwrap();
        pair.target.add_user(&copy_user, TARGET_PASSWORD).unwrap();
        let (_, idle_kb, status) = run_measured(migrate(bin, &pair, "empty", &idle_user)).await;
        assert!(status.success(), "{label} (idle) failed: {status}");
        let (took, peak_kb, status) =
            run_measured(migrate(bin, &pair, SOURCE_USER, &copy_user)).await;
        assert!(status.success(), "{label} failed: {status}");
        let copy = snapshot(&pair.target.account(&copy_user, TARGET_PASSWORD))
            .await
            .unwrap();
        let diffs = compare(&source, &copy, &FolderMap::identity());
        assert!(diffs.is_empty(), "{label}: the copy differs: {diffs:?}");
        let above = peak_kb.saturating_sub(idle_kb) as f64 / 1024.0;
        println!(
            "{label:<19} idle peak {:.1} MiB; copying it: peak {:.1} MiB = idle + {above:.1} MiB ({:.2}x the message) in {:.1} s",
            idle_kb as f64 / 1024.0,
            peak_kb as f64 / 1024.0,
            above / mb,
            took.as_secs_f64()
        );
    }

    pair.target.add_user("carol", "mbsync-secret").unwrap();
    let config = mbsync_config(&pair);
    let mut cmd = tokio::process::Command::new("mbsync");
    cmd.arg("-c").arg(&config).arg("-q").arg("copy");
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let (took, peak_kb, status) = run_measured(cmd).await;
    let copied: usize = snapshot(&pair.target.account("carol", "mbsync-secret"))
        .await
        .unwrap()
        .folders
        .values()
        .map(|f| f.messages.len())
        .sum();
    println!(
        "{:<19} copied {copied} message(s): peak {:.1} MiB ({:.2}x the message) in {:.1} s (exit {status})",
        "mbsync",
        peak_kb as f64 / 1024.0,
        peak_kb as f64 / 1024.0 / mb,
        took.as_secs_f64()
    );
}
