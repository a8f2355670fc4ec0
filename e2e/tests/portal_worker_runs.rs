//! A portal worker's run against real Dovecots through the fault proxy: a source that
//! stops making progress (it answers a body FETCH only with untagged lines) is stopped by
//! the stall watchdog, the job log says why, and the retry copies exactly; a worker whose
//! lease another node took mid-run writes nothing more to the UID map and stops with
//! "lease lost". Runs on SQLite, and on PostgreSQL with MAILFERRY_TEST_DATABASE=postgres.

use mailferry_e2e::api::Api;
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::Dovecot;
use mailferry_e2e::portal::Portal;
use mailferry_e2e::proxy::{FaultProxy, Faults};
use mailferry_e2e::seed::{seeded_servers, SeedSpec};
use mailferry_shared::{JobStatus, JobView, ProgressPoint};
use std::time::{Duration, Instant};

const SOURCE_PW: &str = "src-pw-1";
const TARGET_PW: &str = "tgt-pw-1";

/// A plain-IMAP server profile at `port` on loopback (a fault proxy's).
fn plain(name: &str, port: u16) -> String {
    format!(
        "[servers.{name}]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nallow_plaintext = true\n"
    )
}

fn config(head: &str, source_port: u16, target_port: u16) -> String {
    format!(
        "{head}\n{}{}[routes.default]\nsource = \"old\"\ntarget = \"new\"\nlabel = \"Old to new\"\n",
        plain("old", source_port),
        plain("new", target_port)
    )
}

