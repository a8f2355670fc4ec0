//! The wire and session gaps of issue 15, through the fault proxy in front of a real
//! Dovecot: an untagged reply while waiting for a literal's `+`, a server that advertises
//! LITERAL+ but refuses large non-synchronising literals, and INTERNALDATE as sent.

mod engine_common;

use engine_common::*;
use mailferry_e2e::proxy::{FaultProxy, Faults};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// No copy of the seeded mailbox takes this long, even on a busy machine.
const RUN_LIMIT: Duration = Duration::from_secs(180);

async fn copy_to_target(pair: &Pair, faults: Faults) -> (FaultProxy, Run, Duration) {
    let proxy = pair.proxy(Side::Target, faults).await.unwrap();
    let started = Instant::now();
    let run = tokio::time::timeout(RUN_LIMIT, pair.migrate_through(Side::Target, &proxy, &[]))
        .await
        .unwrap_or_else(|_| panic!("the copy did not finish within {RUN_LIMIT:?} (a hang)"))
        .unwrap();
    (proxy, run, started.elapsed())
}

fn recorder() -> Arc<Mutex<Vec<String>>> {
    Arc::new(Mutex::new(Vec::new()))
}

/// Announcements of literals over 4 KiB in the APPEND lines: (synchronising, not).
fn large_literals(lines: &Mutex<Vec<String>>) -> (usize, usize) {
    let lines = lines.lock().unwrap();
    let mut sync = 0;
    let mut nonsync = 0;
    for line in lines.iter() {
        let Some(open) = line.rfind('{') else {
            continue;
        };
        let inner = line[open + 1..].trim_end_matches('}');
        let plus = inner.ends_with('+');
        let Ok(n) = inner.trim_end_matches(['+', '-']).parse::<u64>() else {
            continue;
        };
        if n > 4096 {
            if plus {
                nonsync += 1
            } else {
                sync += 1
            }
        }
    }
    (sync, nonsync)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untagged_reply_before_the_continuation_does_not_hang_the_copy() {
    let (pair, seeded, before) = seeded_pair().await;
    let lines = recorder();
    let (proxy, run, took) = copy_to_target(
        &pair,
        Faults {
            // Every literal over 4 KiB must wait for `+`, and `* 1 EXISTS` comes first.
            hide_capabilities: vec!["LITERAL+".into(), "LITERAL-".into()],
            untagged_before_continue: Some("* 1 EXISTS".into()),
            append_lines: Some(lines.clone()),
            ..Faults::default()
        },
    )
    .await;
    eprintln!("copy with an EXISTS before every +: {took:?}");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    let (sync, nonsync) = large_literals(&lines);
    assert!(
        sync >= 4 && nonsync == 0,
        "large literals waited for + (sync {sync}, non-sync {nonsync})"
    );
    // The engine really met an untagged reply before each large literal's `+`.
    let injected = proxy.stats().injected_untagged.load(Ordering::SeqCst);
    assert!(
        injected >= sync as u64,
        "{injected} untagged replies put before a +"
    );
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_refusing_large_non_synchronising_literals_gets_synchronising_ones() {
    let (pair, seeded, before) = seeded_pair().await;
    let lines = recorder();
    let (proxy, run, took) = copy_to_target(
        &pair,
        Faults {
            refuse_nonsync_literals_over: Some(4096),
            append_lines: Some(lines.clone()),
            ..Faults::default()
        },
    )
    .await;
    let refusals = proxy.stats().refusals.load(Ordering::SeqCst);
    let connections = proxy.stats().connections.load(Ordering::SeqCst);
    eprintln!("copy with {{n+}} over 4 KiB refused: {took:?}, {refusals} refusals over {connections} connections");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert_eq!(run.count("skipped"), 0);
    // Refused once, then remembered for every later connection of the run.
    assert_eq!(refusals, 1, "{connections} connections");
    let (sync, nonsync) = large_literals(&lines);
    assert!(sync >= 4 && nonsync == 1, "sync {sync}, non-sync {nonsync}");
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_closing_on_a_large_non_synchronising_literal_gets_synchronising_ones() {
    let (pair, seeded, before) = seeded_pair().await;
    let lines = recorder();
    let (proxy, run, took) = copy_to_target(
        &pair,
        Faults {
            refuse_nonsync_literals_over: Some(4096),
            refuse_nonsync_with_bye: true,
            append_lines: Some(lines.clone()),
            ..Faults::default()
        },
    )
    .await;
    let refusals = proxy.stats().refusals.load(Ordering::SeqCst);
    eprintln!("copy with BYE [TOOBIG] on {{n+}} over 4 KiB: {took:?}, {refusals} refusals");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert_eq!(refusals, 1);
    assert_eq!(large_literals(&lines).1, 1);
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_digit_day_goes_with_its_leading_space() {
    let (pair, seeded, before) = seeded_pair().await;
    // The source writes one-digit days space-padded (`" 5-Mar-2010 ..."`), as the
    // grammar's date-day-fixed does; the target records every APPEND line.
    let source = pair
        .proxy(
            Side::Source,
            Faults {
                space_padded_days: true,
                ..Faults::default()
            },
        )
        .await
        .unwrap();
    let lines = recorder();
    let target = pair
        .proxy(
            Side::Target,
            Faults {
                append_lines: Some(lines.clone()),
                ..Faults::default()
            },
        )
        .await
        .unwrap();
    let run = tokio::time::timeout(RUN_LIMIT, pair.migrate(source.port(), target.port(), &[]))
        .await
        .expect("the copy finished")
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    assert!(
        source.stats().rewritten_lines.load(Ordering::SeqCst) > 0,
        "the source sent padded days"
    );
    let lines = lines.lock().unwrap().clone();
    // The seeded days are 1 to 12 in each of 4 folders: days 1 to 9 keep their space.
    let padded = lines.iter().filter(|l| l.contains("\" 5-Mar-20")).count();
    let one_digit = (1..=9)
        .map(|d| {
            lines
                .iter()
                .filter(|l| l.contains(&format!("\" {d}-Mar-20")))
                .count()
        })
        .sum::<usize>();
    assert_eq!((padded, one_digit), (4, 36), "{lines:#?}");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\"5-Mar-20") || l.contains("\"05-Mar-20")),
        "{lines:#?}"
    );
    pair.assert_exact_copy(&before).await;
}
