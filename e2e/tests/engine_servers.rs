//! `mailferry migrate` between server families: Dovecot ↔ Cyrus and Dovecot ↔ Courier, each
//! a private instance on loopback (e2e/src/cyrus.rs, courier.rs). An exact copy, then a
//! re-run that copies nothing; and a first copy plus a delta (new messages, flag changes)
//! through a proxy in front of the Cyrus or Courier side that loses replies. What a server cannot store as sent is written down here per
//! family and checked, never hidden: a difference not listed fails the test, and so does a
//! listed one that no longer happens.
//!
//! What the families did in these runs (Cyrus 3.6.1, Courier-IMAP 5.0.13, Dovecot 2.3.19):
//! - Dovecot: NAMESPACE `(("" "."))`; LITERAL+, MULTIAPPEND; serves a bare-LF message with
//!   CRLF (so a Dovecot source never hands a bare LF on); `01-Mar-2010` dates.
//! - Cyrus: NAMESPACE `(("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))`;
//!   LITERAL+, MULTIAPPEND, APPENDLIMIT; refuses a bare-LF APPEND ("NO Message contains bare
//!   newlines", synchronising or not); replaces raw 8-bit header bytes with `X` (munge8bit;
//!   the body's 8-bit bytes stay); makes the parent of `Projekte/Entwürfe` a real, empty
//!   mailbox; writes a one-digit day with a leading space (` 1-Mar-2010`). Keywords kept.
//! - Courier: NAMESPACE `(("INBOX." ".")) NIL (("#shared." ".")("shared." "."))`; no
//!   LITERAL+, no MULTIAPPEND; keywords kept (IMAP_KEYWORDS=1, PERMANENTFLAGS `\*`); the
//!   seed (bare LF included) comes back exact, but a lone CR or a missing final newline
//!   does not. Appended messages enter the session's view only after a NOOP.
//!
//! The engine reads back what a target holds after APPEND and lists each message it
//! changed in `altered` (still copied, not sent again).
//!
//! No skipping: when Cyrus or Courier is not unpacked, these tests fail (run
//! scripts/install-test-deps.sh).

mod engine_common;

use std::collections::BTreeMap;

use anyhow::Result;
use engine_common::{migrate_command, run_to_end, small_seed, snapshot, Run, Seen};
use mailferry_e2e::compare::parse_internal_date;
use mailferry_e2e::courier::Courier;
use mailferry_e2e::cyrus::Cyrus;
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::imap_client::{connect, Account, AppendItem};
use mailferry_e2e::proxy::{FaultProxy, Faults};

const USER: &str = "carol";
const PASSWORD: &str = "carol-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Dovecot,
    Cyrus,
    Courier,
}

enum Server {
    Dovecot(Box<Dovecot>),
    Cyrus(Cyrus),
    Courier(Courier),
}

impl Server {
    fn start(family: Family) -> Result<Server> {
        Ok(match family {
            Family::Dovecot => {
                let d = Dovecot::start(DovecotOptions::default())?;
                d.add_user(USER, PASSWORD)?;
                Server::Dovecot(Box::new(d))
            }
            Family::Cyrus => {
                let c = Cyrus::start()?;
                c.add_user(USER, PASSWORD)?;
                Server::Cyrus(c)
            }
            Family::Courier => Server::Courier(Courier::start(&[(USER, PASSWORD)])?),
        })
    }

    fn account(&self) -> Account {
        match self {
            Server::Dovecot(s) => s.account(USER, PASSWORD),
            Server::Cyrus(s) => s.account(USER, PASSWORD),
            Server::Courier(s) => s.account(USER, PASSWORD),
        }
    }

    fn port(&self) -> u16 {
        self.account().port
    }

