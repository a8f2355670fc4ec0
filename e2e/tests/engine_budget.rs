//! The node's budget of message bytes in flight (`--memory-budget-mb`), against real
//! Dovecots: a message larger than the whole budget is still copied exactly (alone), and
//! folders copied at once never hold more than the budget together. What was in flight
//! is read from the figure the engine keeps (`peak_bytes_in_flight` in the JSON result),
//! not from timing.

mod engine_common;

use engine_common::*;
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::imap_client::{connect, AppendItem};
use mailferry_e2e::seed::sized_message;

fn message(n: usize, size: usize) -> Vec<u8> {
    sized_message(n, size)
}

/// Appends `(folder, body, flags, date)` to the source (folders other than INBOX made first).
async fn seed(pair: &Pair, messages: &[(&str, Vec<u8>, Vec<String>, &str)]) {
    let mut conn = connect(&pair.source_account()).await.unwrap();
    let mut made = std::collections::HashSet::new();
    for (folder, ..) in messages {
        if *folder != "INBOX" && made.insert(*folder) {
            conn.create(folder).await.unwrap();
        }
    }
    let items: Vec<AppendItem<'_>> = messages
        .iter()
        .map(|(folder, body, flags, date)| AppendItem {
            mailbox: folder,
            flags,
            internal_date: Some(date),
            bytes: body,
        })
        .collect();
    for r in conn.append_pipelined(&items).await.unwrap() {
        r.unwrap();
    }
    conn.logout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_the_budget_is_copied_exactly_and_alone() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let large = message(0, 3_000_000);
    let mut messages = Vec::new();
    for n in 1..=12 {
        let flags = if n % 2 == 0 {
            vec!["\\Seen".to_owned()]
        } else {
            Vec::new()
        };
        messages.push((
            "INBOX",
            message(n, 150_000),
            flags,
            "15-Jun-2021 12:00:00 +0200",
        ));
        if n == 6 {
            messages.push((
                "INBOX",
                large.clone(),
                vec!["\\Flagged".to_owned(), "$Label1".to_owned()],
                " 3-Feb-2020 08:09:10 +0100",
            ));
        }
    }
    seed(&pair, &messages).await;
    let before = snapshot(&pair.source_account()).await.unwrap();

    let run = pair
        .migrate_direct(&["--memory-budget-mb", "1"])
        .await
        .unwrap();
    println!("{}", run.json);
    assert_eq!(run.code, Some(0), "{}\n{}", run.json, run.stderr);
    assert_eq!(run.copied_skipped_failed(), (13, 0, 0), "{}", run.json);
    // Byte-identical, with flags and internal dates, nothing else on the target.
    pair.assert_exact_copy(&before).await;

    assert_eq!(run.count("memory_budget_bytes"), 1 << 20);
    // While the large message was in flight nothing else was: the most in flight at
    // once is exactly its size (listed RFC822.SIZE, which Dovecot gives as sent).
    assert_eq!(
        run.count("peak_bytes_in_flight"),
        large.len() as u64,
        "{}",
        run.json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_copied_at_once_stay_within_the_budget_together() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let mut messages = Vec::new();
    for (f, folder) in ["INBOX", "Archive", "Sent"].into_iter().enumerate() {
        for n in 0..30 {
            messages.push((
                folder,
                message(f * 100 + n, 60_000 + n * 1_000),
                Vec::new(),
                "15-Jun-2021 12:00:00 +0200",
            ));
        }
    }
    seed(&pair, &messages).await;
    let before = snapshot(&pair.source_account()).await.unwrap();
    let total: u64 = messages.iter().map(|m| m.1.len() as u64).sum();

    let run = pair
        .migrate_direct(&["--memory-budget-mb", "1", "--connections", "3"])
        .await
        .unwrap();
    println!("{}", run.json);
    assert_eq!(run.code, Some(0), "{}\n{}", run.json, run.stderr);
    assert_eq!(run.copied_skipped_failed(), (90, 0, 0), "{}", run.json);
    pair.assert_exact_copy(&before).await;

    let budget = run.count("memory_budget_bytes");
    let peak = run.count("peak_bytes_in_flight");
    assert_eq!(budget, 1 << 20);
    assert!(total > 5 * budget, "the mailbox is several budgets large");
    assert!(peak > 0, "{}", run.json);
    assert!(
        peak <= budget,
        "{peak} bytes were in flight at once, over the budget of {budget}"
    );
}
