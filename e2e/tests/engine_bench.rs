//! Throughput of `mailferry migrate` against mbsync (Debian `isync`) and Dovecot's own
//! `doveadm backup` (dsync, with `imapc` as the source, into a local maildir: the
//! practical floor) on the same seeded 10,000-message mailbox between two local Dovecots.
//! Each tool does a full copy, a re-run with nothing changed, and a re-run after flags
//! changed on 100 source messages; each run's time and peak memory are printed. Slow and
//! machine-dependent, so ignored by default:
//!
//! `cargo build --release -p mailferry && MAILFERRY_BIN=target/release/mailferry \
//!  cargo test --release -p mailferry-e2e --test engine_bench -- --ignored --nocapture`
//!
//! `BENCH_MESSAGES=N` seeds N messages instead; `MAILFERRY_BIN_BEFORE=PATH` adds an
//! earlier build's runs beside the current one's; `BENCH_LOG=FILTER` is mailferry's log
//! filter (e.g. `debug`), on standard error.

mod engine_common;

use engine_common::*;
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::memory::run_measured;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use std::time::Duration;

/// One tool's run: what it is called and the command that runs it.
struct Tool {
    label: String,
    /// Mailferry's target account (its copy is compared with the source after each run).
    user: Option<String>,
    command: Box<dyn Fn() -> tokio::process::Command>,
}

fn print_run(label: &str, phase: &str, count: usize, mb: f64, took: Duration, peak_kb: u64) {
    let secs = took.as_secs_f64();
    println!(
        "{phase:<16} {label:<19} {secs:>7.2} s  {:>7.0} msg/s  {:>6.1} MB/s  peak {:>5.0} MB",
        count as f64 / secs,
        mb / secs,
        peak_kb as f64 / 1024.0
    );
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
    let bytes: u64 = seeded.folders.iter().map(|f| f.bytes).sum();
    let mb = bytes as f64 / 1e6;
    println!(
        "{count} messages, {mb:.1} MB in {} folders",
        seeded.folders.len()
    );

    let mut tools: Vec<Tool> = Vec::new();
    let current = mailferry_e2e::portal::mailferry_bin();
    if let Some(before) = std::env::var_os("MAILFERRY_BIN_BEFORE").map(std::path::PathBuf::from) {
        // An earlier build keeps its own database: it may not know the newer migrations.
        let db = format!(
            "sqlite://{}?mode=rwc",
            pair.dir.path().join("before.db").display()
        );
        tools.push(mailferry_tool(
            &pair,
            "mailferry (before)",
            before,
            "before",
            db,
            None,
        ));
    }
    tools.push(mailferry_tool(
        &pair,
        "mailferry",
        current.clone(),
        "plain",
        pair.db_url(),
        None,
    ));
    let paced = paced_config(&pair);
    tools.push(mailferry_tool(
        &pair,
        "mailferry, paced",
        current,
        "paced",
        pair.db_url(),
        Some(paced),
    ));
    tools.push(mbsync_tool(&pair));
    tools.push(dsync_tool(&pair));

    let phases = ["full copy", "no-change re-run", "flags re-run"];
    for phase in phases {
        if phase == "flags re-run" {
            let changed = change_flags(&pair, &seeded, 100).await;
            println!("flags changed on {changed} source messages");
        }
        let source = snapshot(&pair.source_account()).await.unwrap();
        for tool in &tools {
            let (took, peak_kb, status) = run_measured((tool.command)()).await;
            assert!(
                status.success(),
                "{} ({phase}) failed: {status}",
                tool.label
            );
            print_run(&tool.label, phase, count, mb, took, peak_kb);
            if let Some(user) = &tool.user {
                let copy = snapshot(&pair.target.account(user, TARGET_PASSWORD))
                    .await
                    .unwrap();
                let diffs = compare(&source, &copy, &FolderMap::identity());
                assert!(
                    diffs.is_empty(),
                    "{} ({phase}): the copy differs: {} ({:?})",
                    tool.label,
                    diffs.len(),
                    diffs.iter().take(3).collect::<Vec<_>>()
                );
            }
        }
    }
    let carol = pair.target.account("carol", "mbsync-secret");
    let mbsync_copied: usize = snapshot(&carol)
        .await
        .unwrap()
        .folders
        .values()
        .map(|f| f.messages.len())
        .sum();
    println!("mbsync holds {mbsync_copied} of {count} messages");
}