    /// Where personal folders live (NAMESPACE's personal prefix).
    fn prefix(&self) -> &'static str {
        match self {
            Server::Dovecot(_) | Server::Cyrus(_) => "",
            Server::Courier(_) => "INBOX.",
        }
    }

    /// The personal namespace's hierarchy separator (Cyrus 3.6 defaults to
    /// `unixhierarchysep: on` and `altnamespace: on`: `/`, folders beside INBOX).
    fn separator(&self) -> char {
        match self {
            Server::Cyrus(_) => '/',
            Server::Dovecot(_) | Server::Courier(_) => '.',
        }
    }

    fn family(&self) -> Family {
        match self {
            Server::Dovecot(_) => Family::Dovecot,
            Server::Cyrus(_) => Family::Cyrus,
            Server::Courier(_) => Family::Courier,
        }
    }
}

/// What a server family does to the seeded mailbox, found by running it (see the module
/// comment): written down so that it is checked, not hidden.
struct Expect {
    /// Subjects (prefix) of seed messages the server refuses at APPEND as a source.
    refused_at_seed: &'static [&'static str],
    /// Seed message bodies the server stores changed as a target (same date and flags).
    altered_on_target: Vec<Vec<u8>>,
    /// Folders the server shows as a target beyond the copied ones (empty).
    extra_target_folders: &'static [&'static str],
}

impl Family {
    fn expect(self) -> Expect {
        match self {
            Family::Dovecot | Family::Courier => Expect {
                refused_at_seed: &[],
                altered_on_target: Vec::new(),
                extra_target_folders: &[],
            },
            Family::Cyrus => Expect {
                // "NO Message contains bare newlines".
                refused_at_seed: &["[bare-lf]"],
                // Raw 8-bit header bytes are rewritten (Cyrus' default munge8bit).
                altered_on_target: vec![seed_body_with_subject("[8bit]")],
                // The parent of Projekte/Entwürfe becomes a real, empty mailbox.
                extra_target_folders: &["Projekte"],
            },
        }
    }
}

