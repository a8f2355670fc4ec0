//! kill -9 of `mailferry migrate` at several moments of a copy, then a re-run: nothing is
//! lost and nothing is duplicated (the journal is written before every APPEND).

mod engine_common;

use engine_common::*;
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_after_kill_has_no_losses_and_no_duplicates() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let seeded = seed_mailbox(&pair.source_account(), &SeedSpec::new(7, 1500))
        .await
        .unwrap();

    let mut killed_mid_copy = 0;
    for delay_ms in [250u64, 400, 550, 700, 900, 1100] {
        // Small batches make many journal points; the kill lands between or inside them.
        let mut child = pair
            .command(
                pair.source.imap_port(),
                pair.target.imap_port(),
                &["--connections", "2"],
            )
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap(); // SIGKILL
            killed_mid_copy += 1;
        }
        let _ = child.wait().await;
    }
    assert!(
        killed_mid_copy >= 2,
        "the copy was interrupted at least twice ({killed_mid_copy})"
    );

    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.count("copied") + run.count("already_present"),
        seeded.total_messages() as u64,
        "{run:?}"
    );
    let source = snapshot(&pair.source_account()).await.unwrap();
    let target = snapshot(&pair.target_account()).await.unwrap();
    let diffs: Vec<String> = compare(&source, &target, &FolderMap::identity())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        diffs.is_empty(),
        "differences after kill -9 and re-run:\n{}",
        diffs.join("\n")
    );
}
