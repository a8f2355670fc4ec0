//! A source folder recreated with the same messages (a new UIDVALIDITY) between runs: the
//! next run finds every copy again by the copied bytes and copies none a second time, even
//! when the source's listed sizes (`RFC822.SIZE`) are estimates that differ from the bytes
//! (as Exchange's are; the fault proxy in front of a real Dovecot reports them larger).

mod engine_common;

use engine_common::*;
use mailferry_e2e::imap_client::{connect, AppendItem, Reply};
use mailferry_e2e::proxy::Faults;
use std::time::Instant;

const MESSAGES: usize = 2500;

fn uidvalidity(reply: &Reply) -> String {
    reply
        .untagged
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .find_map(|l| {
            Some(
                l.split("UIDVALIDITY ")
                    .nth(1)?
                    .split(']')
                    .next()?
                    .to_owned(),
            )
        })
        .expect("SELECT names the UIDVALIDITY")
}

fn estimated_sizes() -> Faults {
    Faults {
        inflate_listing_sizes: 37,
        ..Faults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_messages_in_a_recreated_source_folder_are_matched_not_copied_again() {
    let pair = Pair::start(Default::default(), Default::default()).unwrap();
    let source = pair.source_account();
    let mut conn = connect(&source).await.unwrap();
    conn.create("Archive").await.unwrap();
    let bodies: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|i| {
            // A few exact duplicates too: each copy must be claimed once.
            let n = if i % 500 == 499 { i - 1 } else { i };
            format!(
                "From: a@example.org\r\nSubject: message {n}\r\nMessage-ID: <{n}@example.org>\r\n\r\nbody {n} {}\r\n",
                "x".repeat(n % 97)
            )
            .into_bytes()
        })
        .collect();
    let dates: Vec<String> = (0..MESSAGES)
        .map(|i| {
            format!(
                "{:02}-Mar-2019 10:{:02}:{:02} +0000",
                1 + i % 28,
                i % 60,
                i / 60 % 60
            )
        })
        .collect();
    let no_flags: Vec<String> = Vec::new();
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(250) {
        let items: Vec<AppendItem<'_>> = chunk
            .iter()
            .map(|&i| AppendItem {
                mailbox: "Archive",
                flags: &no_flags,
                internal_date: Some(&dates[i]),
                bytes: &bodies[i],
            })
            .collect();
        for r in conn.append_pipelined(&items).await.unwrap() {
            r.unwrap();
        }
    }
    let proxy = pair.proxy(Side::Source, estimated_sizes()).await.unwrap();
    let run = pair
        .migrate_through(Side::Source, &proxy, &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), MESSAGES as u64);

    // Made again with the same messages: copied server-side (dates kept), renamed back.
    let old = uidvalidity(&conn.examine("Archive").await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    conn.create("Fresh").await.unwrap();
    conn.command_ok("UID COPY 1:* \"Fresh\"").await.unwrap();
    conn.command_ok("CLOSE").await.unwrap();
    conn.command_ok("DELETE \"Archive\"").await.unwrap();
    conn.command_ok("RENAME \"Fresh\" \"Archive\"")
        .await
        .unwrap();
    let new = uidvalidity(&conn.examine("Archive").await.unwrap());
    assert_ne!(old, new, "the source folder really is a new one");
    conn.logout().await;

    let started = Instant::now();
    let run = pair
        .migrate_through(Side::Source, &proxy, &[])
        .await
        .unwrap();
    let took = started.elapsed();
    let (copied, present) = (run.count("copied"), run.count("already_present"));
    eprintln!("re-run after the source folder was recreated: {MESSAGES} messages, {copied} copied again, {present} already present, in {took:?}");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!((copied, present), (0, MESSAGES as u64), "{run:?}");
    let target = snapshot(&pair.target_account()).await.unwrap();
    assert_eq!(
        target["Archive"].len(),
        MESSAGES,
        "no duplicates on the target"
    );
    assert_same(&snapshot(&source).await.unwrap(), &target);
}
