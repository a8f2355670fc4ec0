//! Shared by the engine tests: two private Dovecots, the `mailferry migrate` binary run
//! against them (optionally through the fault proxy), and snapshots of both accounts.
#![allow(dead_code)]

use anyhow::{Context, Result};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::imap_client::{connect, Account, AppendItem};
use mailferry_e2e::portal::mailferry_bin;
use mailferry_e2e::proxy::{FaultProxy, Faults};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

pub const SOURCE_USER: &str = "alice";
pub const SOURCE_PASSWORD: &str = "source-secret";
pub const TARGET_USER: &str = "bob";
pub const TARGET_PASSWORD: &str = "target-secret";

pub struct Pair {
    pub source: Dovecot,
    pub target: Dovecot,
    pub dir: tempfile::TempDir,
    /// The UID map's private PostgreSQL when the suite runs on PostgreSQL.
    pub postgres: Option<mailferry_e2e::postgres::SuitePostgres>,
}

impl Pair {
    pub fn start(source: DovecotOptions, target: DovecotOptions) -> Result<Pair> {
        let s = Dovecot::start(source)?;
        s.add_user(SOURCE_USER, SOURCE_PASSWORD)?;
        let t = Dovecot::start(target)?;
        t.add_user(TARGET_USER, TARGET_PASSWORD)?;
        Ok(Pair {
            source: s,
            target: t,
            dir: tempfile::tempdir()?,
            postgres: mailferry_e2e::postgres::SuitePostgres::for_suite()?,
        })
    }

    pub fn source_account(&self) -> Account {
        self.source.account(SOURCE_USER, SOURCE_PASSWORD)
    }

    pub fn target_account(&self) -> Account {
        self.target.account(TARGET_USER, TARGET_PASSWORD)
    }

    pub fn db_url(&self) -> String {
        mailferry_e2e::postgres::map_url(self.postgres.as_ref(), self.dir.path())
    }

    /// The migrate command against these servers (ports may be proxies in front of them).
    pub fn command(
        &self,
        source_port: u16,
        target_port: u16,
        extra: &[&str],
    ) -> tokio::process::Command {
        migrate_command(
            (SOURCE_USER, SOURCE_PASSWORD, source_port),
            (TARGET_USER, TARGET_PASSWORD, target_port),
            &self.db_url(),
            extra,
        )
    }

    /// Runs a migration to its end; returns the exit code and the final JSON object.
    pub async fn migrate(&self, source_port: u16, target_port: u16, extra: &[&str]) -> Result<Run> {
        run_to_end(self.command(source_port, target_port, extra)).await
    }

    pub async fn migrate_direct(&self, extra: &[&str]) -> Result<Run> {
        self.migrate(self.source.imap_port(), self.target.imap_port(), extra)
            .await
    }

    /// A migration from `source_port` (e.g. a proxy in front of the source) to the target.
    pub async fn migrate_from(&self, source_port: u16, extra: &[&str]) -> Result<Run> {
        self.migrate(source_port, self.target.imap_port(), extra)
            .await
    }

    /// A migration from the source to `target_port` (e.g. a proxy in front of the target).
    pub async fn migrate_to(&self, target_port: u16, extra: &[&str]) -> Result<Run> {
        self.migrate(self.source.imap_port(), target_port, extra)
            .await
    }

    /// A fault proxy with `faults` in front of one side's IMAP port.
    pub async fn proxy(&self, side: Side, faults: Faults) -> Result<FaultProxy> {
        let upstream = match side {
            Side::Source => self.source.imap_port(),
            Side::Target => self.target.imap_port(),
        };
        FaultProxy::start(upstream, faults).await
    }

    /// A migration with `proxy` in front of `side` and the other side direct.
    pub async fn migrate_through(
        &self,
        side: Side,
        proxy: &FaultProxy,
        extra: &[&str],
    ) -> Result<Run> {
        match side {
            Side::Source => self.migrate_from(proxy.port(), extra).await,
            Side::Target => self.migrate_to(proxy.port(), extra).await,
        }
    }

