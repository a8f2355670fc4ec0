//! The portal backend, black-box over HTTP, against two real Dovecot servers: sign-in,
//! jobs that survive a crash of the server, live progress, and access control.

use mailferry_e2e::api::{contains_secret, Api};
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::portal::{route_config, Portal};
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use mailferry_shared::{
    AccountSide, JobEvent, JobEventKind, JobStatus, JobView, SignInRequest, SignInResult,
    StaffSignIn,
};
use std::time::{Duration, Instant};

const SOURCE_PW: &str = "src-Secret-7%q";
const TARGET_PW: &str = "tgt-Secret-9\"x";
const STAFF_PW: &str = "helpdesk-pass-123";

struct Servers {
    source: Dovecot,
    target: Dovecot,
}

async fn servers(users: &[&str], messages: usize) -> Servers {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    for (i, user) in users.iter().enumerate() {
        source.add_user(user, SOURCE_PW).unwrap();
        target.add_user(user, TARGET_PW).unwrap();
        if messages > 0 {
            seed_mailbox(
                &source.account_tls(user, SOURCE_PW),
                &SeedSpec::new(40 + i as u64, messages),
            )
            .await
            .unwrap();
        }
    }
    Servers { source, target }
}

fn sign_in_request(user: &str, source_pw: &str, target_pw: &str) -> SignInRequest {
    SignInRequest {
        route: "default".into(),
        source_user: user.into(),
        source_password: source_pw.into(),
        target_user: user.into(),
        target_password: target_pw.into(),
    }
}

async fn sign_in(api: &Api, user: &str) -> String {
    let result: SignInResult = api
        .post_json("/api/session", &sign_in_request(user, SOURCE_PW, TARGET_PW))
        .await
        .unwrap();
    assert!(result.source.ok && result.target.ok, "{result:?}");
    result.job_id.expect("a job for a successful sign-in")
}

