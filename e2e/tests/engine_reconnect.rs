//! A folder deleted and made again while the engine was reconnecting: when the re-select
//! after the reconnect finds another UIDVALIDITY, that folder's copy stops with the reason
//! (its UIDs in hand name other messages now) and the next run matches it again. Through
//! the fault proxy in front of a real Dovecot: one dropped connection, held back until the
//! test has recreated the folder.

mod engine_common;

use engine_common::*;
use mailferry_e2e::imap_client::{connect, AppendItem};
use mailferry_e2e::proxy::{DropHold, Faults};
use std::collections::HashSet;

const MESSAGES: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_folder_recreated_during_a_reconnect_stops_that_folder_not_copied_under_stale_uids(
) {
    let pair = Pair::start(Default::default(), Default::default()).unwrap();
    let source = pair.source_account();
    let mut conn = connect(&source).await.unwrap();
    conn.create("Archive").await.unwrap();
    let bodies: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| {
            format!(
                "From: a@example.org\r\nSubject: m{i}\r\n\r\nbody {i} {}\r\n",
                "y".repeat(i % 50)
            )
            .into_bytes()
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

    let hold = DropHold::new("Archive", 3);
    let proxy = pair
        .proxy(
            Side::Source,
            Faults {
                drop_and_hold: Some(hold.clone()),
                ..Faults::default()
            },
        )
        .await
        .unwrap();
    let migrate = pair.migrate_through(Side::Source, &proxy, &[]);
    let recreate = async {
        hold.dropped().await;
        // Between the drop and the reconnect: Archive made again, its messages reversed
        // and only half of them, so the old UIDs name other messages or none.
        let mut conn = connect(&source).await.unwrap();
        conn.command_ok("DELETE \"Archive\"").await.unwrap();
        conn.create("Archive").await.unwrap();
        let again: Vec<AppendItem<'_>> = items.iter().rev().step_by(2).cloned().collect();
        for r in conn.append_pipelined(&again).await.unwrap() {
            r.unwrap();
        }
        conn.logout().await;
        hold.resume();
    };
    let (run, ()) = tokio::join!(migrate, recreate);
    let run = run.unwrap();
    let failed = run.json["failed_folders"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    eprintln!("run with the source folder recreated during a reconnect: exit {:?}, copied {}, failed folders {failed:?}", run.code, run.count("copied"));
    let archive = failed
        .iter()
        .find(|f| f.to_string().contains("Archive"))
        .unwrap_or_else(|| panic!("Archive not reported failed: {run:?}"));
    assert!(archive.to_string().contains("UIDVALIDITY"), "{archive}");

    // The next run matches the new folder again: the target ends up with each message of
    // the new source folder once, and no message twice.
    // Through the same proxy (the job is the same one when its accounts are), long resumed.
    let run = pair
        .migrate_through(Side::Source, &proxy, &[])
        .await
        .unwrap();
    eprintln!(
        "next run: exit {:?}, copied {}, already present {}",
        run.code,
        run.count("copied"),
        run.count("already_present")
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let target = snapshot(&pair.target_account()).await.unwrap();
    let now = snapshot(&source).await.unwrap();
    let held: Vec<&String> = target["Archive"].iter().map(|m| &m.hash).collect();
    let distinct: HashSet<&String> = held.iter().copied().collect();
    assert_eq!(distinct.len(), held.len(), "no message twice on the target");
    for m in &now["Archive"] {
        assert!(
            distinct.contains(&m.hash),
            "every message of the new folder arrived"
        );
    }
}