    /// Runs a migration with a fault proxy with `faults` in front of `side` (`extra`:
    /// arguments); returns the proxy (its stats) and the run.
    pub async fn copy_through(
        &self,
        side: Side,
        faults: Faults,
        extra: &[&str],
    ) -> Result<(FaultProxy, Run)> {
        let proxy = self.proxy(side, faults).await?;
        let run = self.migrate_through(side, &proxy, extra).await?;
        Ok((proxy, run))
    }

    /// Asserts the source is still `before` and the target holds exactly its messages.
    pub async fn assert_exact_copy(&self, before: &BTreeMap<String, Vec<Seen>>) {
        let source = snapshot(&self.source_account()).await.unwrap();
        assert_eq!(&source, before, "source unchanged");
        assert_same(&source, &snapshot(&self.target_account()).await.unwrap());
    }

    /// Asserts the source is still `before` and the target holds exactly its messages but
    /// those `run` reports skipped (and nothing else: no duplicates).
    pub async fn assert_exact_copy_but_skipped(
        &self,
        before: &BTreeMap<String, Vec<Seen>>,
        run: &Run,
    ) {
        let source = snapshot(&self.source_account()).await.unwrap();
        assert_eq!(&source, before, "source unchanged");
        assert_same_except(
            &source,
            &snapshot(&self.target_account()).await.unwrap(),
            &skipped_by_folder(run),
        );
    }
}

/// The migrate command from `source` to `target`, each (user, password, port) on a plain
/// 127.0.0.1 port, with the UID map at `db` and JSON output (`extra`: more arguments).
pub fn migrate_command(
    source: (&str, &str, u16),
    target: (&str, &str, u16),
    db: &str,
    extra: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(mailferry_bin());
    cmd.arg("migrate")
        .arg("--from")
        .arg(format!("imap://{}@127.0.0.1:{}", source.0, source.2))
        .arg("--to")
        .arg(format!("imap://{}@127.0.0.1:{}", target.0, target.2))
        .arg("--allow-plaintext")
        .arg("--db")
        .arg(db)
        .arg("--timeout")
        .arg("15")
        .arg("--json")
        .args(extra)
        .env("MAILFERRY_FROM_PASSWORD", source.1)
        .env("MAILFERRY_TO_PASSWORD", target.1)
        .env("MAILFERRY_LOG", "warn")
        .env_remove("MAILFERRY_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs a migrate command to its end; returns the exit code and the final JSON object.
pub async fn run_to_end(mut cmd: tokio::process::Command) -> Result<Run> {
    let out = cmd.output().await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stdout.lines().last().unwrap_or("").to_owned();
    let json: serde_json::Value = serde_json::from_str(&last)
        .with_context(|| format!("last stdout line is not JSON: {last:?}\nstderr:\n{stderr}"))?;
    Ok(Run {
        code: out.status.code(),
        json,
        stderr,
    })
}

/// One end of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

/// Two default Dovecots, the source seeded with [`seed_small`]: the pair, how many
/// messages were seeded, and the source's snapshot.
pub async fn seeded_pair() -> (Pair, u64, BTreeMap<String, Vec<Seen>>) {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let seeded = seed_small(&pair.source_account(), '.').await.unwrap() as u64;
    let before = snapshot(&pair.source_account()).await.unwrap();
    (pair, seeded, before)
}

#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub json: serde_json::Value,
    pub stderr: String,
}

impl Run {
    pub fn count(&self, field: &str) -> u64 {
        self.json[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} missing in {}", self.json))
    }

    /// The counts `(copied, skipped, failed)`.
    pub fn copied_skipped_failed(&self) -> (u64, u64, u64) {
        (
            self.count("copied"),
            self.count("skipped"),
            self.count("failed"),
        )
    }
}

/// One message as a user would check it: content hash, flags (sorted, no \Recent), date.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub date: String,
    pub hash: String,
    pub flags: Vec<String>,
}

