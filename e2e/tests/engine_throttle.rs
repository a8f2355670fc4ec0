//! Servers that refuse for now (throttling, "Server Unavailable", `[UNAVAILABLE]` logins),
//! refuse one message of a batch or one keyword, or sit behind a slow or dead link,
//! reproduced by the fault proxy in front of a real Dovecot. The copy waits what the
//! server asked (the proxy's log shows how long), skips nothing it need not, and is exact.

mod engine_common;

use engine_common::*;
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::proxy::{Faults, LoggedCommand, Refuse, Refused};
use std::sync::atomic::Ordering;
use std::time::Duration;

const THROTTLED: &str = "Request is throttled. Suggested Backoff Time: 1500 milliseconds";
const SUGGESTED: Duration = Duration::from_millis(1500);

/// Every second `command` answered `{answer} {THROTTLED}` (`answer`: `NO` or `BAD`).
fn throttled(command: Refused, answer: &str) -> Faults {
    Faults::refusing(Refuse::every(command, &format!("{answer} {THROTTLED}"), 2))
}

/// For every command the proxy refused that `kind` picks, the gap until the same kind of
/// command came again on that connection. Panics if one was never sent again.
fn retry_gaps(log: &[LoggedCommand], kind: impl Fn(&LoggedCommand) -> bool) -> Vec<Duration> {
    let mut gaps = Vec::new();
    for (i, refused) in log.iter().enumerate() {
        if refused.refused.is_none() || !kind(refused) {
            continue;
        }
        let again = log[i + 1..]
            .iter()
            .find(|c| c.connection == refused.connection && kind(c))
            .unwrap_or_else(|| panic!("{refused:?} was never sent again on its connection"));
        gaps.push(again.at.duration_since(refused.at));
    }
    gaps
}

fn is_body_fetch(c: &LoggedCommand) -> bool {
    c.fetches_body
}

fn is_append(c: &LoggedCommand) -> bool {
    c.verb == "APPEND"
}