fn seed_body_with_subject(subject: &str) -> Vec<u8> {
    small_seed('.', "")
        .into_iter()
        .flat_map(|(_, msgs)| msgs)
        .map(|(body, _, _)| body)
        .find(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .any(|l| l.starts_with(&format!("Subject: {subject}")))
        })
        .expect("a seed message with that subject")
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// What the server says about itself: capabilities after login, NAMESPACE, LIST.
async fn describe(server: &Server) -> Result<String> {
    let mut conn = connect(&server.account()).await?;
    let caps = conn.capabilities().join(" ");
    let ns = conn.command("NAMESPACE").await?;
    let list = conn.command("LIST \"\" \"*\"").await?;
    let lines = |r: &mailferry_e2e::imap_client::Reply| {
        r.untagged
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let out = format!(
        "{:?}: CAPABILITY {caps}\n  {}\n  {}",
        server.family(),
        lines(&ns),
        lines(&list)
    );
    conn.logout().await;
    Ok(out)
}

/// A snapshot with the personal prefix taken off (`INBOX/Sent` → `Sent`), so that
/// folders of the two sides compare by the name the user sees.
async fn user_view(server: &Server) -> Result<BTreeMap<String, Vec<Seen>>> {
    let strip = server.prefix().replace('.', "/");
    Ok(snapshot(&server.account())
        .await?
        .into_iter()
        .map(|(name, mut msgs)| {
            // Cyrus writes a one-digit day with a leading space, Dovecot with a 0: the
            // same instant, compared as seconds.
            for m in &mut msgs {
                m.date = parse_internal_date(m.date.trim())
                    .map(|t| t.to_string())
                    .unwrap_or_else(|_| m.date.clone());
            }
            msgs.sort();
            let name = match name.strip_prefix(&strip) {
                Some(rest) if !strip.is_empty() && !rest.is_empty() => rest.to_string(),
                _ => name,
            };
            (name, msgs)
        })
        .collect())
}

/// Seeds [`small_seed`] with plain synchronising literals (Courier has no LITERAL+), one
/// APPEND at a time. Returns how many were stored and the subjects the server refused.
async fn seed(server: &Server) -> Result<(u64, Vec<String>)> {
    let mut conn = connect(&server.account()).await?;
    let folders = small_seed(server.separator(), server.prefix());
    for (folder, _) in &folders[1..] {
        conn.command(&format!("CREATE \"{folder}\"")).await?;
    }
    let mut stored = 0;
    let mut refused = Vec::new();
    for (folder, messages) in &folders {
        for (body, flags, date) in messages {
            let reply = conn
                .append_sync(&AppendItem {
                    mailbox: folder,
                    flags,
                    internal_date: Some(date),
                    bytes: body,
                })
                .await?;
            if reply.status == "OK" {
                stored += 1;
            } else {
                let subject = String::from_utf8_lossy(body)
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                    .unwrap_or_default();
                refused.push(format!("{subject}: {} {}", reply.status, reply.text));
            }
        }
    }
    conn.logout().await;
    Ok((stored, refused))
}

/// The UID map: SQLite in a scratch directory, or the suite's private PostgreSQL when the
/// suite runs on it (`MAILFERRY_TEST_DATABASE=postgres`).
struct MapDb {
    dir: tempfile::TempDir,
    postgres: Option<mailferry_e2e::postgres::SuitePostgres>,
}

impl MapDb {
    fn new() -> Result<MapDb> {
        Ok(MapDb {
            dir: tempfile::tempdir()?,
            postgres: mailferry_e2e::postgres::SuitePostgres::for_suite()?,
        })
    }

    fn url(&self) -> String {
        mailferry_e2e::postgres::map_url(self.postgres.as_ref(), self.dir.path())
    }
}

async fn migrate(source: &Server, target: &Server, db: &MapDb) -> Result<Run> {
    run_to_end(migrate_command(
        (USER, PASSWORD, source.port()),
        (USER, PASSWORD, target.port()),
        &db.url(),
        &[],
    ))
    .await
}

async fn copy_and_rerun(from: Family, to: Family) {
    let source = Server::start(from).unwrap();
    let target = Server::start(to).unwrap();
    let db = MapDb::new().unwrap();
    let (seeded, refused) = seed(&source).await.unwrap();
    let expect_source = from.expect();
    let expect_target = to.expect();
    let folders = small_seed(source.separator(), source.prefix()).len();
    // Every listed refusal happens, once per folder, and nothing else is refused.
    assert_eq!(
        refused.len(),
        expect_source.refused_at_seed.len() * folders,
        "{from:?} refused at APPEND: {refused:?}"
    );
    for r in &refused {
        assert!(
            expect_source
                .refused_at_seed
                .iter()
                .any(|s| r.starts_with(s)),
            "{from:?} refused an unexpected message: {r}"
        );
    }
    let before = user_view(&source).await.unwrap();
    eprintln!("{}", describe(&source).await.unwrap());

    let started = std::time::Instant::now();
    let run = migrate(&source, &target, &db).await.unwrap();
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (seeded, 0, 0), "{}", run.json);
    eprintln!("{}", describe(&target).await.unwrap());
    eprintln!(
        "{from:?} -> {to:?}: {seeded} messages copied in {took:?}; the engine's altered list: {}",
        run.json["altered"]
    );
    // The engine lists each alteration the target made (one per folder holding the
    // altered seed message), and nothing the target keeps exactly.
    let listed: Vec<String> = altered_list(&run);
    assert_eq!(
        listed.len(),
        expect_target.altered_on_target.len() * folders,
        "{to:?}: the engine's altered list {listed:?}"
    );
    assert!(
        listed.iter().all(|a| a.contains("it changed the message")),
        "{listed:?}"
    );
    let source_now = user_view(&source).await.unwrap();
    assert_eq!(source_now, before, "the source is untouched");
    let mut target_now = user_view(&target).await.unwrap();

    assert_holds(&source_now, &mut target_now, to);

    // A re-run finds everything in the map and copies nothing.
    let run = migrate(&source, &target, &db).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        (run.count("copied"), run.count("already_present")),
        (0, seeded),
        "{}",
        run.json
    );
    assert_eq!(
        user_view(&target).await.unwrap().len(),
        target_now.len() + expect_target.extra_target_folders.len()
    );
}

