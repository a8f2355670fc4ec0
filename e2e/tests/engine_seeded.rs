//! The test kit's seeded mailbox (every oddity: no Message-ID, bare LF, 8-bit headers,
//! duplicates, big attachments, UTF-8 folder names, a \Noselect parent) copied between
//! servers with different separators and namespace prefixes, checked by the kit's comparer.

mod engine_common;

use engine_common::*;
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};

fn differences(
    source: &mailferry_e2e::compare::Snapshot,
    target: &mailferry_e2e::compare::Snapshot,
) -> Vec<String> {
    compare(source, target, &FolderMap::identity())
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_mailbox_copies_byte_identical_across_separators_and_prefixes() {
    let pair = Pair::start(
        DovecotOptions {
            separator: '.',
            prefix: "INBOX.".into(),
            ..DovecotOptions::default()
        },
        DovecotOptions {
            separator: '/',
            ..DovecotOptions::default()
        },
    )
    .unwrap();
    let seeded = seed_mailbox(&pair.source_account(), &SeedSpec::new(42, 400))
        .await
        .unwrap();
    let before = snapshot(&pair.source_account()).await.unwrap();

    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded.total_messages() as u64);
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(source, before, "the source is untouched");
    let target = snapshot(&pair.target_account()).await.unwrap();
    let diffs = differences(&source, &target);
    assert!(diffs.is_empty(), "differences:\n{}", diffs.join("\n"));

    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        (run.count("copied"), run.count("already_present")),
        (0, seeded.total_messages() as u64)
    );
}
