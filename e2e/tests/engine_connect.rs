//! Connecting as `mailferry migrate` does: implicit TLS and STARTTLS verified against a CA
//! file, master-user logins (`user*master` and SASL PLAIN with an authorization identity),
//! and fatal errors that say which side and why.

mod engine_common;

use engine_common::*;
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::portal::mailferry_bin;
use std::process::Stdio;

fn migrate(
    pair: &Pair,
    from: &str,
    to: &str,
    from_password: &str,
    extra: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(mailferry_bin());
    cmd.arg("migrate")
        .arg("--from")
        .arg(from)
        .arg("--to")
        .arg(to)
        .arg("--db")
        .arg(pair.db_url())
        .arg("--timeout")
        .arg("15")
        .arg("--json")
        .args(extra)
        .env("MAILFERRY_FROM_PASSWORD", from_password)
        .env("MAILFERRY_TO_PASSWORD", TARGET_PASSWORD)
        .env("MAILFERRY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn last_json(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|_| {
        panic!(
            "no JSON: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_starttls_with_a_ca_file_and_master_logins_work() {
    let pair = Pair::start(
        DovecotOptions {
            master_user: Some(("admin".into(), "master-secret".into())),
            ..DovecotOptions::default()
        },
        DovecotOptions::default(),
    )
    .unwrap();
    let seeded = seed_small(&pair.source_account(), '.').await.unwrap() as u64;
    // Source over STARTTLS as `alice*admin`, target over implicit TLS; the CA file names
    // the test CA (both servers' certificates come from the kit's PKI).
    let ca = pair.target.ca_pem_path().to_str().unwrap().to_owned();
    let source_ca = pair.source.ca_pem_path().to_str().unwrap().to_owned();
    let from = format!("imap://alice*admin@localhost:{}", pair.source.imap_port());
    let to = format!(
        "imaps://{TARGET_USER}@localhost:{}",
        pair.target.imaps_port()
    );
    // Both CAs differ per server: trust both by concatenating them.
    let both = pair.dir.path().join("cas.pem");
    let mut pem = std::fs::read(&source_ca).unwrap();
    pem.extend(std::fs::read(&ca).unwrap());
    std::fs::write(&both, pem).unwrap();
    let out = migrate(
        &pair,
        &from,
        &to,
        "master-secret",
        &["--ca-file", both.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    let json = last_json(&out);
    assert_eq!(out.status.code(), Some(0), "{json}");
    assert_eq!(json["copied"].as_u64(), Some(seeded));

    // SASL PLAIN with an authorization identity: the admin acts for alice (same job).
    let from = format!("imap://admin@localhost:{}", pair.source.imap_port());
    let out = migrate(
        &pair,
        &from,
        &to,
        "master-secret",
        &[
            "--ca-file",
            both.to_str().unwrap(),
            "--from-auth-as",
            "alice",
        ],
    )
    .output()
    .await
    .unwrap();
    let json = last_json(&out);
    assert_eq!(out.status.code(), Some(0), "{json}");
    assert_eq!(
        (json["copied"].as_u64(), json["already_present"].as_u64()),
        (Some(0), Some(seeded))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_errors_name_the_side_and_the_reason() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let to = format!("imap://{TARGET_USER}@127.0.0.1:{}", pair.target.imap_port());

    // A wrong password: exit status 2, the source and its host named.
    let from = format!("imap://{SOURCE_USER}@127.0.0.1:{}", pair.source.imap_port());
    let out = migrate(&pair, &from, &to, "wrong", &["--allow-plaintext"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let json = last_json(&out);
    let error = json["error"].as_str().unwrap();
    assert!(
        error.contains("source") && error.contains("login") && error.contains("127.0.0.1"),
        "{error}"
    );
    assert!(!error.contains("wrong"), "never echo a password: {error}");

    // TLS without trusting the test CA: refused, naming the target.
    let to_tls = format!(
        "imaps://{TARGET_USER}@localhost:{}",
        pair.target.imaps_port()
    );
    let out = migrate(
        &pair,
        &from,
        &to_tls,
        SOURCE_PASSWORD,
        &["--allow-plaintext"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = last_json(&out)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("target") && error.contains("TLS"), "{error}");

    // imap:// without --allow-plaintext insists on STARTTLS (and so on a trusted cert).
    let out = migrate(&pair, &from, &to, SOURCE_PASSWORD, &[])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
