//! One connection's view of a server, through the fault proxy in front of a real Dovecot:
//! the capabilities a server shows only after login are the ones the session uses.

mod engine_common;

use engine_common::*;
use mailferry_e2e::proxy::Faults;
use std::sync::{Arc, Mutex};

/// Literal announcements over 4 KiB in the APPEND lines: (synchronising, not).
fn large_literals(lines: &Mutex<Vec<String>>) -> (usize, usize) {
    let lines = lines.lock().unwrap();
    let (mut sync, mut nonsync) = (0, 0);
    for line in lines.iter() {
        let Some(open) = line.rfind('{') else {
            continue;
        };
        let inner = line[open + 1..].trim_end().trim_end_matches('}');
        let Ok(n) = inner.trim_end_matches(['+', '-']).parse::<u64>() else {
            continue;
        };
        if n > 4096 {
            if inner.ends_with('+') {
                nonsync += 1
            } else {
                sync += 1
            }
        }
    }
    (sync, nonsync)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_shown_only_after_login_are_used() {
    let (pair, seeded, before) = seeded_pair().await;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let hidden: Vec<String> = ["UIDPLUS", "MULTIAPPEND", "LITERAL+", "LITERAL-"]
        .map(String::from)
        .to_vec();
    let (proxy, run) = pair
        .copy_through(
            Side::Target,
            Faults {
                hide_before_login: hidden,
                append_lines: Some(lines.clone()),
                ..Faults::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    let commands = proxy.stats().commands_logged();
    let verbs: Vec<String> = commands.iter().map(|c| c.verb.clone()).collect();
    let appends = verbs.iter().filter(|v| *v == "APPEND").count();
    let literals = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.trim_end().ends_with('}'))
        .count();
    let (sync, nonsync) = large_literals(&lines);
    let asked = verbs.iter().filter(|v| *v == "CAPABILITY").count();
    let scans = verbs
        .iter()
        .filter(|v| v.starts_with("UID SEARCH") || *v == "SEARCH")
        .count();
    eprintln!(
        "CAPABILITY asked {asked}x; {appends} APPENDs carried {literals} messages; large literals sync {sync}, non-sync {nonsync}; searches {scans}"
    );
    assert!(asked >= 1, "the post-login set was asked for: {verbs:?}");
    // MULTIAPPEND: several messages in one APPEND; LITERAL+: large literals not waited for.
    assert!(
        literals > appends,
        "MULTIAPPEND used: {appends} APPENDs, {literals} messages"
    );
    assert!(
        nonsync >= 4 && sync == 0,
        "LITERAL+ used (sync {sync}, non-sync {nonsync})"
    );
    pair.assert_exact_copy(&before).await;
}
