//! Re-runs against a CONDSTORE source (Dovecot): a folder unchanged since the last
//! complete pass is neither selected nor fetched on either side; one with new mail or new
//! flags is listed with `CHANGEDSINCE` only; a pass that did not finish keeps nothing, so
//! the next run still copies all that is left. A source without CONDSTORE (Courier) is
//! copied on re-runs exactly as before.

mod engine_common;

use engine_common::*;
use mailferry_e2e::courier::Courier;
use mailferry_e2e::imap_client::{connect, AppendItem};
use mailferry_e2e::proxy::{FaultProxy, Faults, LoggedCommand, Refuse, Refused};

/// The seeded folders as the engine names them on the wire (Dovecot, separator `.`).
const UNCHANGED: [&str; 3] = ["INBOX", "Sent", "Projekte.Entw&APw-rfe"];

fn fetches_in<'a>(log: &'a [LoggedCommand], folder: &str) -> Vec<&'a LoggedCommand> {
    log.iter()
        .filter(|c| c.verb.ends_with("FETCH") && c.folder == folder)
        .collect()
}

fn opened<'a>(log: &'a [LoggedCommand], folder: &str) -> Vec<&'a LoggedCommand> {
    log.iter()
        .filter(|c| (c.verb == "SELECT" || c.verb == "EXAMINE") && c.folder == folder)
        .collect()
}

/// A transparent proxy in front of each side, for their command logs. The UID map is
/// kept per pair of accounts (host and port), so every run of a test goes through them.
struct Logged {
    src: FaultProxy,
    dst: FaultProxy,
}

impl Logged {
    async fn start(pair: &Pair) -> Logged {
        Self::with_target_faults(pair, Faults::default()).await
    }

    async fn with_target_faults(pair: &Pair, target: Faults) -> Logged {
        Logged {
            src: pair.proxy(Side::Source, Faults::default()).await.unwrap(),
            dst: pair.proxy(Side::Target, target).await.unwrap(),
        }
    }

    /// A run, and the commands each side got during it (source, target).
    async fn migrate(&self, pair: &Pair) -> (Run, Vec<LoggedCommand>, Vec<LoggedCommand>) {
        let (s, d) = (
            self.src.stats().commands_logged().len(),
            self.dst.stats().commands_logged().len(),
        );
        let run = pair
            .migrate(self.src.port(), self.dst.port(), &[])
            .await
            .unwrap();
        let src = self.src.stats().commands_logged().split_off(s);
        let dst = self.dst.stats().commands_logged().split_off(d);
        (run, src, dst)
    }
}