/// Runs `sql` on the portal's database (SQLite file or the suite's PostgreSQL); one line
/// per row, columns separated by `|`.
fn sql(portal: &Portal, query: &str) -> String {
    if let Some(pg) = portal.postgres() {
        return pg.psql("mailferry", query).unwrap();
    }
    let file = portal.data_dir().join("mailferry.db");
    let out = std::process::Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(&file)
        .arg(query)
        .output()
        .expect("sqlite3 runs (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "sqlite3 {query:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn start_job(portal: &Portal) -> (Api, String) {
    let api = Api::new(&portal.url(""));
    api.user_sign_in(("alice", SOURCE_PW), ("alice", TARGET_PW))
        .await
        .unwrap();
    let job: JobView = api.post_json("/api/my/job/start", &()).await.unwrap();
    assert!(job.status.is_active(), "{job:?}");
    (api, job.id)
}

async fn wait_settled(api: &Api, limit: Duration) -> JobView {
    let started = Instant::now();
    loop {
        let job: JobView = api.get_json("/api/my/job").await.unwrap();
        if job.status.is_settled() {
            return job;
        }
        assert!(started.elapsed() < limit, "not finished in time: {job:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn assert_exact(source: &Dovecot, target: &Dovecot, job: &JobView) {
    let before = snapshot(&source.account("alice", SOURCE_PW)).await.unwrap();
    let after = snapshot(&target.account("alice", TARGET_PW)).await.unwrap();
    let map = FolderMap::from_pairs(
        job.folders
            .iter()
            .map(|f| (f.source.as_str(), f.target.as_str())),
    );
    let differences = compare(&before, &after, &map);
    assert!(differences.is_empty(), "differences: {differences:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_source_stops_making_progress_is_retried_with_the_reason_in_its_log() {
    let (source, target) = seeded_servers("alice", SOURCE_PW, TARGET_PW, &SeedSpec::new(15, 60))
        .await
        .unwrap();
    // The source answers the first body FETCH with `* OK still working`, once
    // a second, forever: no per-step timeout ever fires.
    let proxy = FaultProxy::start(
        source.imap_port(),
        Faults {
            busy_body_fetch: Some(Duration::from_secs(1)),
            busy_body_fetches: Some(1),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let portal = Portal::start_with_config(&config(
        "workers = 1\nstall_timeout_seconds = 3",
        proxy.port(),
        target.imap_port(),
    ))
    .await
    .unwrap();
    let (api, id) = start_job(&portal).await;
    let done = wait_settled(&api, Duration::from_secs(120)).await;
    let log = sql(
        &portal,
        &format!("SELECT data FROM job_events WHERE job_id = '{id}' ORDER BY seq"),
    );
    eprintln!("{done:?}\njob log:\n{log}");
    assert_eq!(done.status, JobStatus::Synced, "{done:?}");
    assert!(
        log.contains("no progress for 3 s (last: copying ") && log.contains("); retrying"),
        "{log}"
    );
    assert_eq!(
        done.counts.messages_done, done.counts.messages_total,
        "{done:?}"
    );
    assert_exact(&source, &target, &done).await;
}

/// The job's UID map and journal rows with their update times.
fn map_rows(portal: &Portal, id: &str) -> String {
    sql(
        portal,
        &format!(
            "SELECT 'map', source_folder, source_uid, state, target_uid, flags, updated_at \
             FROM uid_map WHERE job_id = '{id}' \
             UNION ALL SELECT 'skip', source_folder, source_uid, reason, attempts, '', updated_at \
             FROM skipped_messages WHERE job_id = '{id}' \
             UNION ALL SELECT 'folder', source_folder, 0, target_folder, 0, '', updated_at \
             FROM folder_map WHERE job_id = '{id}' ORDER BY 1, 2, 3"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_is_taken_mid_run_writes_nothing_more_to_the_uid_map() {
    let (source, target) = seeded_servers("alice", SOURCE_PW, TARGET_PW, &SeedSpec::new(77, 250))
        .await
        .unwrap();
    // A slow link to the target: each batch's APPEND takes a while after its intents.
    let proxy = FaultProxy::start(
        target.imap_port(),
        Faults {
            bandwidth: Some(150_000),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    // Heartbeats every 10 s: the worker learns of the takeover from its own writes.
    let portal = Portal::start_with_config(&config(
        "workers = 1\nlease_seconds = 30",
        source.imap_port(),
        proxy.port(),
    ))
    .await
    .unwrap();
    let (_api, id) = start_job(&portal).await;
    // Wait for intents of a batch being appended (and some settled before them).
    let started = Instant::now();
    loop {
        let counts = sql(
            &portal,
            &format!(
                "SELECT SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END) FROM uid_map WHERE job_id = '{id}'"
            ),
        );
        let mut parts = counts.split('|').map(|p| p.parse::<u64>().unwrap_or(0));
        if let (Some(pending), Some(done)) = (parts.next(), parts.next()) {
            if pending > 0 && done > 0 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no batch in flight seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another node takes the job over, as after an expired lease.
    sql(
        &portal,
        &format!(
            "UPDATE jobs SET lease_owner = 'node-elsewhere', lease_until = 9999999999 WHERE id = '{id}'"
        ),
    );
    let taken = map_rows(&portal, &id);
    assert!(taken.contains("|pending|"), "{taken}");
    // The old worker's run ends: it lost the lease.
    let started = Instant::now();
    loop {
        let outcome = sql(
            &portal,
            &format!("SELECT outcome FROM job_runs WHERE job_id = '{id}' ORDER BY started_at_ms"),
        );
        if outcome.contains("lease_lost") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the old worker did not stop: {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past any write the APPEND in flight would have led to (and a second tick of time).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = map_rows(&portal, &id);
    if after != taken {
        let before_lines: std::collections::BTreeSet<&str> = taken.lines().collect();
        let changed: Vec<&str> = after
            .lines()
            .filter(|l| !before_lines.contains(l))
            .collect();
        panic!(
            "{} map rows changed after the lease was taken, e.g. {:?}",
            changed.len(),
            &changed[..changed.len().min(3)]
        );
    }
    let log = portal.log_text();
    assert!(
        log.contains("lease lost: another node took this job"),
        "the worker's log does not say why it stopped"
    );
    // The job is the other node's: the old worker wrote no status over it.
    let owner = sql(
        &portal,
        &format!("SELECT lease_owner FROM jobs WHERE id = '{id}'"),
    );
    assert_eq!(owner, "node-elsewhere");
}

/// The job's progress over time is stored: a page opened mid-run or afterwards draws the
/// run so far. The source link is slow (about 12 s for the mailbox), so the run spans
/// several samples on any machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_history_tells_the_run_so_far() {
    let (source, target) = seeded_servers("alice", SOURCE_PW, TARGET_PW, &SeedSpec::new(16, 120))
        .await
        .unwrap();
    let mailbox_bytes: u64 = snapshot(&source.account("alice", SOURCE_PW))
        .await
        .unwrap()
        .folders
        .values()
        .flat_map(|f| f.messages.iter().map(|m| m.size as u64))
        .sum();
    let proxy = FaultProxy::start(
        source.imap_port(),
        Faults {
            // Per connection: the job copies over three at once.
            bandwidth: Some(mailbox_bytes / 36),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let portal =
        Portal::start_with_config(&config("workers = 1", proxy.port(), target.imap_port()))
            .await
            .unwrap();
    let (api, _) = start_job(&portal).await;
    let done = wait_settled(&api, Duration::from_secs(120)).await;
    assert_eq!(done.status, JobStatus::Synced, "{done:?}");
    let history: Vec<ProgressPoint> = api.get_json("/api/my/job/history").await.unwrap();
    eprintln!("{} samples: {history:?}", history.len());
    assert!(history.len() >= 2, "{history:?}");
    assert!(
        history.windows(2).all(|w| w[0].at < w[1].at
            && w[0].messages_done <= w[1].messages_done
            && w[1].at - w[0].at >= 5),
        "in order, growing, one per 5 s at most: {history:?}"
    );
    let last = history.last().unwrap();
    assert_eq!(
        last.messages_done, done.counts.messages_total,
        "{history:?}"
    );
    assert!(history.iter().any(|p| p.rate_messages > 0.0), "{history:?}");
    // Staff see the same; a job that does not exist is a 404.
    portal
        .add_staff("ada", "admin-password-1", "helpdesk")
        .unwrap();
    let staff = Api::new(&portal.url(""));
    staff
        .staff_sign_in("ada", "admin-password-1")
        .await
        .unwrap();
    let theirs: Vec<ProgressPoint> = staff
        .get_json(&format!("/api/helpdesk/jobs/{}/history", done.id))
        .await
        .unwrap();
    assert_eq!(theirs, history);
    let missing = staff
        .get("/api/helpdesk/jobs/no-such-job/history")
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    assert_exact(&source, &target, &done).await;
}
