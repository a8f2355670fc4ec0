//! Other users' and shared folders are not this mailbox: on Cyrus a folder that bob shared
//! with alice (an ACL) is in alice's LIST as `Other Users/bob/…`. Copying alice to a
//! Dovecot must leave it out of the plan, say why (dry run and report), and not create it.

mod engine_common;

use engine_common::{migrate_command, run_to_end, snapshot};
use mailferry_e2e::cyrus::Cyrus;
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::imap_client::{connect, AppendItem};
use mailferry_e2e::portal::mailferry_bin;
use std::process::Stdio;

const SHARED: &str = "Other Users/bob/Projects";

async fn append(account: &mailferry_e2e::imap_client::Account, folder: &str, subject: &str) {
    let mut conn = connect(account).await.unwrap();
    let body = format!("From: x@example.org\r\nSubject: {subject}\r\n\r\n{subject}\r\n");
    let items = [AppendItem {
        mailbox: folder,
        flags: &[],
        internal_date: None,
        bytes: body.as_bytes(),
    }];
    for r in conn.append_pipelined(&items).await.unwrap() {
        r.unwrap();
    }
    conn.logout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_another_user_shared_on_cyrus_is_left_out_with_the_reason() {
    let cyrus = Cyrus::start().unwrap();
    cyrus.add_user("alice", "alice-secret").unwrap();
    cyrus.add_user("bob", "bob-secret").unwrap();
    let dovecot = Dovecot::start(DovecotOptions::default()).unwrap();
    dovecot.add_user("alice", "target-secret").unwrap();
    let alice = cyrus.account("alice", "alice-secret");
    let bob = cyrus.account("bob", "bob-secret");
    append(&alice, "INBOX", "alice's own").await;
    // bob shares his Projects folder with alice (read, look up, keep \Seen).
    let mut conn = connect(&bob).await.unwrap();
    conn.create("Projects").await.unwrap();
    conn.command_ok("SETACL \"Projects\" \"alice\" \"lrs\"")
        .await
        .unwrap();
    conn.logout().await;
    append(&bob, "Projects", "bob's work").await;
    let listed = snapshot(&alice).await.unwrap();
    assert!(
        listed.contains_key(SHARED),
        "alice sees bob's folder: {:?}",
        listed.keys()
    );

    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", db.path().join("map.db").display());
    let source = ("alice", "alice-secret", cyrus.imap_port());
    let target = ("alice", "target-secret", dovecot.imap_port());
    // The dry run as a user reads it.
    let out = tokio::process::Command::new(mailferry_bin())
        .args([
            "migrate",
            "--dry-run",
            "--allow-plaintext",
            "--timeout",
            "15",
        ])
        .arg("--from")
        .arg(format!("imap://alice@127.0.0.1:{}", source.2))
        .arg("--to")
        .arg(format!("imap://alice@127.0.0.1:{}", target.2))
        .arg("--db")
        .arg(&url)
        .env("MAILFERRY_FROM_PASSWORD", source.1)
        .env("MAILFERRY_TO_PASSWORD", target.1)
        .env("MAILFERRY_LOG", "warn")
        .env_remove("MAILFERRY_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    eprintln!("{plan}");
    assert!(out.status.success(), "{plan}");
    let planned: Vec<&str> = plan.lines().filter(|l| l.contains("->")).collect();
    assert!(planned.iter().all(|l| !l.contains("Other Users")), "{plan}");
    assert!(
        plan.contains(&format!(
            "left out: {SHARED}: another user's folder, not this mailbox"
        )),
        "{plan}"
    );

    let run = run_to_end(migrate_command(source, target, &url, &[]))
        .await
        .unwrap();
    eprintln!("left_out: {}", run.json["left_out"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), 1, "alice's own message only: {run:?}");
    assert!(run.json["left_out"].to_string().contains(SHARED), "{run:?}");
    let on_target = snapshot(&dovecot.account("alice", "target-secret"))
        .await
        .unwrap();
    assert!(
        on_target
            .keys()
            .all(|f| !f.contains("Other Users") && !f.contains("Projects")),
        "nothing of bob's on alice's target: {:?}",
        on_target.keys()
    );
}