/// `mailferry migrate` into its own target account (one job: its re-runs are re-runs).
fn mailferry_tool(
    pair: &Pair,
    label: &str,
    bin: std::path::PathBuf,
    user: &str,
    db: String,
    paced: Option<std::path::PathBuf>,
) -> Tool {
    pair.target.add_user(user, TARGET_PASSWORD).unwrap();
    let source_port = pair.source.imap_port();
    let target_port = pair.target.imap_port();
    let owned_user = user.to_owned();
    let command = move || {
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.arg("migrate").arg("--db").arg(&db);
        if let Some(config) = &paced {
            cmd.arg("--config")
                .arg(config)
                .args(["--from-profile", "old", "--from", SOURCE_USER])
                .args(["--to-profile", "new", "--to", &owned_user]);
        } else {
            cmd.arg("--from")
                .arg(format!("imap://{SOURCE_USER}@127.0.0.1:{source_port}"))
                .arg("--to")
                .arg(format!("imap://{owned_user}@127.0.0.1:{target_port}"))
                .arg("--allow-plaintext");
        }
        cmd.env("MAILFERRY_FROM_PASSWORD", SOURCE_PASSWORD)
            .env("MAILFERRY_TO_PASSWORD", TARGET_PASSWORD)
            // BENCH_LOG=debug (a log filter) shows what each run spends its time on.
            .env(
                "MAILFERRY_LOG",
                std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("MAILFERRY_DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        cmd
    };
    Tool {
        label: label.to_owned(),
        user: Some(user.to_owned()),
        command: Box::new(command),
    }
}

/// mbsync pulling every folder into the target account `carol`, with its own sync state.
fn mbsync_tool(pair: &Pair) -> Tool {
    let config = mbsync_config(pair);
    Tool {
        label: "mbsync".into(),
        user: None,
        command: Box::new(move || {
            let mut cmd = tokio::process::Command::new("mbsync");
            cmd.arg("-c").arg(&config).arg("-q").arg("copy");
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            cmd
        }),
    }
}

/// Dovecot's dsync importing the source over IMAP (`imapc`) into a local maildir
/// (`doveadm backup -R`): no second IMAP server, no APPENDs; the practical floor.
fn dsync_tool(pair: &Pair) -> Tool {
    use std::os::unix::fs::PermissionsExt;
    let root = pair.dir.path().join("dsync");
    for sub in ["run", "home"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    for dir in [&root, &root.join("home")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    // No userdb lookup (that needs Dovecot's auth service): doveadm runs as this process,
    // for the user named by USER, at HOME.
    // Dovecot gives root no mail access: as root, it acts as nobody.
    let (uid, gid) = match unsafe { libc::geteuid() } {
        0 => (65534, 65534),
        uid => (uid, unsafe { libc::getegid() }),
    };
    let home_c = std::ffi::CString::new(root.join("home").display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path; the result is checked.
    assert_eq!(
        unsafe { libc::chown(home_c.as_ptr(), uid, gid) },
        0,
        "chown dsync home"
    );
    let r = root.display();
    let config = root.join("doveadm.conf");
    std::fs::write(
        &config,
        format!(
            "base_dir = {r}/run\nstate_dir = {r}/run\nlog_path = {r}/doveadm.log\n\
             mail_fsync = never\nmail_location = maildir:~/Maildir\n\
             first_valid_uid = {uid}\nfirst_valid_gid = {gid}\nmail_uid = {uid}\nmail_gid = {gid}\n\
             namespace inbox {{\n  inbox = yes\n  separator = .\n}}\n\
             imapc_host = 127.0.0.1\nimapc_port = {}\nimapc_user = {SOURCE_USER}\n\
             imapc_password = {SOURCE_PASSWORD}\nimapc_features = rfc822.size fetch-headers modseq\n\
             ssl = no\n",
            pair.source.imap_port()
        ),
    )
    .unwrap();
    let home = root.join("home");
    Tool {
        label: "dsync (imapc)".into(),
        user: None,
        command: Box::new(move || {
            let mut cmd = tokio::process::Command::new("doveadm");
            cmd.arg("-c")
                .arg(&config)
                .args(["backup", "-R", "imapc:"])
                .env("USER", "bench")
                .env("HOME", &home);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .stdin(std::process::Stdio::null());
            cmd
        }),
    }
}

/// Adds \Flagged to about `n` source messages spread over the folders (the first ones of
/// each, in proportion to its size). Returns how many were changed.
async fn change_flags(pair: &Pair, seeded: &mailferry_e2e::seed::SeedReport, n: usize) -> usize {
    let total = seeded.total_messages().max(1);
    let mut changed = 0;
    let mut conn = mailferry_e2e::imap_client::connect(&pair.source_account())
        .await
        .unwrap();
    for f in &seeded.folders {
        let here = (f.messages * n).div_ceil(total).min(f.messages);
        if here == 0 || changed >= n {
            continue;
        }
        let here = here.min(n - changed);
        conn.select(&f.server_name).await.unwrap();
        conn.command_ok(&format!("STORE 1:{here} +FLAGS (\\Flagged)"))
            .await
            .unwrap();
        changed += here;
    }
    conn.logout().await;
    changed
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
