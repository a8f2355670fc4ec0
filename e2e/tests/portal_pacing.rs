//! Pacing per server profile, through real portal processes against real Dovecot servers:
//! a daily upload cap (with a window of seconds) pauses the job with its reason and resume
//! time and the job resumes by itself in the next window, exact and without duplicates;
//! a connection cap holds for one account across two nodes on one PostgreSQL (checked in
//! Dovecot's own login log); a message over the target profile's size limit is reported
//! up front with its size and the rest copies exactly.

use mailferry_e2e::api::Api;
use mailferry_e2e::compare::{compare, snapshot, Difference, FolderMap, Snapshot};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::login_log::{peak_concurrency, sessions};
use mailferry_e2e::portal::Portal;
use mailferry_e2e::postgres::PgServer;
use mailferry_e2e::seed::{seed_mailbox, seeded_servers, SeedSpec};
use mailferry_shared::{JobDetail, JobPage, JobStatus, JobView, SkippedMessageView};
use std::time::{Duration, Instant};

const SOURCE_PW: &str = "src-pw-1";
const TARGET_PW: &str = "tgt-pw-1";
const ADMIN_PW: &str = "admin-password-1";

/// A portal config: `old` → `new`, with extra lines for each server profile.
fn config(source: &Dovecot, target: &Dovecot, head: &str, old: &str, new: &str) -> String {
    format!(
        "{head}\n\
         [servers.old]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n{old}\n\
         [servers.new]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n{new}\n\
         [routes.default]\nsource = \"old\"\ntarget = \"new\"\nlabel = \"Old to new\"\n",
        source.imaps_port(),
        source.ca_pem_path().display(),
        target.imaps_port(),
        target.ca_pem_path().display(),
    )
}

/// A node of a cluster on one PostgreSQL database and one key.
async fn node(config: &str, db_url: &str, key_dir: &std::path::Path, name: &str) -> Portal {
    Portal::start_node(config, db_url, key_dir, name)
        .await
        .unwrap()
}

async fn postgres() -> (PgServer, String) {
    let pg = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .unwrap();
    let url = pg.create_database("mailferry").unwrap();
    (pg, url)
}

async fn sign_in_and_start(api: &Api, user: &str) {
    api.user_sign_in((user, SOURCE_PW), (user, TARGET_PW))
        .await
        .unwrap();
    let job: JobView = api.post_json("/api/my/job/start", &()).await.unwrap();
    assert!(job.status.is_active(), "{job:?}");
}

fn folder_map(job: &JobView) -> FolderMap {
    FolderMap::from_pairs(
        job.folders
            .iter()
            .map(|f| (f.source.as_str(), f.target.as_str())),
    )
}

fn total_bytes(s: &Snapshot) -> u64 {
    s.folders
        .values()
        .flat_map(|f| f.messages.iter())
        .map(|m| m.size as u64)
        .sum()
}

