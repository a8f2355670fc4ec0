//! A hostile or broken server must not take the process down: the real `mailferry
//! migrate` and a real portal against scripted servers that lie about lengths, nest
//! without end, flood, drip and name billions of UIDs. Each run must end on its own,
//! within a bound, with a clear error, without aborting and with little memory.

use mailferry_e2e::hostile::{run_bounded, Finished, HostileServer, Hostility};
use mailferry_e2e::portal::{mailferry_bin, Portal};
use std::process::Command;
use std::time::{Duration, Instant};

/// The per-step timeout given to every run (seconds); a command's overall deadline is
/// ten times that.
const TIMEOUT: u64 = 1;
/// No run may take longer than this; a hang is killed and fails the test.
const BOUND: Duration = Duration::from_secs(60);
/// Peak memory a run may reach (KiB): the binary itself needs about 30 MiB.
const MAX_RSS_KB: u64 = 200 * 1024;

fn migrate(source: u16, target: u16, extra: &[&str]) -> Finished {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(mailferry_bin());
    cmd.arg("migrate")
        .arg("--from")
        .arg(format!("imap://alice@127.0.0.1:{source}"))
        .arg("--to")
        .arg(format!("imap://alice@127.0.0.1:{target}"))
        .arg("--allow-plaintext")
        .arg("--db")
        .arg(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("map.db").display()
        ))
        .arg("--timeout")
        .arg(TIMEOUT.to_string())
        .arg("--json")
        .args(extra)
        .env("MAILFERRY_FROM_PASSWORD", "secret-one")
        .env("MAILFERRY_TO_PASSWORD", "secret-two")
        .env("MAILFERRY_LOG", "warn")
        .env_remove("MAILFERRY_DATABASE_URL");
    run_bounded(cmd, BOUND).expect("run mailferry migrate")
}

/// The run ended by itself with a non-zero exit code, no signal, small memory, and
/// `needle` (what the server did) in its output.
fn assert_clean_failure(run: &Finished, needle: &str) {
    let all = format!("{}\n{}", run.stdout, run.stderr);
    assert!(!run.timed_out, "still running after {BOUND:?}:\n{all}");
    assert_eq!(run.signal, None, "killed by a signal:\n{all}");
    assert!(
        run.code.is_some_and(|c| c != 0),
        "exit code {:?}, wanted a failure:\n{all}",
        run.code
    );
    for bad in ["memory allocation", "stack overflow", "panicked"] {
        assert!(!all.contains(bad), "{bad:?} in the output:\n{all}");
    }
    assert!(
        run.max_rss_kb < MAX_RSS_KB,
        "peak memory {} KiB:\n{all}",
        run.max_rss_kb
    );
    assert!(all.contains(needle), "{needle:?} not in the output:\n{all}");
    assert!(
        !all.contains("secret-one") && !all.contains("secret-two"),
        "a password in the output:\n{all}"
    );
}

#[test]
fn greeting_announcing_a_terabyte_literal_fails_the_run_without_allocating_it() {
    let bad = HostileServer::start(Hostility::HugeGreetingLiteral).unwrap();
    let tame = HostileServer::start(Hostility::Tame).unwrap();
    let run = migrate(bad.port(), tame.port(), &[]);
    assert_clean_failure(
        &run,
        "announced a literal of 1099511627776 bytes before login",
    );
}

#[test]
fn deeply_nested_greeting_is_a_parse_error_not_a_stack_overflow() {
    let bad = HostileServer::start(Hostility::DeepNesting).unwrap();
    let tame = HostileServer::start(Hostility::Tame).unwrap();
    let run = migrate(tame.port(), bad.port(), &[]);
    assert_clean_failure(&run, "lists nested too deeply");
}

#[test]
fn endless_untagged_flood_is_cut_off_with_a_clear_error() {
    let bad = HostileServer::start(Hostility::UntaggedFlood).unwrap();
    let tame = HostileServer::start(Hostility::Tame).unwrap();
    let run = migrate(bad.port(), tame.port(), &[]);
    assert_clean_failure(&run, "in reply to LIST");
}

