//! Tests of the test kit itself: private Dovecot, TLS, master users, seeding, comparing.

use std::net::{Ipv4Addr, TcpStream};

use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::imap_client::{connect, Account, ImapConnection, Security};
use mailferry_e2e::tls::{client_config_trusting, client_config_trusting_nothing, server_name};

fn group_alive(pgid: i32) -> bool {
    // SAFETY: probing with signal 0 sends nothing.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

#[tokio::test]
async fn dovecot_pair_starts_serves_logins_and_leaves_nothing_after_drop() {
    let a = Dovecot::start(DovecotOptions::default()).unwrap();
    let b = Dovecot::start(DovecotOptions {
        separator: '/',
        ..Default::default()
    })
    .unwrap();
    a.add_user("alice", "pw-a").unwrap();
    b.add_user("bob", "pw-b").unwrap();
    let mut conn = connect(&a.account("alice", "pw-a")).await.unwrap();
    assert!(conn.has_capability("LITERAL+"), "{:?}", conn.capabilities());
    assert_eq!(conn.list().await.unwrap()[0].delimiter, Some('.'));
    conn.create("Made").await.unwrap();
    conn.logout().await;
    let mut conn = connect(&b.account("bob", "pw-b")).await.unwrap();
    let list = conn.list().await.unwrap();
    assert_eq!(list[0].delimiter, Some('/'));
    conn.logout().await;
    // Wrong password is refused.
    assert!(connect(&a.account("alice", "wrong")).await.is_err());
    // A user added after start can log in (passwd-file re-read).
    a.add_user("carol", "pw-c").unwrap();
    connect(&a.account("carol", "pw-c"))
        .await
        .unwrap()
        .logout()
        .await;
    assert!(a.login_count() >= 2, "{}", a.log_text());
    assert!(a.maildir_of("alice").exists());

    let ports = [a.imap_port(), a.imaps_port(), b.imap_port(), b.imaps_port()];
    let groups = [a.process_group(), b.process_group()];
    let dir = a.maildir_of("alice");
    drop(a);
    drop(b);
    for port in ports {
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "port {port} still listening"
        );
    }
    for g in groups {
        assert!(!group_alive(g), "process group {g} still alive");
    }
    assert!(!dir.exists(), "temp dir left behind");
}

#[tokio::test]
async fn imaps_and_starttls_verify_with_generated_ca_and_untrusted_client_is_refused() {
    let d = Dovecot::start(DovecotOptions::default()).unwrap();
    d.add_user("alice", "pw").unwrap();
    // IMAPS with the generated CA.
    let conn = connect(&d.account_tls("alice", "pw")).await.unwrap();
    conn.logout().await;
    // STARTTLS on the plain port with the same CA.
    let starttls = Account {
        security: Security::StartTls {
            ca_pem: d.ca_pem_path().to_path_buf(),
        },
        ..d.account("alice", "pw")
    };
    connect(&starttls).await.unwrap().logout().await;
    // By IP address too (the leaf has an IP SAN).
    let trusted = client_config_trusting(d.ca_pem_path()).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", d.imaps_port()))
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(trusted)
        .connect(server_name("127.0.0.1").unwrap(), tcp)
        .await
        .expect("IP SAN verifies");
    // A client that trusts nothing is refused.
    let untrusted = client_config_trusting_nothing().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", d.imaps_port()))
        .await
        .unwrap();
    let err = tokio_rustls::TlsConnector::from(untrusted)
        .connect(server_name("localhost").unwrap(), tcp)
        .await
        .expect_err("untrusted CA must be refused");
    assert!(
        err.to_string().to_lowercase().contains("unknown") || err.to_string().contains("issuer"),
        "{err}"
    );
}

#[tokio::test]
async fn master_user_logs_in_with_login_and_sasl_plain_authzid() {
    let d = Dovecot::start(DovecotOptions {
        master_user: Some(("admin".into(), "master-pw".into())),
        ..Default::default()
    })
    .unwrap();
    d.add_user("alice", "alice-pw").unwrap();
    // LOGIN user*master with the master's password.
    let mut conn = connect(&d.account("alice*admin", "master-pw"))
        .await
        .unwrap();
    conn.create("FromMaster").await.unwrap();
    conn.logout().await;
    // SASL PLAIN: authzid=alice, authcid=admin.
    let mut conn = ImapConnection::open(&d.account("x", "y")).await.unwrap();
    conn.authenticate_plain("alice", "admin", "master-pw")
        .await
        .unwrap();
    let names: Vec<String> = conn
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"FromMaster".to_string()), "{names:?}");
    conn.logout().await;
    // The master password does not work without the separator, nor a wrong one.
    assert!(connect(&d.account("alice", "master-pw")).await.is_err());
    assert!(connect(&d.account("alice*admin", "nope")).await.is_err());
    assert!(d.log_text().contains("alice"));
}

