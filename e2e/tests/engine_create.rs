//! A target folder that cannot be created fails that folder, not the job (issue 15): the
//! fault proxy in front of a real Dovecot target refuses one CREATE.

mod engine_common;

use engine_common::*;
use mailferry_e2e::proxy::{Faults, Refuse, Refused};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_the_target_will_not_create_fails_alone() {
    let (pair, seeded, before) = seeded_pair().await;
    let in_archive = before["Archive"].len() as u64;
    let (proxy, run) = pair
        .copy_through(
            Side::Target,
            Faults::refusing(Refuse::every(
                Refused::Create("Archive".into()),
                "NO [NOPERM] Permission denied for Archive",
                1,
            )),
            &[],
        )
        .await
        .unwrap();
    assert!(
        proxy.stats().refusals.load(Ordering::SeqCst) >= 1,
        "CREATE was refused"
    );
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!(
        run.copied_skipped_failed(),
        (seeded - in_archive, 0, in_archive),
        "{run:?}"
    );
    let failed = run.json["failed_folders"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{run:?}");
    assert_eq!(failed[0]["folder"].as_str(), Some("Archive"));
    assert_eq!(failed[0]["messages"].as_u64(), Some(in_archive));
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("Permission denied for Archive"), "{error}");
    // Every other folder exactly; the source untouched; no Archive on the target.
    let source = snapshot(&pair.source_account()).await.unwrap();
    assert_eq!(source, before, "source unchanged");
    let target = snapshot(&pair.target_account()).await.unwrap();
    assert!(!target.contains_key("Archive"), "{:?}", target.keys());
    let rest: BTreeMap<_, _> = before.into_iter().filter(|(f, _)| f != "Archive").collect();
    assert_same(&rest, &target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_folder_recreated_between_runs_is_filled_again() {
    let (pair, seeded, before) = seeded_pair().await;
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), seeded);
    // On the target: Sent deleted and made again (a new UIDVALIDITY, empty); Archive
    // renumbered with its messages kept (deleted, recreated and refilled by hand).
    let target = pair.target_account();
    let mut conn = mailferry_e2e::imap_client::connect(&target).await.unwrap();
    conn.command_ok("DELETE \"Sent\"").await.unwrap();
    conn.create("Sent").await.unwrap();
    conn.command_ok("RENAME \"Archive\" \"Old\"").await.unwrap();
    conn.create("Archive").await.unwrap();
    conn.select("Old").await.unwrap();
    conn.command_ok("UID COPY 1:* \"Archive\"").await.unwrap();
    conn.command_ok("CLOSE").await.unwrap();
    conn.command_ok("DELETE \"Old\"").await.unwrap();
    conn.logout().await;
    let archive = snapshot(&target).await.unwrap()["Archive"].len() as u64;
    assert_eq!(archive, before["Archive"].len() as u64);
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    let in_sent = before["Sent"].len() as u64;
    assert_eq!(
        (run.count("copied"), run.count("already_present")),
        (in_sent, seeded - in_sent),
        "{run:?}"
    );
    pair.assert_exact_copy(&before).await;
    // A third run finds everything in place.
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(
        (run.count("copied"), run.count("already_present")),
        (0, seeded)
    );
}