fn new_message(i: usize) -> Vec<u8> {
    format!("From: new@example.org\r\nSubject: new {i}\r\nMessage-ID: <new.{i}@example.org>\r\n\r\nnew body {i}\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_skips_unchanged_folders_and_lists_only_the_new_message() {
    let (pair, seeded, _) = seeded_pair().await;
    let logged = Logged::start(&pair).await;
    let (run, _, _) = logged.migrate(&pair).await;
    assert_eq!(run.copied_skipped_failed(), (seeded, 0, 0), "{}", run.json);
    append_one(&pair.source_account(), "Archive", &new_message(1), &[])
        .await
        .unwrap();
    let before = snapshot(&pair.source_account()).await.unwrap();

    let (run, source_log, target_log) = logged.migrate(&pair).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        (run.count("copied"), run.count("already_present")),
        (1, seeded),
        "{}",
        run.json
    );
    pair.assert_exact_copy(&before).await;
    for folder in UNCHANGED {
        let fetched = fetches_in(&source_log, folder);
        assert!(
            fetched.is_empty(),
            "{folder} is unchanged, yet the source was asked: {fetched:?}"
        );
        let selected = opened(&source_log, folder);
        assert!(
            selected.is_empty(),
            "{folder} opened on the source: {selected:?}"
        );
        let selected = opened(&target_log, folder);
        assert!(
            selected.is_empty(),
            "{folder} opened on the target: {selected:?}"
        );
    }
    // Archive: the listing asked only for what changed, and one body was fetched.
    let archive = fetches_in(&source_log, "Archive");
    let listings: Vec<_> = archive.iter().filter(|c| !c.fetches_body).collect();
    assert!(
        !listings.is_empty()
            && listings.iter().all(|c| c
                .items
                .as_deref()
                .is_some_and(|i| i.contains("CHANGEDSINCE"))),
        "Archive's listing: {listings:?}"
    );
    eprintln!("re-run with one new message: source commands {source_log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_changed_on_the_source_reaches_the_target_through_changedsince() {
    let (pair, seeded, _) = seeded_pair().await;
    let logged = Logged::start(&pair).await;
    let (run, _, _) = logged.migrate(&pair).await;
    assert_eq!(run.copied_skipped_failed(), (seeded, 0, 0), "{}", run.json);
    // UID 1 of INBOX was seeded without flags.
    on_folder(
        &pair.source_account(),
        "INBOX",
        "UID STORE 1 +FLAGS (\\Flagged)",
    )
    .await
    .unwrap();
    let before = snapshot(&pair.source_account()).await.unwrap();
    assert!(before["INBOX"]
        .iter()
        .any(|m| m.flags == vec!["\\Flagged".to_string()]));

    let (run, log, _) = logged.migrate(&pair).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        (
            run.count("copied"),
            run.count("flags_updated"),
            run.count("already_present")
        ),
        (0, 1, seeded),
        "{}",
        run.json
    );
    pair.assert_exact_copy(&before).await;
    let inbox = fetches_in(&log, "INBOX");
    assert!(
        !inbox.is_empty()
            && inbox.iter().all(|c| !c.fetches_body
                && c.items
                    .as_deref()
                    .is_some_and(|i| i.contains("CHANGEDSINCE"))),
        "INBOX was listed whole or fetched: {inbox:?}"
    );
    for folder in &UNCHANGED[1..] {
        assert!(fetches_in(&log, folder).is_empty(), "{folder} fetched");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_stopped_midway_keeps_no_modseq_and_the_next_run_copies_the_rest() {
    let (pair, seeded, _) = seeded_pair().await;
    // The target takes messages one APPEND each, and says it is full at the first APPEND
    // of a message holding the marker (only once: the mailbox "got room" after that).
    let full = Faults {
        hide_capabilities: vec!["MULTIAPPEND".into()],
        refuse: vec![Refuse::first(
            Refused::AppendContaining("X-Marker: full".into()),
            "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)",
            1,
        )],
        ..Faults::default()
    };
    let logged = Logged::with_target_faults(&pair, full).await;
    let (run, _, _) = logged.migrate(&pair).await;
    assert_eq!(run.copied_skipped_failed(), (seeded, 0, 0), "{}", run.json);
    let mut conn = connect(&pair.source_account()).await.unwrap();
    let bodies: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            let mut body = b"X-Marker: full\r\n".to_vec();
            body.extend(new_message(i));
            if i == 3 {
                body
            } else {
                new_message(i)
            }
        })
        .collect();
    let no_flags: Vec<String> = Vec::new();
    let items: Vec<AppendItem<'_>> = bodies
        .iter()
        .map(|b| AppendItem {
            mailbox: "Archive",
            flags: &no_flags,
            internal_date: Some("15-Jun-2021 12:00:00 +0200"),
            bytes: b,
        })
        .collect();
    for r in conn.append_pipelined(&items).await.unwrap() {
        r.unwrap();
    }
    conn.logout().await;
    let before = snapshot(&pair.source_account()).await.unwrap();

    // Archive's pass stops at its fourth new message: the job stops (over quota).
    let (run, _, _) = logged.migrate(&pair).await;
    let stopped_after = run.count("copied");
    eprintln!(
        "the stopped run: exit {:?}, copied {stopped_after}: {}",
        run.code, run.json
    );
    assert!(
        stopped_after < 6 && !run.json["stopped"].is_null(),
        "{}",
        run.json
    );

    let (run, log, _) = logged.migrate(&pair).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), 6 - stopped_after, "{}", run.json);
    pair.assert_exact_copy(&before).await;
    // The unfinished folder was listed again; the others, finished by the first run, not.
    assert!(!fetches_in(&log, "Archive").is_empty());
    for folder in UNCHANGED {
        let fetched = fetches_in(&log, folder);
        assert!(fetched.is_empty(), "{folder} fetched: {fetched:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_condstore_is_copied_on_reruns_as_before() {
    let courier = Courier::start(&[(SOURCE_USER, SOURCE_PASSWORD)]).unwrap();
    let pair = Pair::start(Default::default(), Default::default()).unwrap();
    let account = courier.account(SOURCE_USER, SOURCE_PASSWORD);
    let mut conn = connect(&account).await.unwrap();
    let caps = conn.command_ok("CAPABILITY").await.unwrap();
    let caps: String = caps
        .untagged
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_uppercase())
        .collect();
    assert!(
        !caps.contains("CONDSTORE") && !caps.contains("QRESYNC"),
        "this Courier offers CONDSTORE ({caps}): the test no longer tests a source without it"
    );
    conn.command_ok("CREATE \"INBOX.Archive\"").await.unwrap();
    let no_flags: Vec<String> = Vec::new();
    for i in 0..5 {
        for folder in ["INBOX", "INBOX.Archive"] {
            let body = new_message(i);
            let reply = conn
                .append_sync(&AppendItem {
                    mailbox: folder,
                    flags: &no_flags,
                    internal_date: Some("15-Jun-2021 12:00:00 +0200"),
                    bytes: &body,
                })
                .await
                .unwrap();
            assert_eq!(reply.status, "OK", "{reply:?}");
        }
    }
    conn.logout().await;
    let migrate = || {
        run_to_end(migrate_command(
            (SOURCE_USER, SOURCE_PASSWORD, courier.imap_port()),
            (TARGET_USER, TARGET_PASSWORD, pair.target.imap_port()),
            &pair.db_url(),
            &[],
        ))
    };
    let run = migrate().await.unwrap();
    assert_eq!(run.copied_skipped_failed(), (10, 0, 0), "{}", run.json);
    // A flag change and a new message in one folder, nothing in the other.
    on_folder(&account, "INBOX", "UID STORE 2 +FLAGS (\\Flagged)")
        .await
        .unwrap();
    let mut conn = connect(&account).await.unwrap();
    let body = new_message(9);
    let reply = conn
        .append_sync(&AppendItem {
            mailbox: "INBOX.Archive",
            flags: &no_flags,
            internal_date: Some("15-Jun-2021 12:00:00 +0200"),
            bytes: &body,
        })
        .await
        .unwrap();
    assert_eq!(reply.status, "OK", "{reply:?}");
    conn.logout().await;
    let run = migrate().await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        (
            run.count("copied"),
            run.count("flags_updated"),
            run.count("already_present")
        ),
        (1, 1, 10),
        "{}",
        run.json
    );
    let source = snapshot(&account).await.unwrap();
    let target = snapshot(&pair.target_account()).await.unwrap();
    assert_eq!(source["INBOX"], target["INBOX"]);
    assert_eq!(source["INBOX/Archive"], target["Archive"]);
}