/// Runs a copy with `faults` in front of `side`, and checks that it is exact with nothing
/// skipped; returns the proxy's log.
async fn exact_through(side: Side, faults: Faults) -> Vec<LoggedCommand> {
    let (pair, seeded, before) = seeded_pair().await;
    let (proxy, run) = pair.copy_through(side, faults, &[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (seeded, 0, 0));
    assert!(
        proxy.stats().refusals.load(Ordering::SeqCst) > 0,
        "the fault happened"
    );
    pair.assert_exact_copy(&before).await;
    proxy.stats().commands_logged()
}

fn assert_waited(gaps: &[Duration]) {
    assert!(!gaps.is_empty(), "some command was refused and sent again");
    for gap in gaps {
        assert!(
            *gap >= SUGGESTED,
            "sent again after {gap:?}, before the suggested {SUGGESTED:?}"
        );
    }
    eprintln!("retries came after {gaps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_fetches_throttled_with_no_wait_the_suggested_time_and_copy_exactly() {
    let log = exact_through(Side::Source, throttled(Refused::FetchBody, "NO")).await;
    assert_waited(&retry_gaps(&log, is_body_fetch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_fetches_throttled_with_bad_are_retried_in_the_same_form() {
    let log = exact_through(Side::Source, throttled(Refused::FetchBody, "BAD")).await;
    assert_waited(&retry_gaps(&log, is_body_fetch));
    // A throttling BAD says nothing about the fetch form: BODY.PEEK[] stays in use.
    let forms: Vec<&str> = log
        .iter()
        .filter(|c| c.fetches_body)
        .filter_map(|c| c.items.as_deref())
        .collect();
    assert!(!forms.is_empty());
    assert!(
        forms.iter().all(|f| f.contains("BODY.PEEK[]")),
        "the form was given up: {forms:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_throttled_wait_the_suggested_time_and_copy_exactly() {
    let log = exact_through(Side::Target, throttled(Refused::Append, "NO")).await;
    assert_waited(&retry_gaps(&log, is_append));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_unavailable_every_few_commands_and_unavailable_logins_copy_exactly() {
    let (pair, seeded, before) = seeded_pair().await;
    let faults = || Faults {
        refuse: vec![
            Refuse::first(
                Refused::Login,
                "NO [UNAVAILABLE] Temporary authentication failure",
                2,
            ),
            Refuse::every(Refused::Any, "NO Server Unavailable. 15", 6),
        ],
        ..Faults::default()
    };
    let src = pair.proxy(Side::Source, faults()).await.unwrap();
    let dst = pair.proxy(Side::Target, faults()).await.unwrap();
    let run = pair.migrate(src.port(), dst.port(), &[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (seeded, 0, 0));
    for proxy in [&src, &dst] {
        let log = proxy.stats().commands_logged();
        let refused_logins = log
            .iter()
            .filter(|c| c.verb == "LOGIN" && c.refused.is_some())
            .count();
        let unavailable = log
            .iter()
            .filter(|c| c.refused.as_deref() == Some("NO Server Unavailable. 15"))
            .count();
        assert!(refused_logins >= 2, "{refused_logins} logins refused");
        assert!(unavailable > 0, "Server Unavailable was answered");
        eprintln!(
            "{refused_logins} logins refused, {unavailable} commands answered Server Unavailable"
        );
    }
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_past_patience_pauses_with_the_servers_words_and_a_rerun_is_exact() {
    let (pair, seeded, before) = seeded_pair().await;
    let words = "NO Request is throttled. Suggested Backoff Time: 500 milliseconds";
    let proxy = pair
        .proxy(
            Side::Source,
            Faults::refusing(Refuse::every(Refused::FetchBody, words, 1)),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let run = pair
        .migrate_from(proxy.port(), &["--patience", "5"])
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(run.code, Some(4), "{run:?}");
    let error = run.json["error"].as_str().unwrap_or("");
    assert!(error.contains("asked to slow down"), "{error}");
    assert!(error.contains(words), "the server's words: {error}");
    // It pauses when the next wait would go past the patience: within one wait of it.
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(60),
        "patience of 5 s, ended after {took:?}"
    );
    eprintln!("paused after {took:?}: {error}");
    // Nothing was skipped: the map holds no skips, so a run without the fault copies
    // every message exactly once.
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!((run.count("copied"), run.count("skipped")), (seeded, 0));
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_for_one_message_copies_the_others_and_skips_only_that_one() {
    let (pair, seeded, before) = seeded_pair().await;
    let (proxy, run) = pair
        .copy_through(
            Side::Target,
            Faults::refusing(Refuse::every(
                Refused::AppendContaining("Subject: message 2 in Sent\r\n".into()),
                "NO Invalid message: refused by content policy",
                1,
            )),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (seeded - 1, 1, 0));
    let skipped = &run.json["skipped_messages"][0];
    assert_eq!(
        (skipped["folder"].as_str(), skipped["uid"].as_u64()),
        (Some("Sent"), Some(3))
    );
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap_or("")
            .contains("Invalid message: refused by content policy"),
        "{skipped}"
    );
    let log = proxy.stats().commands_logged();
    assert!(
        log.iter().any(|c| c.refused.is_some() && c.messages > 1),
        "a MULTIAPPEND was refused"
    );
    assert!(
        log.iter().any(|c| c.refused.is_some() && c.messages == 1),
        "then the message alone"
    );
    pair.assert_exact_copy_but_skipped(&before, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_keyword_is_left_off_and_the_message_copied() {
    let (pair, seeded, before) = seeded_pair().await;
    let (proxy, run) = pair
        .copy_through(
            Side::Target,
            Faults::refusing(Refuse::every(
                Refused::AppendWithFlag("Work".into()),
                "NO [CANNOT] Keyword not allowed: Work",
                1,
            )),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!((run.count("copied"), run.count("skipped")), (seeded, 0));
    assert!(proxy.stats().refusals.load(Ordering::SeqCst) > 0);
    // Exactly the source, but without the keyword the target refused.
    let mut expected = before.clone();
    let mut with_work = 0;
    for msgs in expected.values_mut() {
        for m in msgs.iter_mut() {
            let n = m.flags.len();
            m.flags.retain(|f| f != "Work");
            with_work += n - m.flags.len();
        }
        msgs.sort();
    }
    assert!(with_work > 0, "the seed has messages with the keyword");
    assert_same(&expected, &snapshot(&pair.target_account()).await.unwrap());
    // The report lists each of them: on the target, but without the keyword.
    let altered = run.json["altered"].as_array().cloned().unwrap_or_default();
    assert_eq!(altered.len(), with_work, "{}", run.json);
    assert!(
        altered.iter().all(|a| a.as_str().is_some_and(|a| a
            .contains("copied without the flag Work")
            && a.contains("Keyword not allowed"))),
        "{altered:?}"
    );
    assert_eq!(snapshot(&pair.source_account()).await.unwrap(), before);
}

/// A message of `size` bytes (headers and numbered lines).
fn big_message(size: usize) -> Vec<u8> {
    let mut body =
        b"From: big@example.org\r\nSubject: [huge]\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    let mut n = 0u64;
    while body.len() < size {
        body.extend_from_slice(
            format!("line {n:09} of a very large message .........\r\n").as_bytes(),
        );
        n += 1;
    }
    body
}

/// A target without UIDPLUS says nothing of where an APPEND went, so the engine looks for
/// the message by size and content: a message larger than the cap on ordinary replies
/// (8 MiB) is still found, copied once and exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_is_found_on_a_target_without_uidplus() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    append_one(&pair.source_account(), "INBOX", &big_message(12 << 20), &[])
        .await
        .unwrap();
    let before = snapshot(&pair.source_account()).await.unwrap();
    let proxy = pair
        .proxy(
            Side::Target,
            Faults {
                hide_capabilities: vec!["UIDPLUS".into()],
                ..Faults::default()
            },
        )
        .await
        .unwrap();
    let run = pair.migrate_to(proxy.port(), &[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (1, 0, 0));
    let again = pair.migrate_to(proxy.port(), &[]).await.unwrap();
    assert_eq!(again.copied_skipped_failed(), (0, 0, 0), "{again:?}");
    assert_same(&before, &snapshot(&pair.target_account()).await.unwrap());
}

/// A transfer far longer than the per-step timeout (here 5 s; 6 MB at 300 KB/s takes about
/// 20 s) goes through: each write only has to make progress within the step timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_takes_four_step_timeouts_to_send_over_a_slow_link_copies_exactly() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    append_one(&pair.source_account(), "INBOX", &big_message(6 << 20), &[])
        .await
        .unwrap();
    append_one(
        &pair.source_account(),
        "INBOX",
        b"Subject: small\r\n\r\nsmall\r\n",
        &[],
    )
    .await
    .unwrap();
    let before = snapshot(&pair.source_account()).await.unwrap();
    let proxy = pair
        .proxy(
            Side::Target,
            Faults {
                bandwidth: Some(300_000),
                ..Faults::default()
            },
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let run = pair
        .migrate_to(proxy.port(), &["--timeout", "5"])
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!((run.count("copied"), run.count("skipped")), (2, 0));
    // The link really was that slow: over three step timeouts.
    assert!(took > Duration::from_secs(15), "took {took:?}");
    eprintln!("6 MB over 300 KB/s in {took:?}");
    assert_same(&before, &snapshot(&pair.target_account()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_link_is_detected_by_the_progress_timeout_with_a_clear_error() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    append_one(&pair.source_account(), "INBOX", &big_message(24 << 20), &[])
        .await
        .unwrap();
    let proxy = pair
        .proxy(
            Side::Target,
            Faults {
                stall_after_bytes: Some(1 << 20),
                ..Faults::default()
            },
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let run = pair
        .migrate_to(proxy.port(), &["--timeout", "3"])
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!((run.count("copied"), run.count("skipped")), (0, 1));
    let reason = run.json["skipped_messages"][0]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(
        reason.contains("no progress for 3 s while sending APPEND")
            && reason.contains("the link is dead"),
        "{reason}"
    );
    assert!(took < Duration::from_secs(90), "detected in {took:?}");
    eprintln!("dead link detected, message skipped after {took:?}: {reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_portal_job_logs_each_wait_with_the_servers_words_and_completes() {
    use mailferry_e2e::api::Api;
    use mailferry_e2e::portal::Portal;
    use mailferry_shared::{JobEvent, JobEventKind, JobStatus, JobView};

    let (pair, _, before) = seeded_pair().await;
    let proxy = pair
        .proxy(Side::Source, throttled(Refused::FetchBody, "NO"))
        .await
        .unwrap();
    let config = format!(
        "workers = 1\n\
         [servers.old]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nallow_plaintext = true\n\
         [servers.new]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n\
         [routes.default]\nsource = \"old\"\ntarget = \"new\"\nlabel = \"Old to new\"\n",
        proxy.port(),
        pair.target.imaps_port(),
        pair.target.ca_pem_path().display(),
    );
    let portal = Portal::start_with_config(&config).await.unwrap();
    let api = Api::new(&portal.url(""));
    api.user_sign_in(
        (SOURCE_USER, SOURCE_PASSWORD),
        (TARGET_USER, TARGET_PASSWORD),
    )
    .await
    .unwrap();
    let mut stream = api.events("/api/my/job/events", None).await.unwrap();
    api.post_json::<_, JobView>("/api/my/job/start", &())
        .await
        .unwrap();
    let mut waits = Vec::new();
    let status = loop {
        let sse = tokio::time::timeout(Duration::from_secs(120), stream.next())
            .await
            .expect("an event within two minutes")
            .unwrap()
            .expect("the stream stays open");
        if sse.event != "job" {
            continue;
        }
        let event: JobEvent = serde_json::from_str(&sse.data).unwrap();
        match event.kind {
            JobEventKind::Waiting {
                side,
                words,
                since,
                until,
            } => waits.push((side, words, since, until)),
            JobEventKind::Status { status, .. } if status.is_settled() => break status,
            _ => {}
        }
    };
    assert_eq!(status, JobStatus::Synced);
    assert!(!waits.is_empty(), "the job log shows the waits");
    for (side, words, since, until) in &waits {
        assert_eq!(side, "source");
        assert_eq!(words, &format!("NO {THROTTLED}"));
        assert!(until > since, "waits until after it began: {since} {until}");
    }
    eprintln!("{} waits in the job log, e.g. {:?}", waits.len(), waits[0]);
    assert_same(&before, &snapshot(&pair.target_account()).await.unwrap());
}