use mailferry_e2e::compare::{compare, snapshot, Difference, FolderMap};
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};

#[tokio::test]
async fn same_seed_gives_identical_mailboxes_and_other_seed_differs() {
    let d = Dovecot::start(DovecotOptions::default()).unwrap();
    for u in ["a", "b", "c"] {
        d.add_user(u, "pw").unwrap();
    }
    let r1 = seed_mailbox(&d.account("a", "pw"), &SeedSpec::new(7, 60))
        .await
        .unwrap();
    let r2 = seed_mailbox(&d.account("b", "pw"), &SeedSpec::new(7, 60))
        .await
        .unwrap();
    seed_mailbox(&d.account("c", "pw"), &SeedSpec::new(8, 60))
        .await
        .unwrap();
    assert_eq!(r1, r2);
    assert_eq!(r1.total_messages(), 60);
    let a = snapshot(&d.account("a", "pw")).await.unwrap();
    let b = snapshot(&d.account("b", "pw")).await.unwrap();
    let c = snapshot(&d.account("c", "pw")).await.unwrap();
    let diffs = compare(&a, &b, &FolderMap::identity());
    assert!(diffs.is_empty(), "{diffs:#?}");
    assert!(compare(&b, &a, &FolderMap::identity()).is_empty());
    let diffs = compare(&a, &c, &FolderMap::identity());
    assert!(!diffs.is_empty());
    // Snapshots saw exactly what was seeded.
    for f in &r1.folders {
        let snap = &a.folders[&f.name];
        assert_eq!(snap.messages.len(), f.messages, "{}", f.name);
    }
}