/// What the user's job page saw at one moment.
#[derive(Debug)]
struct Seen {
    at: Instant,
    unix: i64,
    job: JobView,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn an_upload_cap_pauses_the_job_until_the_next_window_and_it_resumes_by_itself() {
    let (source, target) = seeded_servers("alice", SOURCE_PW, TARGET_PW, &SeedSpec::new(77, 250))
        .await
        .unwrap();
    let before = snapshot(&source.account_tls("alice", SOURCE_PW))
        .await
        .unwrap();
    let bytes = total_bytes(&before);
    // A cap of 1 MB per 6-second window: the copy needs several windows.
    const CAP: u64 = 1_000_000;
    assert!(
        bytes > 2 * CAP,
        "the seed is too small for the test: {bytes} bytes"
    );
    let (pg, db_url) = postgres().await;
    let key_dir = tempfile::tempdir().unwrap();
    let config = config(
        &source,
        &target,
        "workers = 2\nlease_seconds = 6",
        "",
        "[servers.new.pacing]\nupload_mb_per_day = 1\nwindow_seconds = 6",
    );
    let portal = node(&config, &db_url, key_dir.path(), "n1").await;
    portal.add_staff("ada", ADMIN_PW, "helpdesk").unwrap();
    let helpdesk = Api::new(&portal.url(""));
    helpdesk.staff_sign_in("ada", ADMIN_PW).await.unwrap();
    let api = Api::new(&portal.url(""));
    let started = Instant::now();
    sign_in_and_start(&api, "alice").await;
    let mut listed_while_paused = false;

    let mut seen: Vec<Seen> = Vec::new();
    let done = loop {
        let job: JobView = api.get_json("/api/my/job").await.unwrap();
        let settled = job.status.is_settled() && job.status != JobStatus::PausedThrottled;
        seen.push(Seen {
            at: Instant::now(),
            unix: unix_now(),
            job: job.clone(),
        });
        if settled {
            break job;
        }
        if job.status == JobStatus::PausedThrottled && !listed_while_paused {
            // The helpdesk filters on the status and sees when it resumes.
            let page: JobPage = helpdesk
                .get_json("/api/helpdesk/jobs?status=paused_throttled")
                .await
                .unwrap();
            if let Some(listed) = page.jobs.iter().find(|j| j.id == job.id) {
                assert!(listed.resume_at.is_some(), "{listed:?}");
                listed_while_paused = true;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "not finished in time: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    assert_eq!(done.status, JobStatus::Synced, "{done:?}");

    // Each pause: the reason, when it resumes, and the time left with the wait in it.
    let mut pauses = 0;
    let mut resume_delays = Vec::new();
    let mut i = 0;
    while i < seen.len() {
        if seen[i].job.status != JobStatus::PausedThrottled {
            i += 1;
            continue;
        }
        pauses += 1;
        let paused = &seen[i].job;
        let reason = paused.status_reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("upload limit of 1 MB per 6 s reached (provider limit)"),
            "{reason}"
        );
        let resume_at = paused.resume_at.expect("a paused job says when it resumes");
        assert!(
            resume_at > seen[i].unix - 1 && resume_at <= seen[i].unix + 7,
            "{paused:?}"
        );
        assert!(
            resume_at % 6 == 0,
            "the window ends on a 6 s boundary: {resume_at}"
        );
        let eta = paused.eta_seconds.expect("a paused job has a time left");
        assert!(eta as i64 >= resume_at - seen[i].unix, "{paused:?}");
        assert_eq!(
            paused.eta_note.as_deref(),
            Some("at the provider's 1 MB per 6 s limit")
        );
        assert!(paused.counts.messages_done < paused.counts.messages_total);
        // Until it moves on by itself.
        let mut j = i;
        while j < seen.len() && seen[j].job.status == JobStatus::PausedThrottled {
            j += 1;
        }
        let left = seen
            .get(j)
            .unwrap_or_else(|| panic!("still paused when the watch ended: {:?}", seen.last()));
        // It left the pause after its resume time, within the worker's poll (2 s) and slack.
        let due = seen[i].at + Duration::from_secs((resume_at - seen[i].unix).max(0) as u64);
        let delay = left.at.saturating_duration_since(due);
        assert!(left.unix >= resume_at, "resumed before its time: {left:?}");
        assert!(delay < Duration::from_secs(5), "resumed {delay:?} late");
        resume_delays.push(delay);
        i = j;
    }
    assert!(pauses >= 2, "expected at least two pauses, saw {pauses}");
    assert!(
        listed_while_paused,
        "the helpdesk never listed the paused job"
    );

    // The copy is exact, no duplicates.
    let after = snapshot(&target.account_tls("alice", TARGET_PW))
        .await
        .unwrap();
    let source_now = snapshot(&source.account_tls("alice", SOURCE_PW))
        .await
        .unwrap();
    let differences = compare(&source_now, &after, &folder_map(&done));
    assert!(differences.is_empty(), "differences: {differences:#?}");

    // No window took more than the cap, counted in the shared database.
    let rows = pg
        .psql(
            "mailferry",
            "SELECT window_start_ms, amount FROM pacing_usage WHERE kind = 'upload' ORDER BY 1",
        )
        .unwrap();
    let windows: Vec<(i64, u64)> = rows
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('|').map(str::trim);
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect();
    assert!(windows.len() >= 3, "{rows}");
    // A message larger than the whole cap goes alone into an empty window (else it could
    // never go): only such windows may hold more.
    let over_cap: Vec<u64> = before
        .folders
        .values()
        .flat_map(|f| f.messages.iter())
        .map(|m| m.size as u64)
        .filter(|&size| size > CAP)
        .collect();
    let mut windows_over = 0;
    for (start, amount) in &windows {
        if *amount > CAP {
            windows_over += 1;
            assert!(
                over_cap.iter().any(|size| amount.abs_diff(*size) <= size / 50),
                "window {start}: {amount} bytes uploaded, not one message over the cap ({over_cap:?})"
            );
        }
        assert_eq!(start % 6000, 0);
    }
    assert!(windows_over <= over_cap.len(), "{windows:?}");
    let counted: u64 = windows.iter().map(|w| w.1).sum();
    assert!(counted >= bytes, "counted {counted} of {bytes} bytes");
    eprintln!(
        "upload cap: {bytes} bytes in {:?}, {pauses} pauses, windows used {:?}, \
         resumed after resume_at within {:?}",
        elapsed,
        windows.iter().map(|w| w.1).collect::<Vec<_>>(),
        resume_delays
    );
}

#[tokio::test]
async fn a_connection_cap_holds_for_one_account_across_two_nodes() {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    // One source mailbox copied into two target mailboxes by two jobs at once.
    source.add_user("shared", SOURCE_PW).unwrap();
    for t in ["t1", "t2"] {
        target.add_user(t, TARGET_PW).unwrap();
    }
    seed_mailbox(
        &source.account_tls("shared", SOURCE_PW),
        &SeedSpec::new(91, 1200),
    )
    .await
    .unwrap();
    let (_pg, db_url) = postgres().await;
    let key_dir = tempfile::tempdir().unwrap();
    // Each job would open 3 connections to the source: 6 for the two; the cap is 2.
    let config = config(
        &source,
        &target,
        "workers = 1\nlease_seconds = 6",
        "connections_per_job = 3\n[servers.old.pacing]\nconnections = 2",
        "",
    );
    let first = node(&config, &db_url, key_dir.path(), "a").await;
    let second = node(&config, &db_url, key_dir.path(), "b").await;
    first
        .add_staff("ada", ADMIN_PW, "admin")
        .expect("staff account");
    let admin = Api::new(&first.url(""));
    admin.staff_sign_in("ada", ADMIN_PW).await.unwrap();
    let started = Instant::now();
    // One import each: a file may name a source mailbox only once.
    for t in ["t1", "t2"] {
        let csv = format!(
            "source_user,source_password,target_user,target_password\nshared,{SOURCE_PW},{t},{TARGET_PW}\n"
        );
        let result = admin.import_csv(&csv).await.unwrap();
        assert!(result.preview.errors.is_empty(), "{:?}", result.preview);
    }
    let jobs = loop {
        let page: JobPage = admin
            .get_json("/api/helpdesk/jobs?per_page=50")
            .await
            .unwrap();
        if page.jobs.len() == 2 && page.jobs.iter().all(|j| j.status.is_settled()) {
            break page.jobs;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "{page:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let elapsed = started.elapsed();
    let source_now = snapshot(&source.account_tls("shared", SOURCE_PW))
        .await
        .unwrap();
    let mut runs = Vec::new();
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Synced, "{job:?}");
        let copy = snapshot(&target.account_tls(&job.target_user, TARGET_PW))
            .await
            .unwrap();
        let differences = compare(&source_now, &copy, &folder_map(job));
        assert!(
            differences.is_empty(),
            "{}: {differences:#?}",
            job.target_user
        );
        let detail: JobDetail = admin
            .get_json(&format!("/api/helpdesk/jobs/{}", job.id))
            .await
            .unwrap();
        runs.extend(detail.runs);
    }
    // Both nodes ran a job, at the same time.
    let nodes: std::collections::BTreeSet<_> = runs.iter().map(|r| r.node.clone()).collect();
    assert_eq!(nodes.len(), 2, "{runs:?}");
    let (a, b) = (&runs[0], &runs[runs.len() - 1]);
    let overlap = a.started_at_ms < b.finished_at_ms.unwrap_or(i64::MAX)
        && b.started_at_ms < a.finished_at_ms.unwrap_or(i64::MAX);
    assert!(
        overlap,
        "the two jobs did not run at the same time: {runs:?}"
    );

    // From Dovecot's side: never more than 2 sessions of the account at once, and the
    // cap was used (so the test could fail).
    let log = source.log_text();
    let shared: Vec<_> = sessions(&log)
        .into_iter()
        .filter(|s| s.user == "shared")
        .collect();
    let (_, peak) = peak_concurrency(&shared);
    assert!(peak <= 2, "{peak} sessions of one account at once");
    assert_eq!(peak, 2, "the cap was never reached: {peak}");
    assert!(shared.len() >= 4, "{} sessions", shared.len());
    eprintln!(
        "connection cap: 2 jobs on nodes {nodes:?}, {} source sessions, peak {peak}, {elapsed:?}",
        shared.len()
    );
    drop(second);
}

#[tokio::test]
async fn a_message_over_the_targets_limit_is_reported_up_front_and_the_rest_copies() {
    let (source, target) = seeded_servers("bob", SOURCE_PW, TARGET_PW, &SeedSpec::new(5, 400))
        .await
        .unwrap();
    let before = snapshot(&source.account_tls("bob", SOURCE_PW))
        .await
        .unwrap();
    const LIMIT: usize = 50_000;
    let too_large: Vec<(String, usize)> = before
        .folders
        .iter()
        .flat_map(|(name, f)| {
            f.messages
                .iter()
                .filter(|m| m.size > LIMIT)
                .map(move |m| (name.clone(), m.size))
        })
        .collect();
    assert!(
        !too_large.is_empty(),
        "the seed has no message over {LIMIT} bytes"
    );
    let config = config(
        &source,
        &target,
        "workers = 2",
        "",
        &format!("[servers.new.pacing]\nmax_message_bytes = {LIMIT}"),
    );
    let portal = Portal::start_with_config(&config).await.unwrap();
    let api = Api::new(&portal.url(""));
    sign_in_and_start(&api, "bob").await;
    let started = Instant::now();
    let done = loop {
        let job: JobView = api.get_json("/api/my/job").await.unwrap();
        if job.status.is_settled() {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.status, JobStatus::CompletedWithSkips, "{done:?}");
    let skipped: Vec<SkippedMessageView> = api.get_json("/api/my/job/skipped").await.unwrap();
    assert_eq!(skipped.len(), too_large.len(), "{skipped:#?}");
    for s in &skipped {
        let size = s.size.expect("the size is reported") as usize;
        assert!(size > LIMIT);
        assert!(
            s.reason.contains(&format!(
                "{size} bytes, larger than the largest message the target takes ({LIMIT} bytes, provider limit)"
            )),
            "{}",
            s.reason
        );
    }
    // Never sent: the target holds nothing over the limit; everything else is exact.
    let after = snapshot(&target.account_tls("bob", TARGET_PW))
        .await
        .unwrap();
    assert!(after
        .folders
        .values()
        .flat_map(|f| f.messages.iter())
        .all(|m| m.size <= LIMIT));
    let differences = compare(&before, &after, &folder_map(&done));
    let mut missing: Vec<usize> = Vec::new();
    for d in &differences {
        match d {
            Difference::MessageMissing { size, .. } => missing.push(*size),
            other => panic!("unexpected difference: {other:?}"),
        }
    }
    let mut expected: Vec<usize> = too_large.iter().map(|t| t.1).collect();
    missing.sort_unstable();
    expected.sort_unstable();
    assert_eq!(missing, expected);
    eprintln!(
        "largest message: {} of {} messages over {LIMIT} bytes skipped up front ({:?} bytes)",
        skipped.len(),
        done.counts.messages_total,
        expected
    );
}

/// The command line is paced by the same server profiles as the portal's jobs: a run that
/// reaches the upload cap ends with status 4 and the provider-limit reason; run again in a
/// later window it resumes from the UID map, and the copy ends exact, without duplicates.
#[tokio::test]
async fn the_command_line_is_paced_by_the_same_profiles_and_resumes_on_a_rerun() {
    use std::os::unix::fs::PermissionsExt;
    let (source, target) = seeded_servers("carol", SOURCE_PW, TARGET_PW, &SeedSpec::new(78, 120))
        .await
        .unwrap();
    let before = snapshot(&source.account_tls("carol", SOURCE_PW))
        .await
        .unwrap();
    const CAP: u64 = 1_000_000;
    let bytes = total_bytes(&before);
    assert!(bytes > 2 * CAP, "the seed is too small: {bytes} bytes");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailferry.toml");
    let text = config(
        &source,
        &target,
        "",
        "",
        "[servers.new.pacing]\nupload_mb_per_day = 1\nwindow_seconds = 8",
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("map.db").display());
    // Each run may add at most the cap once per window it touched (the cap holds however
    // fast or slow this machine copies), except that a message larger than the whole cap
    // goes alone into an empty window; a run that reached the cap says when to come back.
    const WINDOW: Duration = Duration::from_secs(8);
    let largest = before
        .folders
        .values()
        .flat_map(|f| f.messages.iter())
        .map(|m| m.size as u64)
        .max()
        .unwrap_or(0);
    let per_window = CAP.max(largest);
    let (mut runs, mut paused) = (0, 0);
    let mut landed = total_bytes(
        &snapshot(&target.account_tls("carol", TARGET_PW))
            .await
            .unwrap(),
    );
    loop {
        runs += 1;
        assert!(runs <= 30, "not done after {runs} runs ({paused} paused)");
        let began = std::time::Instant::now();
        let out = tokio::process::Command::new(mailferry_e2e::portal::mailferry_bin())
            .arg("migrate")
            .arg("--config")
            .arg(&path)
            .args(["--db", &db, "--json"])
            .args(["--from-profile", "old", "--from", "carol"])
            .args(["--to-profile", "new", "--to", "carol"])
            .env("MAILFERRY_FROM_PASSWORD", SOURCE_PW)
            .env("MAILFERRY_TO_PASSWORD", TARGET_PW)
            .env("MAILFERRY_LOG", "warn")
            .env_remove("MAILFERRY_DATABASE_URL")
            .output()
            .await
            .unwrap();
        let took = began.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no JSON result: {stdout} {:?}", out.stderr));
        let now_landed = total_bytes(
            &snapshot(&target.account_tls("carol", TARGET_PW))
                .await
                .unwrap(),
        );
        let windows = took.as_secs() / WINDOW.as_secs() + 2;
        assert!(
            now_landed - landed <= windows * per_window,
            "run {runs} uploaded {} bytes in {took:?} under a cap of {CAP} per {WINDOW:?} \
             (largest message {largest}): {stdout}",
            now_landed - landed
        );
        landed = now_landed;
        match out.status.code() {
            Some(0) => break,
            Some(4) => {
                paused += 1;
                let error = json["error"].as_str().unwrap_or_default();
                assert!(
                    error.contains("upload limit of 1 MB per 8 s reached (provider limit)"),
                    "{json}"
                );
                let resume_at = json["resume_at"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("a paused run without resume_at: {json}"));
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                assert!(
                    resume_at > now - 1 && resume_at <= now + WINDOW.as_secs() as i64 + 1,
                    "resume_at {resume_at} is not within the next window (now {now})"
                );
                tokio::time::sleep(Duration::from_secs((resume_at - now).max(0) as u64 + 1)).await;
            }
            other => panic!("status {other:?}: {json}"),
        }
    }
    assert!(paused >= 1, "{bytes} bytes under a 1 MB cap never paused");
    eprintln!("{bytes} bytes in {runs} runs, {paused} paused at the cap");
    let after = snapshot(&target.account_tls("carol", TARGET_PW))
        .await
        .unwrap();
    let diffs = compare(&before, &after, &FolderMap::identity());
    assert!(
        diffs.is_empty(),
        "{} differences: {:?}",
        diffs.len(),
        &diffs[..diffs.len().min(5)]
    );
}