/// Asserts `target_now` (taken out of it: the listed extra folders) holds `source_now`'s
/// folders and messages (bytes, flags, dates) except the listed alterations of the target
/// family `to`, each of which happens: the source's message is not on the target byte for
/// byte, and one message with its date and flags stands in for it.
fn assert_holds(
    source_now: &BTreeMap<String, Vec<Seen>>,
    target_now: &mut BTreeMap<String, Vec<Seen>>,
    to: Family,
) {
    let expect_target = to.expect();
    // Folders: the source's, plus the target's listed extras (empty).
    for extra in expect_target.extra_target_folders {
        let msgs = target_now
            .remove(*extra)
            .unwrap_or_else(|| panic!("{to:?} no longer shows the extra folder {extra}"));
        assert!(msgs.is_empty(), "extra folder {extra} holds {msgs:?}");
    }
    assert_eq!(
        target_now.keys().collect::<Vec<_>>(),
        source_now.keys().collect::<Vec<_>>(),
        "folders on the target"
    );
    let altered: Vec<String> = expect_target
        .altered_on_target
        .iter()
        .map(|b| sha(b))
        .collect();
    let mut alterations = 0;
    for (folder, msgs) in source_now {
        let mut theirs = target_now[folder].clone();
        let mut ours = Vec::new();
        for m in msgs {
            if altered.contains(&m.hash) {
                assert!(
                    !theirs.iter().any(|t| t.hash == m.hash),
                    "{to:?} now stores {folder}'s listed alteration unchanged: {m:?}"
                );
                let at = theirs
                    .iter()
                    .position(|t| t.date == m.date && t.flags == m.flags && !msgs.contains(t))
                    .unwrap_or_else(|| panic!("no stand-in for {m:?} in {folder}"));
                let stand_in = theirs.remove(at);
                eprintln!("{folder}: {to:?} altered {} into {}", m.hash, stand_in.hash);
                alterations += 1;
            } else {
                ours.push(m.clone());
            }
        }
        let only_target: Vec<&Seen> = theirs.iter().filter(|t| !ours.contains(t)).collect();
        let only_source: Vec<&Seen> = ours.iter().filter(|o| !theirs.contains(o)).collect();
        assert!(
            theirs.len() == ours.len() && only_target.is_empty() && only_source.is_empty(),
            "messages (bytes, flags, dates) in {folder}: {} on the target, {} on the source; \
             only on the target: {only_target:?}; only on the source: {only_source:?}",
            theirs.len(),
            ours.len()
        );
    }
    assert_eq!(
        alterations,
        expect_target.altered_on_target.len() * source_now.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_to_cyrus() {
    copy_and_rerun(Family::Dovecot, Family::Cyrus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyrus_to_dovecot() {
    copy_and_rerun(Family::Cyrus, Family::Dovecot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_to_dovecot() {
    copy_and_rerun(Family::Courier, Family::Dovecot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_to_courier() {
    copy_and_rerun(Family::Dovecot, Family::Courier).await;
}

/// Courier-IMAP stores messages in Maildir with bare LF line ends and gives them back with
/// CRLF: a message that is not plain CRLF text comes back changed. The engine's run still
/// counts it as copied (issue 15: "a target that alters a message is not a silent
/// success"); this test pins down what Courier does, so the engine's answer can be
/// checked against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_changes_lone_cr_and_a_missing_final_newline() {
    let source = Server::start(Family::Dovecot).unwrap();
    let target = Server::start(Family::Courier).unwrap();
    let db = MapDb::new().unwrap();
    let plain = b"From: a@example.org\r\nSubject: plain\r\n\r\nplain CRLF text\r\n".to_vec();
    let lone_cr = b"From: b@example.org\r\nSubject: lone CR\r\n\r\none\rtwo\r\n".to_vec();
    let no_newline = b"From: c@example.org\r\nSubject: no final newline\r\n\r\nend".to_vec();
    for body in [&plain, &lone_cr, &no_newline] {
        engine_common::append_one(&source.account(), "INBOX", body, &[])
            .await
            .unwrap();
    }
    let run = migrate(&source, &target, &db).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (3, 0, 0), "{}", run.json);
    let held: Vec<String> = user_view(&target).await.unwrap()["INBOX"]
        .iter()
        .map(|m| m.hash.clone())
        .collect();
    assert_eq!(held.len(), 3);
    assert!(
        held.contains(&sha(&plain)),
        "plain CRLF text is kept exactly"
    );
    for (what, body) in [("lone CR", &lone_cr), ("no final newline", &no_newline)] {
        assert!(
            !held.contains(&sha(body)),
            "Courier now keeps a message with {what} exactly: update the expectations"
        );
    }
    eprintln!(
        "Dovecot -> Courier: lone CR and no final newline altered; the engine's altered list: {}",
        run.json["altered"]
    );
    // The engine says so: exactly UIDs 2 and 3, with the sizes, and not the plain one.
    let listed = altered_list(&run);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed[0].starts_with("INBOX UID 2: the target stored ")
            && listed[1].starts_with("INBOX UID 3: the target stored ")
            && listed
                .iter()
                .all(|a| a.ends_with("sent: it changed the message")),
        "{listed:?}"
    );
    assert!(
        listed[1].contains(&format!("of {} sent", no_newline.len())),
        "{listed:?}"
    );
    // Still copied: a re-run sends nothing again.
    let again = migrate(&source, &target, &db).await.unwrap();
    assert_eq!(
        (again.count("copied"), again.count("already_present")),
        (0, 3),
        "{}",
        again.json
    );
}

/// Cyrus replaces raw 8-bit header bytes with `X` (munge8bit): the same size, another
/// message. The engine compares the header of such messages and lists them; 8-bit bytes
/// in a body (kept by Cyrus) and plain messages are not listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyrus_rewriting_8bit_headers_is_reported() {
    let source = Server::start(Family::Dovecot).unwrap();
    let target = Server::start(Family::Cyrus).unwrap();
    let db = MapDb::new().unwrap();
    let plain = b"From: a@example.org\r\nSubject: plain\r\n\r\nplain text\r\n".to_vec();
    let header = b"From: b@example.org\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nhello\r\n".to_vec();
    let body = b"From: c@example.org\r\nSubject: body\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n".to_vec();
    for b in [&plain, &header, &body] {
        engine_common::append_one(&source.account(), "INBOX", b, &[])
            .await
            .unwrap();
    }
    let run = migrate(&source, &target, &db).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (3, 0, 0), "{}", run.json);
    let held: Vec<String> = user_view(&target).await.unwrap()["INBOX"]
        .iter()
        .map(|m| m.hash.clone())
        .collect();
    assert!(held.contains(&sha(&plain)) && held.contains(&sha(&body)));
    assert!(
        !held.contains(&sha(&header)),
        "Cyrus now keeps raw 8-bit header bytes: update the expectations"
    );
    let listed = altered_list(&run);
    eprintln!("Dovecot -> Cyrus: the engine's altered list: {listed:?}");
    assert_eq!(
        listed,
        vec![
            "INBOX UID 2: the target rewrote the header's raw 8-bit bytes: it changed the message"
        ]
    );
}

/// The engine's `altered` list of a run (absent when empty).
fn altered_list(run: &Run) -> Vec<String> {
    run.json["altered"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Changes on the source after a first copy: new messages in two folders, flags set and
/// cleared on copied ones.
async fn change_source(source: &Server) -> Result<()> {
    let mut conn = connect(&source.account()).await?;
    let archive = format!("{}Archive", source.prefix());
    for (folder, n) in [("INBOX", 3), (archive.as_str(), 2)] {
        for i in 0..n {
            let body = format!(
                "From: delta@example.org\r\nSubject: delta {folder} {i}\r\n\
                 Message-ID: <delta-{i}-{}@example.org>\r\n\r\nnew after the first run\r\n",
                folder.replace(['.', '/'], "-")
            );
            let reply = conn
                .append_sync(&AppendItem {
                    mailbox: folder,
                    flags: &["\\Seen".to_string()],
                    internal_date: Some("02-Feb-2022 10:00:00 +0000"),
                    bytes: body.as_bytes(),
                })
                .await?;
            anyhow::ensure!(reply.status == "OK", "APPEND refused: {}", reply.text);
        }
    }
    conn.select("INBOX").await?;
    conn.command_ok("UID STORE 1 +FLAGS (\\Flagged \\Answered)")
        .await?;
    conn.command_ok("UID STORE 2 -FLAGS (\\Seen)").await?;
    conn.logout().await;
    Ok(())
}

/// A delta run through a fault proxy in front of the family under test (the one that is
/// not Dovecot) that drops the connection after every 9th command has reached the server,
/// before its reply reaches the engine (the lost-OK case that makes duplicates): the new
/// messages arrive once each, the flag changes are carried over, nothing else moves.
async fn delta_through_lost_replies(from: Family, to: Family) {
    let source = Server::start(from).unwrap();
    let target = Server::start(to).unwrap();
    let db = MapDb::new().unwrap();
    let (seeded, _) = seed(&source).await.unwrap();
    let (faulty, upstream) = if from == Family::Dovecot {
        (Side::Target, target.port())
    } else {
        (Side::Source, source.port())
    };
    let proxy = FaultProxy::start(
        upstream,
        Faults {
            drop_every: Some(9),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let (source_port, target_port) = match faulty {
        Side::Source => (proxy.port(), target.port()),
        Side::Target => (source.port(), proxy.port()),
    };
    // Each lost reply ends that connection; the engine reconnects within the run, and a
    // run that gave up on a folder is run again, as an admin would.
    let until_done = || async {
        let mut runs = Vec::new();
        loop {
            let run = run_to_end(migrate_command(
                (USER, PASSWORD, source_port),
                (USER, PASSWORD, target_port),
                &db.url(),
                &[],
            ))
            .await
            .unwrap();
            let done = run.code == Some(0);
            runs.push(run);
            // Every run gets further (the map keeps what was copied); how many it takes
            // depends on where the drops fall, which a loaded machine shifts.
            if done || runs.len() == 8 {
                return runs;
            }
        }
    };
    let drops = || {
        proxy
            .stats()
            .drops
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let first = until_done().await;
    assert_eq!(first.last().unwrap().code, Some(0), "{first:?}");
    let dropped_first = drops();
    // A message whose APPEND reply was lost is settled by the next try (found on the
    // target, counted as already there), never sent twice: the contents tell.
    let mut target_now = user_view(&target).await.unwrap();
    let seeded_view = user_view(&source).await.unwrap();
    assert_holds(&seeded_view, &mut target_now, to);
    change_source(&source).await.unwrap();
    let before = user_view(&source).await.unwrap();
    let runs = until_done().await;
    let last = runs.last().unwrap();
    assert_eq!(last.code, Some(0), "{from:?} -> {to:?}: {runs:?}");
    let copied: u64 = runs.iter().map(|r| r.count("copied")).sum();
    let flags: u64 = runs.iter().map(|r| r.count("flags_updated")).sum();
    eprintln!(
        "{from:?} -> {to:?}: {seeded} seeded, copied in {} run(s) through {dropped_first} \
         dropped connections; the delta in {} run(s) through {} more: {copied} copied, \
         {flags} flag updates",
        first.len(),
        runs.len(),
        drops() - dropped_first
    );
    assert!(
        dropped_first > 0 && drops() > dropped_first,
        "the proxy dropped nothing in a run: the test tested nothing"
    );
    assert!(copied <= 5, "more copied than the 5 new messages: {runs:?}");
    assert_eq!(
        user_view(&source).await.unwrap(),
        before,
        "the source is untouched"
    );
    // No duplicates, nothing lost, the flags as the source has them now.
    let mut target_now = user_view(&target).await.unwrap();
    assert_holds(&before, &mut target_now, to);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Target,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_dovecot_to_cyrus_through_lost_replies() {
    delta_through_lost_replies(Family::Dovecot, Family::Cyrus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_cyrus_to_dovecot_through_lost_replies() {
    delta_through_lost_replies(Family::Cyrus, Family::Dovecot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_courier_to_dovecot_through_lost_replies() {
    delta_through_lost_replies(Family::Courier, Family::Dovecot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_dovecot_to_courier_through_lost_replies() {
    delta_through_lost_replies(Family::Dovecot, Family::Courier).await;
}
