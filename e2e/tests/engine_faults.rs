//! The server behaviours of QUIRKS.md's first table, reproduced by the fault proxy in front
//! of a real Dovecot: every other message arrives, nothing is duplicated, and the source's
//! \Seen flags are unchanged.

mod engine_common;

use engine_common::*;
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::proxy::{FaultProxy, Faults};
use std::sync::atomic::Ordering;

async fn setup() -> (Pair, u64, std::collections::BTreeMap<String, Vec<Seen>>) {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let seeded = seed_small(&pair.source_account(), '.').await.unwrap() as u64;
    let before = snapshot(&pair.source_account()).await.unwrap();
    (pair, seeded, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_refusing_body_peek_falls_back_and_keeps_seen() {
    let (pair, seeded, before) = setup().await;
    let proxy = FaultProxy::start(
        pair.source.imap_port(),
        Faults {
            bad_fetch_forms: vec!["BODY.PEEK[]".into()],
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let run = pair
        .migrate(proxy.port(), pair.target.imap_port(), &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert!(
        proxy.stats().bad_answers.load(Ordering::SeqCst) > 0,
        "the fault happened"
    );
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(source, before, "source flags unchanged");
    assert_same(&source, &snapshot(&pair.target_account()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_refusing_every_peek_form_uses_body_under_examine_and_keeps_seen() {
    let (pair, seeded, before) = setup().await;
    let proxy = FaultProxy::start(
        pair.source.imap_port(),
        Faults {
            bad_fetch_forms: vec![
                "BODY.PEEK[]".into(),
                "BINARY.PEEK[]".into(),
                "RFC822.PEEK".into(),
            ],
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let run = pair
        .migrate(proxy.port(), pair.target.imap_port(), &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert!(
        proxy.stats().bad_answers.load(Ordering::SeqCst) >= 3,
        "every PEEK form was refused"
    );
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(source, before, "source \\Seen flags unchanged after BODY[]");
    assert_same(&source, &snapshot(&pair.target_account()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_is_skipped_and_reported_and_the_rest_arrives() {
    let (pair, seeded, before) = setup().await;
    let proxy = FaultProxy::start(
        pair.source.imap_port(),
        Faults {
            poison: vec![("INBOX".into(), 3)],
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let run = pair
        .migrate(proxy.port(), pair.target.imap_port(), &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!(run.count("copied"), seeded - 1);
    assert_eq!((run.count("skipped"), run.count("failed")), (1, 0));
    let skipped = &run.json["skipped_messages"][0];
    assert_eq!(
        (skipped["folder"].as_str(), skipped["uid"].as_u64()),
        (Some("INBOX"), Some(3))
    );
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("dropped the connection"),
        "{skipped}"
    );
    assert!(
        proxy.stats().poison_drops.load(Ordering::SeqCst) >= 3,
        "tried a bounded number of times"
    );
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(source, before);
    assert_same_except(
        &source,
        &snapshot(&pair.target_account()).await.unwrap(),
        &skipped_by_folder(&run),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_without_uidplus_gets_no_duplicates_and_reruns_copy_nothing() {
    let (pair, seeded, before) = setup().await;
    let proxy = FaultProxy::start(
        pair.target.imap_port(),
        Faults {
            hide_capabilities: vec!["UIDPLUS".into()],
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let run = pair
        .migrate(pair.source.imap_port(), proxy.port(), &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert!(
        proxy.stats().rewritten_lines.load(Ordering::SeqCst) > 0,
        "UIDPLUS and APPENDUID were hidden"
    );
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(source, before);
    assert_same(&source, &snapshot(&pair.target_account()).await.unwrap());
    // The map knows every target UID although the server never said APPENDUID.
    let json = scratch_file(&pair, "map.json");
    let run = pair
        .migrate(
            pair.source.imap_port(),
            proxy.port(),
            &["--export-map", json.to_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        (run.count("copied"), run.count("already_present")),
        (0, seeded)
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["target_uid"].as_u64().is_some()),
        "{rows}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_dropped_every_few_commands_lose_and_duplicate_nothing() {
    let (pair, seeded, before) = setup().await;
    let src_proxy = FaultProxy::start(
        pair.source.imap_port(),
        Faults {
            drop_every: Some(10),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let dst_proxy = FaultProxy::start(
        pair.target.imap_port(),
        Faults {
            drop_every: Some(7),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let run = pair
        .migrate(src_proxy.port(), dst_proxy.port(), &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert!(
        dst_proxy.stats().drops.load(Ordering::SeqCst) > 0
            && src_proxy.stats().drops.load(Ordering::SeqCst) > 0
    );
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(source, before);
    assert_same(&source, &snapshot(&pair.target_account()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_over_the_size_limit_are_skipped_with_the_servers_words() {
    let (pair, seeded, before) = setup().await;
    let proxy = FaultProxy::start(
        pair.target.imap_port(),
        Faults {
            append_max_size: Some(500_000),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let run = pair
        .migrate(pair.source.imap_port(), proxy.port(), &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(3), "{run:?}");
    // One [big] message per folder.
    assert_eq!(run.count("skipped"), 4, "{run:?}");
    assert_eq!(run.count("copied"), seeded - 4);
    for s in run.json["skipped_messages"].as_array().unwrap() {
        assert!(s["reason"].as_str().unwrap().contains("too large"), "{s}");
    }
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(source, before);
    assert_same_except(
        &source,
        &snapshot(&pair.target_account()).await.unwrap(),
        &skipped_by_folder(&run),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_over_quota_stops_the_job_with_that_reason() {
    let pair = Pair::start(
        DovecotOptions::default(),
        DovecotOptions {
            quota_bytes: Some(600_000),
            ..DovecotOptions::default()
        },
    )
    .unwrap();
    seed_small(&pair.source_account(), '.').await.unwrap();
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(
        run.json["stopped"].as_str().unwrap_or("").contains("quota"),
        "{}",
        run.json
    );
}