#[test]
fn greeting_dripping_bytes_without_a_line_end_times_out() {
    let bad = HostileServer::start(Hostility::ByteDrip).unwrap();
    let tame = HostileServer::start(Hostility::Tame).unwrap();
    let run = migrate(bad.port(), tame.port(), &[]);
    assert_clean_failure(&run, "no answer within 1 s");
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}

#[test]
fn server_dripping_lines_forever_hits_the_command_deadline() {
    let bad = HostileServer::start(Hostility::LineDrip).unwrap();
    let tame = HostileServer::start(Hostility::Tame).unwrap();
    let run = migrate(bad.port(), tame.port(), &[]);
    assert_clean_failure(&run, "LIST did not finish within 10 s");
}

#[test]
fn body_far_above_its_listed_size_skips_the_message_not_the_job() {
    let bad = HostileServer::start(Hostility::HugeBody).unwrap();
    let tame = HostileServer::start(Hostility::HugeAppendUid).unwrap();
    let run = migrate(bad.port(), tame.port(), &[]);
    assert_clean_failure(&run, "announced a literal of 1099511627776 bytes");
    let json: serde_json::Value =
        serde_json::from_str(run.stdout.lines().last().unwrap_or("")).expect("JSON result");
    assert_eq!(json["skipped"], 1, "{json}");
    let reason = json["skipped_messages"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("listed as 22 bytes"), "{reason}");
}

#[test]
fn appenduid_naming_billions_of_uids_is_not_expanded() {
    let source = HostileServer::start(Hostility::Tame).unwrap();
    let bad = HostileServer::start(Hostility::HugeAppendUid).unwrap();
    let run = migrate(source.port(), bad.port(), &[]);
    // The APPENDUID is disbelieved; the copy is then looked for on the target, which
    // shows nothing: the message is reported, the run ends incomplete.
    let all = format!("{}\n{}", run.stdout, run.stderr);
    assert!(!run.timed_out && run.signal.is_none(), "{run:?}");
    assert!(
        run.max_rss_kb < MAX_RSS_KB,
        "peak memory {} KiB",
        run.max_rss_kb
    );
    assert!(!all.contains("memory allocation"), "{all}");
}

#[tokio::test]
async fn portal_check_against_a_hostile_server_answers_and_the_node_stays_up() {
    let servers = [
        HostileServer::start(Hostility::HugeGreetingLiteral).unwrap(),
        HostileServer::start(Hostility::DeepNesting).unwrap(),
        HostileServer::start(Hostility::ByteDrip).unwrap(),
    ];
    let tame = HostileServer::start(Hostility::Tame).unwrap();
    let timeout = 2;
    let mut config = String::from("workers = 1\n");
    for (i, s) in servers.iter().enumerate() {
        config.push_str(&format!(
            "[servers.bad{i}]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nallow_plaintext = true\ntimeout_seconds = {timeout}\n\
             [routes.r{i}]\nsource = \"bad{i}\"\ntarget = \"tame\"\nlabel = \"hostile {i}\"\n",
            s.port()
        ));
    }
    config.push_str(&format!(
        "[servers.tame]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nallow_plaintext = true\ntimeout_seconds = {timeout}\n",
        tame.port()
    ));
    let portal = Portal::start_with_config(&config).await.unwrap();
    let api = mailferry_e2e::api::Api::new(&portal.url(""));
    // The byte drip is a plain timeout, which the portal words as "cannot be reached".
    for (i, expected) in [
        "1099511627776 bytes before login",
        "nested too deeply",
        "cannot be reached",
    ]
    .iter()
    .enumerate()
    {
        let started = Instant::now();
        let answer = api
            .post(
                "/api/check",
                &serde_json::json!({"route": format!("r{i}"), "side": "source", "user": "alice", "password": "secret-one"}),
            )
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2 * timeout),
            "route r{i}: /api/check took {took:?}"
        );
        assert!(
            answer.body.contains(expected),
            "route r{i}: {} {}",
            answer.status,
            answer.body
        );
        assert!(!answer.body.contains("secret-one"), "{}", answer.body);
        let health = api.get("/api/health").await.unwrap();
        assert_eq!(health.status, 200, "the node is down after route r{i}");
    }
    let log = portal.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
