//! What the target holds after APPEND, against a real Dovecot behind the fault proxy:
//! flags a target forgets at APPEND (as Exchange forgets `\Flagged`) are given again and
//! what it never keeps is reported; on a target that rewrites what it stores (as Exchange
//! converts messages) and loses APPEND replies, nothing is copied twice. Also the cost of
//! the read-back (ignored by default: a 2,000-message copy with and without it).

mod engine_common;

use engine_common::*;
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::imap_client::{connect, Account};
use mailferry_e2e::proxy::Faults;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

fn message(n: u32, subject: &str) -> Vec<u8> {
    format!(
        "From: a@example.org\r\nMessage-ID: <readback.{n}@example.org>\r\nSubject: {subject}\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

fn flags(v: &[&str]) -> Vec<String> {
    v.iter().map(|f| f.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_the_target_forgot_are_stored_again_and_what_it_never_keeps_is_reported() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let given = [
        flags(&["\\Flagged", "\\Seen"]),
        flags(&["$Foo"]),
        flags(&["$Bar", "\\Answered"]),
        flags(&["\\Seen"]),
    ];
    for (n, f) in given.iter().enumerate() {
        append_one(
            &pair.source_account(),
            "INBOX",
            &message(n as u32, "flags"),
            f,
        )
        .await
        .unwrap();
    }
    let json = scratch_file(&pair, "map.json");
    let (_proxy, run) = pair
        .copy_through(
            Side::Target,
            Faults {
                drop_append_flags: flags(&["\\Flagged", "$Foo"]),
                never_keep_flags: flags(&["$Bar"]),
                ..Faults::default()
            },
            &["--export-map", json.to_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (4, 0, 0), "{}", run.json);
    let held: Vec<Vec<String>> = snapshot(&pair.target_account()).await.unwrap()["INBOX"]
        .iter()
        .map(|m| m.flags.clone())
        .collect();
    eprintln!("target flags: {held:?}; altered: {}", run.json["altered"]);
    let mut expected = vec![
        flags(&["\\Flagged", "\\Seen"]),
        flags(&["$Foo"]),
        flags(&["\\Answered"]),
        flags(&["\\Seen"]),
    ];
    let mut held = held;
    held.sort();
    expected.sort();
    assert_eq!(
        held, expected,
        "forgotten flags given again; $Bar never kept"
    );
    assert_eq!(
        run.json["altered"],
        serde_json::json!(["INBOX UID 3: keyword $Bar not kept by the target"])
    );
    // The map records what the target holds, not what was sent.
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let mut recorded: Vec<(u64, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["source_uid"].as_u64().unwrap(),
                r["flags"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    recorded.sort();
    assert_eq!(
        recorded,
        vec![
            (1, "\\flagged \\seen".to_string()),
            (2, "$Foo".to_string()),
            (3, "\\answered".to_string()),
            (4, "\\seen".to_string()),
        ],
        "{rows}"
    );
}

/// Every message of an account: folder -> (Message-ID or "(none)") -> how many.
async fn message_ids(account: &Account) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut conn = connect(account).await.unwrap();
    let mut out = BTreeMap::new();
    for entry in conn.list().await.unwrap() {
        if entry.has("\\Noselect") || entry.has("\\NonExistent") {
            continue;
        }
        conn.examine(&entry.name).await.unwrap();
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        for m in conn.fetch_all().await.unwrap() {
            let text = String::from_utf8_lossy(&m.body).into_owned();
            let header = text.split("\r\n\r\n").next().unwrap_or("");
            let id = header
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("message-id")
                        .then(|| value.trim().to_string())
                })
                .unwrap_or_else(|| "(none)".into());
            *ids.entry(id).or_default() += 1;
        }
        out.insert(entry.name.replace('.', "/"), ids);
    }
    conn.logout().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewriting_target_that_loses_append_replies_gets_no_duplicates() {
    let (pair, seeded, _before) = seeded_pair().await;
    let source_ids = message_ids(&pair.source_account()).await;
    let (proxy, run) = pair
        .copy_through(
            Side::Target,
            Faults {
                rewrite_appended: true,
                drop_every: Some(10),
                ..Faults::default()
            },
            // One folder at a time: the same commands in the same order each run, so the
            // same APPENDs lose their reply.
            &["--connections", "1"],
        )
        .await
        .unwrap();
    let lost = proxy.stats().lost_append_replies.load(Ordering::SeqCst);
    let target_ids = message_ids(&pair.target_account()).await;
    let count = |m: &BTreeMap<String, BTreeMap<String, usize>>| -> usize {
        m.values().flat_map(|ids| ids.values()).sum()
    };
    eprintln!(
        "lost APPEND replies: {lost}; source {} messages, target {}; run: {}",
        count(&source_ids),
        count(&target_ids),
        run.json
    );
    assert!(
        lost > 0,
        "no APPEND reply was lost: the test proves nothing"
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded, "{}", run.json);
    assert_eq!(count(&target_ids), count(&source_ids), "no duplicates");
    assert_eq!(
        target_ids, source_ids,
        "every source Message-ID as often as on the source"
    );
}

/// The read-back's cost: the same 2,000-message copy between two Dovecots with and
/// without it (`--no-read-back`), each into a fresh target account. Prints the figures.
/// `cargo test -p mailferry-e2e --test engine_readback -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures, asserts only that both copies are whole"]
async fn read_back_cost_on_two_thousand_messages() {
    use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
    let count: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    seed_mailbox(&pair.source_account(), &SeedSpec::new(2026, count))
        .await
        .unwrap();
    let mut n = 0;
    for round in 1..=rounds {
        for (label, extra) in [
            ("with read-back", vec![]),
            ("without", vec!["--no-read-back"]),
        ] {
            n += 1;
            let user = format!("bench{n}");
            pair.target.add_user(&user, "bench-secret").unwrap();
            let db = scratch_file(&pair, &format!("bench{n}.db"));
            let started = std::time::Instant::now();
            let run = run_to_end(migrate_command(
                (SOURCE_USER, SOURCE_PASSWORD, pair.source.imap_port()),
                (&user, "bench-secret", pair.target.imap_port()),
                &format!("sqlite://{}?mode=rwc", db.display()),
                &extra,
            ))
            .await
            .unwrap();
            let took = started.elapsed();
            assert_eq!(run.code, Some(0), "{run:?}");
            assert_eq!(run.count("copied"), count as u64, "{}", run.json);
            eprintln!(
                "round {round}: {count} messages {label}: {:.2} s ({:.0} messages/s)",
                took.as_secs_f64(),
                count as f64 / took.as_secs_f64()
            );
        }
    }
}
