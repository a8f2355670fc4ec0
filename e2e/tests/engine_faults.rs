//! The server behaviours of QUIRKS.md's first table, reproduced by the fault proxy in front
//! of a real Dovecot: every other message arrives, nothing is duplicated, and the source's
//! \Seen flags are unchanged.

mod engine_common;

use engine_common::*;
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::proxy::Faults;
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_refusing_body_peek_falls_back_and_keeps_seen() {
    let (pair, seeded, before) = seeded_pair().await;
    let (proxy, run) = pair
        .copy_through(
            Side::Source,
            Faults {
                bad_fetch_forms: vec!["BODY.PEEK[]".into()],
                ..Faults::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert!(
        proxy.stats().bad_answers.load(Ordering::SeqCst) > 0,
        "the fault happened"
    );
    // The source's flags too: no \Seen set by the fallback.
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_refusing_every_peek_form_uses_body_under_examine_and_keeps_seen() {
    let (pair, seeded, before) = seeded_pair().await;
    let (proxy, run) = pair
        .copy_through(
            Side::Source,
            Faults {
                bad_fetch_forms: vec![
                    "BODY.PEEK[]".into(),
                    "BINARY.PEEK[]".into(),
                    "RFC822.PEEK".into(),
                ],
                ..Faults::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert!(
        proxy.stats().bad_answers.load(Ordering::SeqCst) >= 2,
        "BODY.PEEK[] and RFC822.PEEK were refused (BINARY.PEEK[] comes after BODY[] now)"
    );
    // The source's \Seen flags too: unchanged after BODY[] under EXAMINE.
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_is_skipped_and_reported_and_the_rest_arrives() {
    let (pair, seeded, before) = seeded_pair().await;
    let (proxy, run) = pair
        .copy_through(
            Side::Source,
            Faults {
                poison: vec![("INBOX".into(), 3)],
                ..Faults::default()
            },
            &[],
        )
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
    pair.assert_exact_copy_but_skipped(&before, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_without_uidplus_gets_no_duplicates_and_reruns_copy_nothing() {
    let (pair, seeded, before) = seeded_pair().await;
    let (proxy, run) = pair
        .copy_through(
            Side::Target,
            Faults {
                hide_capabilities: vec!["UIDPLUS".into()],
                ..Faults::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert!(
        proxy.stats().rewritten_lines.load(Ordering::SeqCst) > 0,
        "UIDPLUS and APPENDUID were hidden"
    );
    pair.assert_exact_copy(&before).await;
    // The map knows every target UID although the server never said APPENDUID.
    let json = scratch_file(&pair, "map.json");
    let run = pair
        .migrate_to(proxy.port(), &["--export-map", json.to_str().unwrap()])
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
    let (pair, seeded, before) = seeded_pair().await;
    let dropping_every = |n| Faults {
        drop_every: Some(n),
        ..Faults::default()
    };
    let src_proxy = pair.proxy(Side::Source, dropping_every(10)).await.unwrap();
    let dst_proxy = pair.proxy(Side::Target, dropping_every(7)).await.unwrap();
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
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_over_the_size_limit_are_skipped_with_the_servers_words() {
    let (pair, seeded, before) = seeded_pair().await;
    let (_proxy, run) = pair
        .copy_through(
            Side::Target,
            Faults {
                append_max_size: Some(500_000),
                ..Faults::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(3), "{run:?}");
    // One [big] message per folder.
    assert_eq!(run.count("skipped"), 4, "{run:?}");
    assert_eq!(run.count("copied"), seeded - 4);
    for s in run.json["skipped_messages"].as_array().unwrap() {
        assert!(s["reason"].as_str().unwrap().contains("too large"), "{s}");
    }
    pair.assert_exact_copy_but_skipped(&before, &run).await;
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