/// Every selectable folder of an account (names as the server lists them, separator
/// replaced by `/`), each with its messages sorted.
pub async fn snapshot(account: &Account) -> Result<BTreeMap<String, Vec<Seen>>> {
    let mut conn = connect(account).await?;
    let mut out = BTreeMap::new();
    for entry in conn.list().await? {
        if entry.has("\\Noselect") || entry.has("\\NonExistent") {
            continue;
        }
        conn.examine(&entry.name).await?;
        let mut msgs: Vec<Seen> = conn
            .fetch_all()
            .await?
            .into_iter()
            .map(|m| {
                let mut flags: Vec<String> = m
                    .flags
                    .into_iter()
                    .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                    .collect();
                flags.sort();
                Seen {
                    date: m.internal_date,
                    hash: hex::encode(Sha256::digest(&m.body)),
                    flags,
                }
            })
            .collect();
        msgs.sort();
        let name = match entry.delimiter {
            Some(d) => entry.name.replace(d, "/"),
            None => entry.name.clone(),
        };
        out.insert(name, msgs);
    }
    conn.logout().await;
    Ok(out)
}

/// A small mailbox with the traps a copy must survive: keywords, every system flag, old
/// dates, a folder tree with a non-ASCII name, no Message-ID, bare LF, 8-bit headers, an
/// exact duplicate, and a message larger than most batches.
pub async fn seed_small(account: &Account, separator: char) -> Result<usize> {
    seed_small_in(account, separator, "").await
}

/// The folders (with `prefix`) and messages (body, flags, INTERNALDATE) of [`seed_small`].
pub type SeedFolders = Vec<(String, Vec<(Vec<u8>, Vec<String>, String)>)>;

/// What [`seed_small`] appends, for seeding a server by other means (e.g. without LITERAL+).
pub fn small_seed(separator: char, prefix: &str) -> SeedFolders {
    let folders = [
        "INBOX".to_string(),
        format!("{prefix}Sent"),
        format!("{prefix}Projekte{separator}Entw&APw-rfe"),
        format!("{prefix}Archive"),
    ];
    folders
        .iter()
        .enumerate()
        .map(|(fi, folder)| (folder.clone(), seed_folder(fi, folder)))
        .collect()
}

fn seed_folder(fi: usize, folder: &str) -> Vec<(Vec<u8>, Vec<String>, String)> {
    let mut bodies: Vec<(Vec<u8>, Vec<String>, String)> = Vec::new();
    for i in 0..12u32 {
        let mut body = format!(
            "From: Sender {i} <s{i}@example.org>\r\nTo: alice@example.org\r\nSubject: message {i} in {folder}\r\nMessage-ID: <{fi}.{i}@example.org>\r\nDate: Mon, 1 Jan 2018 10:00:{:02} +0000\r\n\r\nBody {i} of {folder}.\r\n",
            i % 60
        )
        .into_bytes();
        if i == 3 {
            body = format!(
                "From: x@example.org\r\nSubject: [no-message-id] {folder}\r\n\r\nno id\r\n"
            )
            .into_bytes();
        }
        if i == 4 {
            body = b"From: y@example.org\nSubject: [bare-lf]\n\nline one\nline two\n".to_vec();
        }
        if i == 5 {
            body = b"From: z@example.org\r\nSubject: [8bit] Gr\xfc\xdfe\r\n\r\n\xe4\xf6\xfc\r\n"
                .to_vec();
        }
        if i == 6 {
            body = bodies[0].0.clone(); // exact duplicate
        }
        if i == 7 {
            let mut big =
                b"From: big@example.org\r\nSubject: [big]\r\nContent-Type: text/plain\r\n\r\n"
                    .to_vec();
            for n in 0..40_000 {
                big.extend_from_slice(
                    format!("line {n} of a long message, padded to be larger\r\n").as_bytes(),
                );
            }
            body = big;
        }
        let flags: Vec<String> = match i % 6 {
            0 => vec![],
            1 => vec!["\\Seen".into()],
            2 => vec!["\\Seen".into(), "\\Flagged".into(), "$Forwarded".into()],
            3 => vec!["\\Answered".into(), "Work".into()],
            4 => vec!["\\Draft".into()],
            _ => vec!["\\Seen".into(), "\\Deleted".into()],
        };
        let date = format!(
            "{:02}-Mar-20{:02} 0{}:1{}:00 +0{}00",
            1 + i,
            10 + fi,
            i % 10,
            i % 10,
            i % 5
        );
        bodies.push((body, flags, date));
    }
    bodies
}

