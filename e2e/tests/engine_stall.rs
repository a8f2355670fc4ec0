//! The stall watchdog, through the fault proxy in front of a real Dovecot: a source that
//! answers a body FETCH only with `* OK still working`, once a second, forever, keeps
//! every per-step timeout from firing. Without the watchdog the run hangs; with it the
//! run is stopped with the reason, started again, and exact once the fault is gone;
//! a fault that never goes ends the run with the reason after the usual tries.

mod engine_common;

use engine_common::*;
use mailferry_e2e::proxy::Faults;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn busy_source(first_fetches: Option<u64>) -> Faults {
    Faults {
        busy_body_fetch: Some(Duration::from_secs(1)),
        busy_body_fetches: first_fetches,
        ..Faults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_busy_forever_on_its_first_body_fetch_is_stopped_retried_and_copied_exactly() {
    let (pair, seeded, before) = seeded_pair().await;
    let proxy = pair
        .proxy(Side::Source, busy_source(Some(1)))
        .await
        .unwrap();
    let started = Instant::now();
    let run = tokio::time::timeout(
        Duration::from_secs(120),
        pair.migrate_through(Side::Source, &proxy, &["--stall-timeout", "3"]),
    )
    .await
    .expect("the run hung: the watchdog did not stop it")
    .unwrap();
    eprintln!(
        "took {:?}; stderr:\n{}",
        started.elapsed(),
        run.stderr.trim_end()
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains("no progress for 3 s (last: ") && run.stderr.contains("; retrying"),
        "the reason is not in the log: {}",
        run.stderr
    );
    assert!(
        proxy.stats().connections.load(Ordering::SeqCst) > 3,
        "the retry opened new connections"
    );
    assert_eq!(run.count("copied"), seeded);
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_busy_forever_on_every_connection_ends_the_run_with_the_reason() {
    let (pair, _, _) = seeded_pair().await;
    let proxy = pair.proxy(Side::Source, busy_source(None)).await.unwrap();
    let started = Instant::now();
    let run = tokio::time::timeout(
        Duration::from_secs(120),
        pair.migrate_through(
            Side::Source,
            &proxy,
            &["--stall-timeout", "3", "--connections", "1"],
        ),
    )
    .await
    .expect("the run hung: the watchdog did not stop it")
    .unwrap();
    let took = started.elapsed();
    eprintln!("took {took:?}; {}", run.json);
    assert_eq!(run.code, Some(2), "{run:?}");
    let error = run.json["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("no progress for 3 s (last: copying ") && error.contains("stopped"),
        "{error}"
    );
    // Three tries of three seconds each, and not much more.
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(60),
        "{took:?}"
    );
    assert_eq!(
        run.stderr.matches("; retrying").count(),
        2,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("; giving up"), "{}", run.stderr);
}

/// What the watchdog prevents: the same fault without it hangs the run (the per-step
/// timeout never fires: the server keeps sending), bounded here by the test's own limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stall_timeout_a_busy_source_hangs_the_run() {
    let (pair, _, _) = seeded_pair().await;
    let proxy = pair.proxy(Side::Source, busy_source(None)).await.unwrap();
    let hung = tokio::time::timeout(
        Duration::from_secs(25),
        pair.migrate_through(Side::Source, &proxy, &["--stall-timeout", "0"]),
    )
    .await;
    assert!(
        hung.is_err(),
        "the run ended although the source never answered: {hung:?}"
    );
    assert!(proxy.stats().commands.load(Ordering::SeqCst) > 0);
}
