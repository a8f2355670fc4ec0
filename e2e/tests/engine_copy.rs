//! `mailferry migrate` between two real Dovecots: an exact copy, re-runs that copy nothing,
//! and re-runs that bring only new mail and flag changes.

mod engine_common;

use engine_common::*;
use mailferry_e2e::dovecot::DovecotOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_is_exact_and_reruns_copy_only_what_changed() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let seeded = seed_small(&pair.source_account(), '.').await.unwrap() as u64;
    let before = snapshot(&pair.source_account()).await.unwrap();

    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{:?}", run);
    assert_eq!(run.count("copied"), seeded);
    assert_eq!((run.count("skipped"), run.count("failed")), (0, 0));
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(
        source, before,
        "the source (\\Seen flags included) is untouched"
    );
    assert_same(&source, &snapshot(&pair.target_account()).await.unwrap());

    // A second run finds everything in the map.
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{:?}", run);
    assert_eq!(
        (run.count("copied"), run.count("already_present")),
        (0, seeded)
    );

    // The user reads, flags and receives mail on the source; a re-run follows.
    on_folder(
        &pair.source_account(),
        "INBOX",
        "UID STORE 1 +FLAGS (\\Flagged $Important)",
    )
    .await
    .unwrap();
    on_folder(
        &pair.source_account(),
        "Sent",
        "UID STORE 2 -FLAGS (\\Seen)",
    )
    .await
    .unwrap();
    append_one(
        &pair.source_account(),
        "INBOX",
        b"From: new@example.org\r\nSubject: new\r\n\r\nnew\r\n",
        &[],
    )
    .await
    .unwrap();
    append_one(
        &pair.source_account(),
        "Archive",
        b"From: new@example.org\r\nSubject: new 2\r\n\r\nnew 2\r\n",
        &["\\Seen".into()],
    )
    .await
    .unwrap();
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{:?}", run);
    assert_eq!(run.count("copied"), 2);
    assert_eq!(run.count("flags_updated"), 2);
    assert_eq!(run.count("already_present"), seeded);
    assert_same(
        &snapshot(&pair.source_account()).await.unwrap(),
        &snapshot(&pair.target_account()).await.unwrap(),
    );

    // A message the user deleted on the target is not brought back.
    on_folder(
        &pair.target_account(),
        "Archive",
        "UID STORE 1 +FLAGS (\\Deleted)",
    )
    .await
    .unwrap();
    on_folder(&pair.target_account(), "Archive", "EXPUNGE")
        .await
        .unwrap();
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.count("copied"), 0, "{:?}", run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing_and_map_exports() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let seeded = seed_small(&pair.source_account(), '.').await.unwrap();
    let run = pair.migrate_direct(&["--dry-run"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{:?}", run);
    assert_eq!(run.count("copied"), 0);
    let target = snapshot(&pair.target_account()).await.unwrap();
    assert_eq!(
        target.len(),
        1,
        "only INBOX on the target: {:?}",
        target.keys()
    );

    let csv = scratch_file(&pair, "map.csv");
    let run = pair
        .migrate_direct(&["--export-map", csv.to_str().unwrap()])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{:?}", run);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(run.count("copied"), seeded as u64);
    assert_eq!(text.lines().count(), 1 + seeded, "one line per message");
    assert!(text.lines().skip(1).all(|l| l.contains(",done,")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_source_folder_with_new_uidvalidity_is_matched_by_content() {
    use mailferry_e2e::imap_client::{connect, AppendItem};
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let seeded = seed_small(&pair.source_account(), '.').await.unwrap() as u64;
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.count("copied"), seeded);

    // The source folder is deleted and recreated with the same messages: new UIDVALIDITY.
    fn uidvalidity(reply: &mailferry_e2e::imap_client::Reply) -> String {
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
            .unwrap()
    }
    let mut conn = connect(&pair.source_account()).await.unwrap();
    let old_validity = uidvalidity(&conn.examine("Archive").await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let messages = conn.fetch_all().await.unwrap();
    conn.command_ok("CLOSE").await.unwrap();
    conn.command_ok("DELETE Archive").await.unwrap();
    conn.create("Archive").await.unwrap();
    let flags: Vec<Vec<String>> = messages
        .iter()
        .map(|m| {
            m.flags
                .iter()
                .filter(|f| *f != "\\Recent")
                .cloned()
                .collect()
        })
        .collect();
    let items: Vec<AppendItem<'_>> = messages
        .iter()
        .zip(&flags)
        .map(|(m, f)| AppendItem {
            mailbox: "Archive",
            flags: f,
            internal_date: Some(&m.internal_date),
            bytes: &m.body,
        })
        .collect();
    for r in conn.append_pipelined(&items).await.unwrap() {
        r.unwrap();
    }
    let new_validity = uidvalidity(&conn.examine("Archive").await.unwrap());
    assert_ne!(old_validity, new_validity, "the folder really is a new one");
    conn.logout().await;

    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        (run.count("copied"), run.count("already_present")),
        (0, seeded),
        "{run:?}"
    );
    assert_same(
        &snapshot(&pair.source_account()).await.unwrap(),
        &snapshot(&pair.target_account()).await.unwrap(),
    );
}
