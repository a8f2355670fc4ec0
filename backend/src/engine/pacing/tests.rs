//! The pacer against a real (SQLite) database: slots shared by two runs, a crashed
//! holder's slot taken over, byte caps per window, and the pause they end in.

use super::*;
use crate::db::Database;

async fn pool(dir: &std::path::Path) -> AnyPool {
    let db = Database::open(&crate::config::sqlite_url(&dir.join("p.db")))
        .await
        .unwrap();
    db.pool().clone()
}

fn pacer(pool: &AnyPool, holder: &str, caps: Caps) -> Arc<Pacer> {
    Pacer::new(
        Side::Target,
        "imap.example:993".into(),
        "gmail/alice".into(),
        caps,
        pool.clone(),
        Clock::Local,
        holder.into(),
        Duration::from_secs(1),
    )
    .unwrap()
}

#[tokio::test]
async fn no_caps_means_no_pacer() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path()).await;
    assert!(Pacer::new(
        Side::Source,
        "h".into(),
        "a".into(),
        Caps::default(),
        pool,
        Clock::Local,
        "x".into(),
        Duration::ZERO
    )
    .is_none());
    // And a run without pacers admits everything without asking anyone.
    let none = Pacers::default();
    none.before_fetch([1u64 << 40]).await.unwrap();
    assert_eq!(none.before_append([1u64 << 40, 5]).await.unwrap(), 2);
    assert_eq!(none.batch_bytes(16 << 20), 16 << 20);
}

#[tokio::test]
async fn connection_slots_are_shared_and_freed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path()).await;
    let caps = Caps {
        connections: Some(2),
        ..Caps::default()
    };
    let a = pacer(&pool, "node-a", caps);
    let b = pacer(&pool, "node-b", caps);
    let first = a.connection_slot().await.unwrap().unwrap();
    let second = b.connection_slot().await.unwrap().unwrap();
    assert_ne!(first.number(), second.number());
    let now = crate::clock::unix_millis();
    assert_eq!(
        ledger::slots_held(&pool, "gmail/alice", now).await.unwrap(),
        2
    );
    // A third waits until one is released.
    let waiting = tokio::spawn({
        let a = a.clone();
        async move { a.connection_slot().await.unwrap().unwrap().number() }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!waiting.is_finished());
    let freed = first.number();
    first.release().await;
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, freed);
    drop(second);
}

#[tokio::test]
async fn a_crashed_holders_slot_expires() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path()).await;
    let now = crate::clock::unix_millis();
    // A node that died while holding the only slot: its expiry passed.
    assert!(
        ledger::take_slot(&pool, "gmail/alice", 0, "dead-node", now - 60_000, now - 1)
            .await
            .unwrap()
    );
    let caps = Caps {
        connections: Some(1),
        ..Caps::default()
    };
    let slot = tokio::time::timeout(
        Duration::from_secs(2),
        pacer(&pool, "live", caps).connection_slot(),
    )
    .await
    .expect("an expired slot is free")
    .unwrap()
    .unwrap();
    assert_eq!(slot.number(), 0);
    // A live holder's slot is not taken.
    assert!(
        !ledger::take_slot(&pool, "gmail/alice", 0, "other", now, now + 30_000)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_upload_cap_admits_what_fits_then_pauses_until_the_window_ends() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path()).await;
    let caps = Caps {
        upload_bytes: Some(1_000),
        window: Duration::from_secs(3600),
        ..Caps::default()
    };
    let p = pacer(&pool, "n", caps);
    assert_eq!(p.before_append(&[400, 400]).await.unwrap(), 2);
    // 200 bytes left: of 150 + 100, only the first goes.
    assert_eq!(p.before_append(&[150, 100]).await.unwrap(), 1);
    let now = crate::clock::unix_millis();
    let (start, end) = window_of(now, caps.window);
    assert_eq!(
        ledger::used(&pool, "gmail/alice", "upload", start)
            .await
            .unwrap(),
        950
    );
    match p.before_append(&[100]).await {
        Err(EngineError::Paused {
            reason,
            until,
            side,
            ..
        }) => {
            assert_eq!(
                reason,
                "hourly upload limit of 1 kB reached (provider limit)"
            );
            assert_eq!(until, (end + 999) / 1000);
            assert_eq!(side, Side::Target);
        }
        other => panic!("expected a pause, got {other:?}"),
    }
    // A message larger than the whole cap passes only into an empty window.
    assert!(ledger::add_within(&pool, "other", "upload", start, 50, 10)
        .await
        .unwrap());
    assert!(!ledger::add_within(&pool, "other", "upload", start, 50, 10)
        .await
        .unwrap());
    assert!(!ledger::add_within(&pool, "other", "upload", start, 1, 10)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_download_cap_counts_whole_batches_per_window() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path()).await;
    let caps = Caps {
        download_bytes: Some(1_000),
        window: Duration::from_secs(2),
        ..Caps::default()
    };
    let p = pacer(&pool, "n", caps);
    p.before_fetch(&[500, 400]).await.unwrap();
    let until = match p.before_fetch(&[200]).await {
        Err(EngineError::Paused { reason, until, .. }) => {
            assert_eq!(
                reason,
                "download limit of 1 kB per 2 s reached (provider limit)"
            );
            until
        }
        other => panic!("expected a pause, got {other:?}"),
    };
    // The next window starts empty.
    let wait = (until * 1000 - crate::clock::unix_millis()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    p.before_fetch(&[200]).await.unwrap();
}

#[tokio::test]
async fn a_short_wait_for_the_hourly_message_cap_is_waited_out() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path()).await;
    let caps = Caps {
        messages_per_hour: Some(3),
        ..Caps::default()
    };
    let p = pacer(&pool, "n", caps);
    assert_eq!(p.before_append(&[1, 1, 1]).await.unwrap(), 3);
    // The hour is full; the next starts later than the 1 s the pacer may wait.
    assert!(matches!(
        p.before_append(&[1]).await,
        Err(EngineError::Paused { .. })
    ));
}

#[tokio::test]
async fn a_new_hour_of_the_message_count_leaves_the_days_byte_count_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path()).await;
    let caps = Caps {
        download_bytes: Some(1_000_000),
        messages_per_hour: Some(100),
        ..Caps::default()
    };
    let now = crate::clock::unix_millis();
    let (day, _) = window_of(now, caps.window);
    let (hour, _) = window_of(now, Duration::from_secs(3600));
    // Yesterday's count and an hour-old message count: forgotten as their windows pass.
    assert!(ledger::add_within(
        &pool,
        "gmail/alice",
        "download",
        day - 2 * 86_400_000,
        5,
        10
    )
    .await
    .unwrap());
    let p = pacer(&pool, "n", caps);
    p.before_fetch(&[600]).await.unwrap();
    p.before_fetch(&[300]).await.unwrap();
    // Both counts are there, each in its own window.
    assert_eq!(
        ledger::used(&pool, "gmail/alice", "download", day)
            .await
            .unwrap(),
        900
    );
    assert_eq!(
        ledger::used(&pool, "gmail/alice", "messages", hour)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        ledger::used(&pool, "gmail/alice", "download", day - 2 * 86_400_000)
            .await
            .unwrap(),
        0
    );
}