async fn wait_for(
    api: &Api,
    limit: Duration,
    what: &str,
    done: impl Fn(&JobView) -> bool,
) -> JobView {
    let started = Instant::now();
    loop {
        let job: JobView = api.get_json("/api/my/job").await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(
            started.elapsed() < limit,
            "timed out waiting for {what}; job is {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Compares the accounts through the folder map the job reports (the engine maps
/// `Gesendete Objekte` to the target's Sent folder, and so on).
async fn assert_exact_copy(servers: &Servers, user: &str, job: &JobView) {
    let map = FolderMap::from_pairs(
        job.folders
            .iter()
            .map(|f| (f.source.as_str(), f.target.as_str())),
    );
    let source = snapshot(&servers.source.account_tls(user, SOURCE_PW))
        .await
        .unwrap();
    let target = snapshot(&servers.target.account_tls(user, TARGET_PW))
        .await
        .unwrap();
    let differences = compare(&source, &target, &map);
    assert!(differences.is_empty(), "differences: {differences:#?}");
}

#[tokio::test]
async fn migration_survives_a_killed_backend_and_completes_exactly() {
    let servers = servers(&["alice"], 3000).await;
    let mut portal = Portal::start_with_config(&route_config(&servers.source, &servers.target, ""))
        .await
        .unwrap();
    let api = Api::new(&portal.url(""));
    sign_in(&api, "alice").await;
    let job: JobView = api.post_json("/api/my/job/start", &()).await.unwrap();
    assert!(job.status.is_active(), "{job:?}");

    // Kill the server (SIGKILL) while it is copying.
    let during = wait_for(&api, Duration::from_secs(60), "copying", |j| {
        j.status == JobStatus::Copying && j.counts.messages_done > 0
    })
    .await;
    portal.kill();
    assert!(
        during.counts.messages_done < during.counts.messages_total,
        "{during:?}"
    );

    portal.restart().await.unwrap();
    // The session cookie survives the restart (sessions live in the database).
    let done = wait_for(&api, Duration::from_secs(180), "the job to finish", |j| {
        j.status.is_settled()
    })
    .await;
    assert_eq!(done.status, JobStatus::Synced, "{done:?}");
    assert_exact_copy(&servers, "alice", &done).await;

    // No password in anything the API sent or the server logged.
    let seen = api.everything_seen() + &portal.log_text();
    for secret in [SOURCE_PW, TARGET_PW] {
        assert!(!contains_secret(&seen, secret), "a password leaked");
    }
    // Credentials are erased once the job is over.
    let answer = api.post("/api/my/job/sync", &()).await.unwrap();
    assert_eq!(answer.status, 409, "{}", answer.body);
}

#[tokio::test]
async fn live_progress_streams_a_snapshot_then_events_and_resumes_without_gaps() {
    let servers = servers(&["bob"], 400).await;
    let portal = Portal::start_with_config(&route_config(&servers.source, &servers.target, ""))
        .await
        .unwrap();
    let api = Api::new(&portal.url(""));
    sign_in(&api, "bob").await;

    let mut stream = api.events("/api/my/job/events", None).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.event, "snapshot");
    let snapshot: JobView = serde_json::from_str(&first.data).unwrap();
    assert_eq!(snapshot.status, JobStatus::Ready);

    api.post_json::<_, JobView>("/api/my/job/start", &())
        .await
        .unwrap();
    let mut events: Vec<JobEvent> = Vec::new();
    let started = Instant::now();
    loop {
        let sse = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .expect("an event within a minute")
            .unwrap()
            .expect("the stream stays open");
        assert_eq!(sse.event, "job");
        let event: JobEvent = serde_json::from_str(&sse.data).unwrap();
        assert_eq!(sse.id.as_deref(), Some(event.seq.to_string().as_str()));
        let finished = matches!(
            event.kind,
            JobEventKind::Status { status, .. } if status.is_settled()
        );
        events.push(event);
        if finished {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120));
    }
    let statuses: Vec<JobStatus> = events
        .iter()
        .filter_map(|e| match e.kind {
            JobEventKind::Status { status, .. } => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            JobStatus::Queued,
            JobStatus::Connecting,
            JobStatus::Copying,
            JobStatus::Synced
        ]
    );
    assert!(events
        .iter()
        .any(|e| matches!(e.kind, JobEventKind::Progress { .. })));
    // Numbers are consecutive: nothing was skipped in the stream.
    for pair in events.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }

    // Reconnect as a browser would after a drop, from the middle.
    let middle = events[events.len() / 2].seq;
    let mut resumed = api
        .events("/api/my/job/events", Some(middle))
        .await
        .unwrap();
    let again = resumed.next().await.unwrap().unwrap();
    assert_eq!(again.event, "snapshot");
    assert_eq!(
        again.id, None,
        "a resumed snapshot must not move the client's position"
    );
    let mut replayed = Vec::new();
    while replayed.len() < events.iter().filter(|e| e.seq > middle).count() {
        let sse = tokio::time::timeout(Duration::from_secs(10), resumed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        replayed.push(serde_json::from_str::<JobEvent>(&sse.data).unwrap());
    }
    let expected: Vec<&JobEvent> = events.iter().filter(|e| e.seq > middle).collect();
    assert_eq!(replayed.iter().collect::<Vec<_>>(), expected);
}

#[tokio::test]
async fn wrong_password_says_which_side_and_staff_routes_are_closed() {
    let servers = servers(&["carol", "dave"], 0).await;
    let portal = Portal::start_with_config(&route_config(&servers.source, &servers.target, ""))
        .await
        .unwrap();
    portal.add_staff("helen", STAFF_PW, "helpdesk").unwrap();

    // A wrong target password: the source side is fine, the target side says so.
    let carol = Api::new(&portal.url(""));
    let result: SignInResult = carol
        .post_json(
            "/api/session",
            &sign_in_request("carol", SOURCE_PW, "not-it"),
        )
        .await
        .unwrap();
    assert!(result.source.ok, "{result:?}");
    assert!(
        !result.target.ok && result.target.code == "wrong_password",
        "{result:?}"
    );
    assert_eq!(result.target.side, AccountSide::Target);
    assert!(result.job_id.is_none());
    assert_eq!(carol.get("/api/my/job").await.unwrap().status, 401);

    let carol_job = sign_in(&carol, "carol").await;
    let dave = Api::new(&portal.url(""));
    let dave_job = sign_in(&dave, "dave").await;
    assert_ne!(carol_job, dave_job);
    // Each sees only their own job; neither can use the helpdesk to read the other's.
    let seen: JobView = dave.get_json("/api/my/job").await.unwrap();
    assert_eq!(
        (seen.id.as_str(), seen.source_user.as_str()),
        (dave_job.as_str(), "dave")
    );
    for path in [
        format!("/api/helpdesk/jobs/{carol_job}"),
        format!("/api/helpdesk/jobs/{carol_job}/events"),
        "/api/helpdesk/jobs".to_owned(),
        "/api/admin/routes".to_owned(),
    ] {
        assert_eq!(dave.get(&path).await.unwrap().status, 403, "{path}");
        let anonymous = Api::new(&portal.url(""));
        assert_eq!(anonymous.get(&path).await.unwrap().status, 401, "{path}");
    }

    // A state-changing request from another site is refused, even with a valid session.
    let foreign = dave
        .post_with_origin("/api/my/job/start", &(), Some("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(foreign.status, 403, "{}", foreign.body);

    // Staff: wrong password refused; right one reaches the table; admin pages stay closed.
    let staff = Api::new(&portal.url(""));
    let wrong = staff
        .post(
            "/api/staff/session",
            &StaffSignIn {
                username: "helen".into(),
                password: "nope-nope-nope".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    staff.staff_sign_in("helen", STAFF_PW).await.unwrap();
    let page: mailferry_shared::JobPage =
        staff.get_json("/api/helpdesk/jobs?q=caro").await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.jobs[0].id, carol_job);
    assert_eq!(staff.get("/api/admin/routes").await.unwrap().status, 403);
    // Staff cannot act as an end user either.
    assert_eq!(staff.get("/api/my/job").await.unwrap().status, 403);

    let everything = carol.everything_seen()
        + &dave.everything_seen()
        + &staff.everything_seen()
        + &portal.log_text();
    for secret in [SOURCE_PW, TARGET_PW, STAFF_PW] {
        assert!(!contains_secret(&everything, secret), "a password leaked");
    }
}

#[tokio::test]
async fn repeated_wrong_passwords_are_rate_limited() {
    let servers = servers(&["erin"], 0).await;
    let portal = Portal::start_with_config(&route_config(&servers.source, &servers.target, ""))
        .await
        .unwrap();
    let api = Api::new(&portal.url(""));
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let answer = api
            .post("/api/session", &sign_in_request("erin", "bad", TARGET_PW))
            .await
            .unwrap();
        statuses.push(answer.status);
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert_eq!(statuses[6], 429, "{statuses:?}");
    // Even the right password waits until the window passes.
    let answer = api
        .post(
            "/api/session",
            &sign_in_request("erin", SOURCE_PW, TARGET_PW),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 429);
    assert!(answer.body.contains("Wait"), "{}", answer.body);
}