#[tokio::test]
async fn comparer_reports_changed_flag_deleted_and_duplicated_message() {
    let d = Dovecot::start(DovecotOptions {
        prefix: "INBOX.".into(),
        ..Default::default()
    })
    .unwrap();
    d.add_user("src", "pw").unwrap();
    d.add_user("dst", "pw").unwrap();
    seed_mailbox(&d.account("src", "pw"), &SeedSpec::new(3, 40))
        .await
        .unwrap();
    seed_mailbox(&d.account("dst", "pw"), &SeedSpec::new(3, 40))
        .await
        .unwrap();
    let src = snapshot(&d.account("src", "pw")).await.unwrap();
    assert!(compare(
        &src,
        &snapshot(&d.account("dst", "pw")).await.unwrap(),
        &FolderMap::identity()
    )
    .is_empty());

    // Pick a message in INBOX without \Flagged and flag it on the target.
    let inbox = &src.folders["INBOX"];
    let victim = inbox
        .messages
        .iter()
        .find(|m| !m.flags.contains("\\Flagged"))
        .unwrap();
    let mut conn = connect(&d.account("dst", "pw")).await.unwrap();
    conn.select("INBOX").await.unwrap();
    conn.command_ok(&format!(
        "UID STORE {} +FLAGS.SILENT (\\Flagged)",
        victim.uid
    ))
    .await
    .unwrap();
    let dst = snapshot(&d.account("dst", "pw")).await.unwrap();
    let diffs = compare(&src, &dst, &FolderMap::identity());
    assert_eq!(
        diffs,
        vec![Difference::FlagsDiffer {
            folder: "INBOX".into(),
            subject: victim.subject.clone(),
            source_uid: victim.uid,
            target_uid: victim.uid,
            missing_on_target: vec![],
            extra_on_target: vec!["\\Flagged".into()],
        }]
    );
    conn.command_ok(&format!(
        "UID STORE {} -FLAGS.SILENT (\\Flagged)",
        victim.uid
    ))
    .await
    .unwrap();

    // Delete one message on the target (Archive/2019), duplicate another into Sent.
    let (folder, deleted) = ["Archive/2019", "Sent", "Archive/2020"]
        .iter()
        .find_map(|f| src.folders[*f].messages.first().map(|m| (*f, m.clone())))
        .unwrap();
    let server_folder = dst.folders[folder].server_name.clone();
    conn.select(&server_folder).await.unwrap();
    conn.command_ok(&format!(
        "UID STORE {} +FLAGS.SILENT (\\Deleted)",
        deleted.uid
    ))
    .await
    .unwrap();
    conn.command_ok(&format!("UID EXPUNGE {}", deleted.uid))
        .await
        .unwrap();
    let dup = inbox.messages.last().unwrap();
    conn.select("INBOX").await.unwrap();
    conn.command_ok(&format!("UID COPY {} INBOX", dup.uid))
        .await
        .unwrap();
    conn.logout().await;

    let dst = snapshot(&d.account("dst", "pw")).await.unwrap();
    let diffs = compare(&src, &dst, &FolderMap::identity());
    assert_eq!(diffs.len(), 2, "{diffs:#?}");
    assert!(diffs.contains(&Difference::MessageMissing {
        folder: folder.into(),
        subject: deleted.subject.clone(),
        size: deleted.size,
        internal_date: deleted.internal_date.clone(),
    }));
    assert!(
        diffs.iter().any(|d| matches!(d,
        Difference::MessageDuplicated { folder, subject, source_copies: 1, target_copies: 2 }
            if folder == "INBOX" && *subject == dup.subject)),
        "{diffs:#?}"
    );
    // Each difference reads as a sentence naming its folder and message.
    let missing_text = diffs
        .iter()
        .find(|d| matches!(d, Difference::MessageMissing { .. }))
        .unwrap()
        .to_string();
    assert!(
        missing_text.contains(&format!("{folder:?}"))
            && missing_text.contains(&format!("{:?}", deleted.subject)),
        "{missing_text}"
    );
    let duplicated_text = diffs
        .iter()
        .find(|d| matches!(d, Difference::MessageDuplicated { .. }))
        .unwrap()
        .to_string();
    assert!(
        duplicated_text.contains("\"INBOX\"")
            && duplicated_text.contains(&format!("{:?}", dup.subject)),
        "{duplicated_text}"
    );

    // A folder map: INBOX on the source expected as "Nope" on the target reports differences.
    let mapped = compare(&src, &dst, &FolderMap::identity().with("INBOX", "Nope"));
    assert!(mapped
        .iter()
        .any(|d| matches!(d, Difference::FolderMissing { folder, .. } if folder == "INBOX")));
}

#[tokio::test]
async fn seeding_produces_every_oddity() {
    let d = Dovecot::start(DovecotOptions::default()).unwrap();
    d.add_user("u", "pw").unwrap();
    let report = seed_mailbox(&d.account("u", "pw"), &SeedSpec::new(11, 50))
        .await
        .unwrap();
    for tag in [
        "big",
        "no-message-id",
        "unterminated-multipart",
        "bad-base64",
        "raw-8bit-header",
        "bare-lf",
        "long-line",
        "duplicate-same-folder",
        "duplicate-other-folder",
    ] {
        assert!(
            report.oddities.get(tag).copied().unwrap_or(0) >= 1,
            "{tag}: {report:?}"
        );
    }
    let mut conn = connect(&d.account("u", "pw")).await.unwrap();
    let list = conn.list().await.unwrap();
    conn.logout().await;
    assert!(
        list.iter()
            .any(|e| e.name == "Archive" && e.has("\\Noselect")),
        "{list:#?}"
    );
    assert!(list.iter().any(|e| e.name == "Entw&APw-rfe"), "{list:#?}");
    let snap = snapshot(&d.account("u", "pw")).await.unwrap();
    assert!(snap.noselect.contains(&"Archive".to_string()));
    assert!(snap.folders.contains_key("Éléments envoyés"));
    assert!(snap.folders.contains_key("归档"));
    assert!(snap.folders.contains_key("Archive/2019"));
    let all: Vec<_> = snap.folders.values().flat_map(|f| &f.messages).collect();
    assert!(all.iter().any(|m| m.size > 1_000_000));
    assert!(all.iter().any(|m| m.message_id.is_none()));
    assert!(all.iter().any(|m| m.subject.starts_with("[bare-lf]")));
    assert!(all.iter().any(|m| m.subject.starts_with("[long-line]")));
    let flags: std::collections::BTreeSet<&String> = all.iter().flat_map(|m| &m.flags).collect();
    for f in [
        "\\Seen",
        "\\Answered",
        "\\Flagged",
        "\\Deleted",
        "\\Draft",
        "$Forwarded",
        "$Label1",
        "Project-X",
    ] {
        assert!(flags.contains(&f.to_string()), "{f} missing: {flags:?}");
    }
    let years: std::collections::BTreeSet<&str> =
        all.iter().map(|m| &m.internal_date[7..11]).collect();
    assert!(years.len() >= 5, "{years:?}");
    // Exact duplicate in one folder: some hash appears twice in INBOX.
    let inbox = &snap.folders["INBOX"].messages;
    assert!(inbox
        .iter()
        .any(|m| inbox.iter().filter(|n| n.sha256 == m.sha256).count() == 2));
    // Turning the \Noselect parent into a real folder is reported.
    let mut conn = connect(&d.account("u", "pw")).await.unwrap();
    conn.create("Archive").await.unwrap();
    conn.logout().await;
    let after = snapshot(&d.account("u", "pw")).await.unwrap();
    assert_eq!(
        compare(&snap, &after, &FolderMap::identity()),
        vec![Difference::NoselectBecameFolder {
            folder: "Archive".into()
        }]
    );
    // Special-use folders are announced.
    assert!(snap.folders["Sent"]
        .attributes
        .iter()
        .any(|a| a == "\\Sent"));
}