/// [`seed_small`] on a server whose personal folders live under `prefix` (e.g. `INBOX.`
/// on Cyrus and Courier); INBOX itself has no prefix.
pub async fn seed_small_in(account: &Account, separator: char, prefix: &str) -> Result<usize> {
    let mut conn = connect(account).await?;
    let seed = small_seed(separator, prefix);
    for (f, _) in &seed[1..] {
        let _ = conn.create(f).await;
    }
    let _ = conn
        .command(&format!(
            "SUBSCRIBE \"{prefix}Projekte{separator}Entw&APw-rfe\""
        ))
        .await;
    let mut count = 0;
    for (folder, bodies) in &seed {
        let items: Vec<AppendItem<'_>> = bodies
            .iter()
            .map(|(b, f, d)| AppendItem {
                mailbox: folder,
                flags: f,
                internal_date: Some(d),
                bytes: b,
            })
            .collect();
        for r in conn.append_pipelined(&items).await? {
            r.map_err(|e| anyhow::anyhow!("seed APPEND refused: {e}"))?;
        }
        count += items.len();
    }
    conn.logout().await;
    Ok(count)
}

/// Appends one message to a folder of an account.
pub async fn append_one(
    account: &Account,
    folder: &str,
    body: &[u8],
    flags: &[String],
) -> Result<()> {
    let mut conn = connect(account).await?;
    let items = [AppendItem {
        mailbox: folder,
        flags,
        internal_date: Some("15-Jun-2021 12:00:00 +0200"),
        bytes: body,
    }];
    for r in conn.append_pipelined(&items).await? {
        r.map_err(|e| anyhow::anyhow!("APPEND refused: {e}"))?;
    }
    conn.logout().await;
    Ok(())
}

/// Runs a command on a folder (e.g. a flag change), read-write.
pub async fn on_folder(account: &Account, folder: &str, command: &str) -> Result<()> {
    let mut conn = connect(account).await?;
    conn.select(folder).await?;
    conn.command_ok(command).await?;
    conn.logout().await;
    Ok(())
}

/// Asserts the target holds exactly the source's messages, folder by folder.
pub fn assert_same(source: &BTreeMap<String, Vec<Seen>>, target: &BTreeMap<String, Vec<Seen>>) {
    for (folder, msgs) in source {
        let got = target
            .get(folder)
            .unwrap_or_else(|| panic!("target lacks folder {folder}; has {:?}", target.keys()));
        assert_eq!(got.len(), msgs.len(), "message count in {folder}");
        assert_eq!(got, msgs, "messages (bytes, flags, dates) in {folder}");
    }
}

pub fn scratch_file(pair: &Pair, name: &str) -> PathBuf {
    pair.dir.path().join(name)
}

/// Asserts the target holds every source message except `skipped` per folder, and
/// nothing else (no duplicates).
pub fn assert_same_except(
    source: &BTreeMap<String, Vec<Seen>>,
    target: &BTreeMap<String, Vec<Seen>>,
    skipped: &BTreeMap<String, usize>,
) {
    for (folder, msgs) in source {
        let got = target
            .get(folder)
            .unwrap_or_else(|| panic!("target lacks folder {folder}"));
        let missing = skipped.get(folder).copied().unwrap_or(0);
        assert_eq!(
            got.len() + missing,
            msgs.len(),
            "message count in {folder} (skipped: {skipped:?})"
        );
        let mut pool = msgs.clone();
        for m in got {
            let at = pool.iter().position(|s| s == m).unwrap_or_else(|| {
                panic!("target message in {folder} not on the source (or a duplicate): {m:?}")
            });
            pool.remove(at);
        }
    }
}

/// Skipped messages per folder, from the JSON result.
pub fn skipped_by_folder(run: &Run) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in run.json["skipped_messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let folder = s["folder"].as_str().unwrap_or("");
        *out.entry(mailferry_e2e::imap_client::encode_mutf7(folder))
            .or_insert(0) += 1;
    }
    out
}

/// An mbsync config pulling every folder of the source account into the target account
/// `carol` (password `mbsync-secret`), with its own sync state: the peer the benchmarks
/// measure beside Mailferry.
pub fn mbsync_config(pair: &Pair) -> std::path::PathBuf {
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
    config
}