#[tokio::test]
async fn seeding_ten_thousand_messages_takes_well_under_a_minute() {
    let d = Dovecot::start(DovecotOptions::default()).unwrap();
    d.add_user("big", "pw").unwrap();
    let started = std::time::Instant::now();
    let report = seed_mailbox(&d.account("big", "pw"), &SeedSpec::new(1, 10_000))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(report.total_messages(), 10_000);
    assert!(report.oddities["big"] >= 10, "{:?}", report.oddities);
    let bytes: u64 = report.folders.iter().map(|f| f.bytes).sum();
    eprintln!("seeded 10,000 messages ({bytes} bytes) in {took:?}");
    assert!(took < std::time::Duration::from_secs(40), "took {took:?}");
}

#[test]
fn dovecot_is_stopped_and_removed_when_a_test_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let d = Dovecot::start(DovecotOptions::default()).unwrap();
        tx.send((
            d.process_group(),
            d.imap_port(),
            d.ca_pem_path().to_path_buf(),
        ))
        .unwrap();
        panic!("deliberate panic while a Dovecot is running");
    })
    .join();
    assert!(result.is_err());
    let (pgid, port, ca) = rx.recv().unwrap();
    assert!(
        !group_alive(pgid),
        "process group {pgid} survived the panic"
    );
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    assert!(!ca.exists(), "temp dir survived the panic");
}

#[tokio::test]
async fn quota_and_size_limit_refuse_appends_with_overquota_and_limit_codes() {
    use mailferry_e2e::imap_client::AppendItem;
    let d = Dovecot::start(DovecotOptions {
        quota_bytes: Some(50_000),
        max_mail_size: Some(20_000),
        ..Default::default()
    })
    .unwrap();
    d.add_user("q", "pw").unwrap();
    let mut conn = connect(&d.account("q", "pw")).await.unwrap();
    assert!(conn.has_capability("QUOTA"));
    assert!(!conn
        .capabilities()
        .iter()
        .any(|c| c.starts_with("APPENDLIMIT")));
    let small = vec![b'x'; 15_000];
    let big = vec![b'y'; 25_000];
    // Sent one per call so that MULTIAPPEND does not group them.
    let mut replies = Vec::new();
    for bytes in [&big, &small, &small, &small, &small] {
        let one = AppendItem {
            mailbox: "INBOX",
            flags: &[],
            internal_date: None,
            bytes,
        };
        replies.extend(conn.append_pipelined(&[one]).await.unwrap());
    }
    assert!(
        replies[0].as_ref().unwrap_err().starts_with("NO [LIMIT]"),
        "{replies:?}"
    );
    assert!(
        replies[1].is_ok() && replies[2].is_ok() && replies[3].is_ok(),
        "{replies:?}"
    );
    assert!(
        replies[4]
            .as_ref()
            .unwrap_err()
            .starts_with("NO [OVERQUOTA]"),
        "{replies:?}"
    );
    conn.logout().await;
}
