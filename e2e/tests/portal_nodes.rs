//! Several portal nodes sharing one PostgreSQL job queue, against real Dovecot servers:
//! jobs are shared out, each runs on one node at a time, the per-server limit holds across
//! nodes (checked from Dovecot's own login log), live progress reaches a browser connected
//! to a node that is not running the job, and the jobs of a node killed mid-copy are
//! finished by the other node with exact copies and no duplicates; a node stopped with
//! SIGTERM hands its jobs over at once, and one restarted under its name takes its own back.

use futures::StreamExt;
use mailferry_e2e::api::Api;
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::login_log::{peak_concurrency, sessions};
use mailferry_e2e::memory::{in_flight_from_log, peak_rss_kb};
use mailferry_e2e::portal::Portal;
use mailferry_e2e::postgres::{PgOptions, PgServer};
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use mailferry_shared::{
    Health, JobDetail, JobEvent, JobEventKind, JobPage, JobRunView, JobStatus, JobView,
    SignInRequest, SignInResult,
};
use std::time::{Duration, Instant};

const ADMIN_PW: &str = "admin-password-1";

fn password(side: &str, i: usize) -> String {
    format!("{side}-pw-{i}")
}

fn user(i: usize) -> String {
    format!("user{i:02}")
}

/// Two Dovecots, one PostgreSQL, and the nodes started so far.
struct Cluster {
    source: Dovecot,
    target: Dovecot,
    pg: PgServer,
    db_url: String,
    key_dir: tempfile::TempDir,
    config: String,
    nodes: Vec<Portal>,
    /// `MAILFERRY_NODE_NAME` of each of `nodes`.
    names: Vec<String>,
}

impl Cluster {
    /// `users` accounts on both servers (none for tests that need no mail), each source
    /// seeded with `messages` messages.
    /// `workers` per node; the target server takes at most `max_jobs` mailboxes at once,
    /// each job with at most `connections` connections per side.
    async fn new(
        users: usize,
        messages: usize,
        workers: usize,
        max_jobs: u32,
        connections: u32,
    ) -> Cluster {
        Self::with_database(
            users,
            messages,
            workers,
            max_jobs,
            connections,
            PgOptions::default(),
        )
        .await
    }

    async fn with_database(
        users: usize,
        messages: usize,
        workers: usize,
        max_jobs: u32,
        connections: u32,
        pg_options: PgOptions,
    ) -> Cluster {
        let source = Dovecot::start(DovecotOptions::default()).unwrap();
        let target = Dovecot::start(DovecotOptions::default()).unwrap();
        for i in 1..=users {
            source.add_user(&user(i), &password("src", i)).unwrap();
            target.add_user(&user(i), &password("tgt", i)).unwrap();
        }
        // Several mailboxes seeded at once: large clusters would take long one by one.
        let accounts: Vec<_> = (1..=users)
            .map(|i| (i, source.account_tls(&user(i), &password("src", i))))
            .collect();
        let seeded: Vec<_> = futures::stream::iter(accounts.iter())
            .map(|(i, account)| async move {
                seed_mailbox(account, &SeedSpec::new(500 + *i as u64, messages)).await
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for report in seeded {
            report.unwrap();
        }
        let pg = tokio::task::spawn_blocking(move || PgServer::start_with(pg_options))
            .await
            .unwrap()
            .unwrap();
        let db_url = pg.create_database("mailferry").unwrap();
        let config = format!(
            "workers = {workers}\nlease_seconds = 6\n\
             [servers.old]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n\
             connections_per_job = {connections}\n\
             [servers.new]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n\
             max_jobs = {max_jobs}\n\
             [routes.default]\nsource = \"old\"\ntarget = \"new\"\nlabel = \"Old to new\"\n",
            source.imaps_port(),
            source.ca_pem_path().display(),
            target.imaps_port(),
            target.ca_pem_path().display(),
        );
        Cluster {
            source,
            target,
            pg,
            db_url,
            key_dir: tempfile::tempdir().unwrap(),
            config,
            nodes: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Starts another node on the shared database and key. Returns its index.
    async fn add_node(&mut self, name: &str) -> usize {
        let node = Portal::start_node(&self.config, &self.db_url, self.key_dir.path(), name)
            .await
            .unwrap();
        let health: Health = reqwest::get(node.url("/api/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health.database, "postgres");
        assert_eq!(health.node, name);
        self.nodes.push(node);
        self.names.push(name.to_owned());
        self.nodes.len() - 1
    }

    fn node(&self, i: usize) -> &Portal {
        &self.nodes[i]
    }

    fn node_named(&self, name: &str) -> Option<&Portal> {
        let i = self.names.iter().position(|n| n == name)?;
        self.nodes.get(i)
    }

    async fn staff(&self, node: usize) -> Api {
        let api = Api::new(&self.node(node).url(""));
        api.staff_sign_in("ada", ADMIN_PW).await.unwrap();
        api
    }

    /// Imports users `from..=to` as one CSV batch through `admin`.
    async fn import(&self, admin: &Api, users: std::ops::RangeInclusive<usize>) {
        let mut csv = String::from("source_user,source_password,target_user,target_password\n");
        for i in users.clone() {
            csv.push_str(&format!(
                "{},{},{},{}\n",
                user(i),
                password("src", i),
                user(i),
                password("tgt", i)
            ));
        }
        let result = admin.import_csv(&csv).await.unwrap();
        assert!(result.preview.errors.is_empty(), "{:?}", result.preview);
        assert_eq!(result.batch.unwrap().jobs as usize, users.count());
    }

    /// Waits until every listed job is settled; returns them.
    async fn wait_all_settled(&self, staff: &Api, jobs: usize, limit: Duration) -> Vec<JobView> {
        let started = Instant::now();
        loop {
            let page: JobPage = staff
                .get_json("/api/helpdesk/jobs?per_page=500")
                .await
                .unwrap();
            if page.jobs.len() == jobs && page.jobs.iter().all(|j| j.status.is_settled()) {
                return page.jobs;
            }
            assert!(
                started.elapsed() < limit,
                "jobs not finished in time: {:?}",
                page.jobs
                    .iter()
                    .map(|j| (&j.source_user, j.status))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn assert_exact_copy(&self, job: &JobView) {
        let i: usize = job.source_user[4..].parse().unwrap();
        let map = FolderMap::from_pairs(
            job.folders
                .iter()
                .map(|f| (f.source.as_str(), f.target.as_str())),
        );
        let source = snapshot(&self.source.account_tls(&user(i), &password("src", i)))
            .await
            .unwrap();
        let target = snapshot(&self.target.account_tls(&user(i), &password("tgt", i)))
            .await
            .unwrap();
        assert!(
            source
                .folders
                .values()
                .map(|f| f.messages.len())
                .sum::<usize>()
                > 0
        );
        let differences = compare(&source, &target, &map);
        assert!(
            differences.is_empty(),
            "{}: differences: {differences:#?}",
            job.source_user
        );
    }
}

/// Every run of the job, from the helpdesk's job page.
async fn runs_of(staff: &Api, job: &JobView) -> Vec<JobRunView> {
    let detail: JobDetail = staff
        .get_json(&format!("/api/helpdesk/jobs/{}", job.id))
        .await
        .unwrap();
    detail.runs
}

#[tokio::test]
async fn two_nodes_share_twenty_jobs_within_the_server_limit() {
    // Two workers per node and a limit of three mailboxes on the target: the limit can
    // only be reached with both nodes copying, and only kept if they count together.
    let mut cluster = Cluster::new(20, 60, 2, 3, 2).await;
    let a = cluster.add_node("node-a").await;
    let b = cluster.add_node("node-b").await;
    cluster.node(a).add_staff("ada", ADMIN_PW, "admin").unwrap();
    // Staff sign in on node B with an account made through node A: one database.
    let admin = cluster.staff(b).await;
    cluster.import(&admin, 1..=20).await;
    let jobs = cluster
        .wait_all_settled(&admin, 20, Duration::from_secs(300))
        .await;

    let mut per_node = std::collections::BTreeMap::<String, usize>::new();
    let mut windows = Vec::new();
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Synced, "{job:?}");
        // Each job ran exactly once, on one node, and finished there.
        let runs = runs_of(&admin, job).await;
        assert_eq!(runs.len(), 1, "{runs:?}");
        let run = &runs[0];
        assert_eq!(run.outcome.as_deref(), Some("synced"), "{run:?}");
        *per_node.entry(run.node.clone()).or_default() += 1;
        windows.push((run.started_at_ms, run.finished_at_ms.unwrap()));
        cluster.assert_exact_copy(job).await;
    }
    // Both nodes took part.
    assert_eq!(per_node.len(), 2, "{per_node:?}");

    // From the target server's side: never more than three mailboxes open at once, and
    // three were reached (the limit was really tested); no mailbox had more connections
    // than one job uses (a job running twice at once would double them).
    let logins = sessions(&cluster.target.log_text());
    assert!(logins.len() >= 20, "{} sessions", logins.len());
    let (peak_users, peak_sessions) = peak_concurrency(&logins);
    assert_eq!(peak_users, 3, "mailboxes open at once on the target");
    assert!(
        peak_sessions <= 2,
        "{peak_sessions} sessions for one mailbox"
    );
    // From the database's side: at most three runs at any moment.
    let mut edges: Vec<(i64, i64)> = windows
        .iter()
        .flat_map(|&(s, e)| [(s, 1), (e, -1)])
        .collect();
    edges.sort_by_key(|&(t, d)| (t, d));
    let mut running = 0;
    for (_, d) in edges {
        running += d;
        assert!(running <= 3, "more than three runs at once");
    }
    eprintln!("jobs per node: {per_node:?}");
}

#[tokio::test]
async fn jobs_of_a_killed_node_finish_on_the_other_with_exact_copies() {
    let mut cluster = Cluster::new(3, 2500, 4, 10, 2).await;
    let a = cluster.add_node("node-a").await;
    cluster.node(a).add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin_a = cluster.staff(a).await;
    // Users 1 and 2 through the CSV import, user 3 signs in and starts the job themself.
    cluster.import(&admin_a, 1..=2).await;
    let user3 = Api::new(&cluster.node(a).url(""));
    let signed: SignInResult = user3
        .post_json(
            "/api/session",
            &SignInRequest {
                route: "default".into(),
                source_user: user(3),
                source_password: password("src", 3),
                target_user: user(3),
                target_password: password("tgt", 3),
            },
        )
        .await
        .unwrap();
    assert!(signed.source.ok && signed.target.ok, "{signed:?}");
    let _: JobView = user3.post_json("/api/my/job/start", &()).await.unwrap();

    // All three copying on node A (the only node so far).
    let started = Instant::now();
    loop {
        let page: JobPage = admin_a.get_json("/api/helpdesk/jobs").await.unwrap();
        if page.jobs.len() == 3
            && page
                .jobs
                .iter()
                .all(|j| j.status == JobStatus::Copying && j.counts.messages_done > 0)
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{page:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = cluster.add_node("node-b").await;
    // User 3 watches on node B (the session lives in the shared database) while node A
    // copies: live progress reaches a node that is not running the job.
    let user3_on_b = user3.at(&cluster.node(b).url(""));
    let mut stream = user3_on_b.events("/api/my/job/events", None).await.unwrap();
    let snapshot = stream.next().await.unwrap().expect("a snapshot");
    let first: JobView = serde_json::from_str(&snapshot.data).unwrap();
    let mut progress_seen = Vec::new();
    while progress_seen.len() < 2 {
        let sse = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("progress from node A reaches node B")
            .unwrap()
            .expect("stream open");
        let event: JobEvent = serde_json::from_str(&sse.data).unwrap();
        if let JobEventKind::Progress { counts, .. } = event.kind {
            progress_seen.push(counts.messages_done);
        }
    }
    assert!(progress_seen[1] > first.counts.messages_done.min(progress_seen[0]));

    // Kill node A mid-copy.
    let before: JobPage = admin_a.get_json("/api/helpdesk/jobs").await.unwrap();
    assert!(
        before
            .jobs
            .iter()
            .all(|j| j.counts.messages_done < j.counts.messages_total),
        "all still copying: {before:?}"
    );
    cluster.nodes[a].kill();

    // Node B takes them over once node A's leases run out; user 3's stream on node B
    // shows it to the end.
    let finished = tokio::time::timeout(Duration::from_secs(180), async {
        loop {
            let Some(sse) = stream.next().await.unwrap() else {
                panic!("the stream ended before the job did")
            };
            let event: JobEvent = serde_json::from_str(&sse.data).unwrap();
            if let JobEventKind::Status { status, .. } = event.kind {
                if status.is_settled() {
                    return status;
                }
            }
        }
    })
    .await
    .expect("user 3's job finishes on node B");
    assert_eq!(finished, JobStatus::Synced);

    let admin_b = admin_a.at(&cluster.node(b).url(""));
    let jobs = cluster
        .wait_all_settled(&admin_b, 3, Duration::from_secs(180))
        .await;
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Synced, "{job:?}");
        let runs = runs_of(&admin_b, job).await;
        let runs: Vec<(&str, Option<&str>)> = runs
            .iter()
            .map(|r| (r.node.as_str(), r.outcome.as_deref()))
            .collect();
        assert_eq!(
            runs,
            [("node-a", Some("abandoned")), ("node-b", Some("synced"))],
            "{}",
            job.source_user
        );
        cluster.assert_exact_copy(job).await;
    }
    // No password in any answer, stream or log of either node, nor the database URL's.
    let seen = admin_b.everything_seen()
        + &user3.everything_seen()
        + &cluster.node(a).log_text()
        + &cluster.node(b).log_text();
    for i in 1..=3 {
        assert!(!seen.contains(&password("src", i)), "a password leaked");
        assert!(!seen.contains(&password("tgt", i)), "a password leaked");
    }
    assert!(
        !seen.contains(cluster.pg.password()),
        "the database password leaked"
    );
}

#[tokio::test]
async fn a_node_with_another_secret_key_refuses_to_start() {
    let mut cluster = Cluster::new(0, 0, 1, 10, 1).await;
    cluster.add_node("node-a").await;
    let other_key = tempfile::tempdir().unwrap();
    let err = match Portal::start_node(&cluster.config, &cluster.db_url, other_key.path(), "node-x")
        .await
    {
        Ok(_) => panic!("a node with a different key started"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("same key"), "{err}");
}

#[tokio::test]
async fn failed_sign_ins_count_on_every_node() {
    let mut cluster = Cluster::new(0, 0, 1, 10, 1).await;
    let a = cluster.add_node("node-a").await;
    let b = cluster.add_node("node-b").await;
    cluster.node(a).add_staff("ada", ADMIN_PW, "admin").unwrap();
    // Five wrong passwords, spread over both nodes.
    for attempt in 0..5 {
        let node = if attempt % 2 == 0 { a } else { b };
        let api = Api::new(&cluster.node(node).url(""));
        let answer = api
            .post(
                "/api/staff/session",
                &mailferry_shared::StaffSignIn {
                    username: "ada".into(),
                    password: format!("guess-{attempt}"),
                },
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    // Now both refuse, even the right password.
    for node in [a, b] {
        let api = Api::new(&cluster.node(node).url(""));
        let answer = api
            .post(
                "/api/staff/session",
                &mailferry_shared::StaffSignIn {
                    username: "ada".into(),
                    password: ADMIN_PW.into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert!(answer.body.contains("Too many"), "{}", answer.body);
    }
}

/// Peak resident memory of a running node, in MB.
fn peak_mb(node: &Portal) -> f64 {
    node.pid()
        .and_then(peak_rss_kb)
        .map_or(0.0, |kb| kb as f64 / 1024.0)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Benchmark, not a test (scripts/bench.sh runs it with release builds): 200 mailboxes of
/// 200 messages imported at once and copied by two nodes sharing a durable PostgreSQL.
/// Prints the total throughput, each node's share and peak memory, then mbsync copying
/// the same mailboxes with the same concurrency (8 at a time) for comparison.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes of work; run explicitly"]
async fn benchmark_two_hundred_mailboxes_across_two_nodes() {
    let mailboxes = env_or("BENCH_MAILBOXES", 200);
    let messages = env_or("BENCH_MESSAGES_PER_MAILBOX", 200);
    // Two connections per side per job (folders copied two at a time); mbsync uses one.
    let connections = env_or("BENCH_CONNECTIONS_PER_JOB", 2) as u32;
    let seeding = Instant::now();
    let mut cluster = Cluster::with_database(
        mailboxes,
        messages,
        4,
        10,
        connections,
        PgOptions {
            durable: std::env::var_os("BENCH_PG_NOT_DURABLE").is_none(),
        },
    )
    .await;
    println!(
        "seeded {mailboxes} mailboxes of {messages} messages in {:.0} s",
        seeding.elapsed().as_secs_f64()
    );
    let a = cluster.add_node("node-a").await;
    cluster.add_node("node-b").await;
    cluster.node(a).add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin = cluster.staff(a).await;

    let started = Instant::now();
    cluster.import(&admin, 1..=mailboxes).await;
    let jobs = cluster
        .wait_all_settled(&admin, mailboxes, Duration::from_secs(3600))
        .await;
    let secs = started.elapsed().as_secs_f64();

    #[derive(Default)]
    struct Share {
        jobs: usize,
        messages: u64,
        bytes: u64,
    }
    let mut shares = std::collections::BTreeMap::<String, Share>::new();
    let (mut total_messages, mut total_bytes) = (0u64, 0u64);
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Synced, "{job:?}");
        let node = runs_of(&admin, job)
            .await
            .last()
            .map(|r| r.node.clone())
            .unwrap_or_default();
        let share = shares.entry(node).or_default();
        share.jobs += 1;
        share.messages += job.counts.messages_done;
        share.bytes += job.counts.bytes_done;
        total_messages += job.counts.messages_done;
        total_bytes += job.counts.bytes_done;
    }
    let mb = total_bytes as f64 / 1e6;
    println!(
        "mailferry, 2 nodes x 4 workers, {connections} connection(s) per side per job: {mailboxes} mailboxes, {total_messages} messages, {mb:.1} MB in {secs:.1} s \
         = {:.0} msg/s, {:.1} MB/s, {:.2} mailboxes/s",
        total_messages as f64 / secs,
        mb / secs,
        mailboxes as f64 / secs
    );
    for (node, share) in &shares {
        println!(
            "  {node}: {} jobs ({:.0}%), {} messages ({:.0}%), {:.1} MB, peak memory {:.0} MB",
            share.jobs,
            100.0 * share.jobs as f64 / mailboxes as f64,
            share.messages,
            100.0 * share.messages as f64 / total_messages.max(1) as f64,
            share.bytes as f64 / 1e6,
            cluster.node_named(node).map_or(0.0, peak_mb),
        );
    }
    // Every tenth copy verified exactly (all of them would take longer than the copy).
    for job in jobs.iter().step_by(10) {
        cluster.assert_exact_copy(job).await;
    }

    // The peer: mbsync copying the same mailboxes into a fresh server, 8 at a time, over
    // TLS like the nodes.
    let peer = Dovecot::start(DovecotOptions::default()).unwrap();
    for i in 1..=mailboxes {
        peer.add_user(&user(i), &password("tgt", i)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let configs: Vec<_> = (1..=mailboxes)
        .map(|i| {
            let state = dir.path().join(format!("state-{i}"));
            std::fs::create_dir_all(&state).unwrap();
            let config = dir.path().join(format!("mbsyncrc-{i}"));
            std::fs::write(
                &config,
                format!(
                    "IMAPAccount src\nHost localhost\nPort {}\nUser {}\nPass {}\nSSLType IMAPS\nCertificateFile {}\n\n\
                     IMAPStore src\nAccount src\n\n\
                     IMAPAccount dst\nHost localhost\nPort {}\nUser {}\nPass {}\nSSLType IMAPS\nCertificateFile {}\n\n\
                     IMAPStore dst\nAccount dst\n\n\
                     Channel copy\nFar :src:\nNear :dst:\nPatterns *\nCreate Near\nSync Pull\nExpunge None\nCopyArrivalDate yes\nSyncState {}/\n",
                    cluster.source.imaps_port(),
                    user(i),
                    password("src", i),
                    cluster.source.ca_pem_path().display(),
                    peer.imaps_port(),
                    user(i),
                    password("tgt", i),
                    peer.ca_pem_path().display(),
                    state.display()
                ),
            )
            .unwrap();
            config
        })
        .collect();
    let started = Instant::now();
    let outcomes: Vec<_> = futures::stream::iter(configs)
        .map(|config| async move {
            tokio::process::Command::new("mbsync")
                .arg("-c")
                .arg(&config)
                .arg("-q")
                .arg("copy")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let failed = outcomes.iter().filter(|ok| !**ok).count();
    println!(
        "mbsync, 8 at a time: {mailboxes} mailboxes ({failed} runs failed) in {secs:.1} s = {:.0} msg/s, {:.1} MB/s, {:.2} mailboxes/s",
        total_messages as f64 / secs,
        mb / secs,
        mailboxes as f64 / secs
    );
}

/// A node's run of `job` and the other node's run after it: (first run, second run).
fn two_runs(runs: &[JobRunView]) -> (&JobRunView, &JobRunView) {
    assert_eq!(runs.len(), 2, "{runs:?}");
    (&runs[0], &runs[1])
}

/// Waits until every job is copying with some messages done.
async fn wait_mid_copy(staff: &Api, jobs: usize) {
    let started = Instant::now();
    loop {
        let page: JobPage = staff.get_json("/api/helpdesk/jobs").await.unwrap();
        if page.jobs.len() == jobs
            && page
                .jobs
                .iter()
                .all(|j| j.status == JobStatus::Copying && j.counts.messages_done > 0)
        {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{page:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM to a node mid-copy: it stops claiming, releases its jobs once the grace is
/// over and exits 0; the other node resumes them at once (the leases would have held them
/// for five minutes), and the copies are exact.
#[tokio::test]
async fn a_node_stopped_with_sigterm_hands_its_jobs_over_at_once() {
    let mut cluster = Cluster::new(2, 2500, 4, 10, 2).await;
    cluster.config = cluster.config.replace(
        "lease_seconds = 6",
        "lease_seconds = 300\nshutdown_grace_seconds = 1",
    );
    let a = cluster.add_node("node-a").await;
    cluster.node(a).add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin_a = cluster.staff(a).await;
    cluster.import(&admin_a, 1..=2).await;
    wait_mid_copy(&admin_a, 2).await;
    let b = cluster.add_node("node-b").await;
    let admin_b = cluster.staff(b).await;

    let status = cluster.nodes[a].terminate(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "node A exited with {status}");
    let log_a = cluster.node(a).log_text();
    assert!(log_a.contains("released to another node"), "{log_a}");

    let jobs = cluster
        .wait_all_settled(&admin_b, 2, Duration::from_secs(240))
        .await;
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Synced, "{job:?}");
        let runs = runs_of(&admin_b, job).await;
        let (first, second) = two_runs(&runs);
        assert_eq!(
            (first.node.as_str(), first.outcome.as_deref()),
            ("node-a", Some("node_stopped")),
            "{runs:?}"
        );
        assert_eq!(
            (second.node.as_str(), second.outcome.as_deref()),
            ("node-b", Some("synced")),
            "{runs:?}"
        );
        // Taken over well before the 300 s lease could have run out.
        let handed_over = second.started_at_ms - first.finished_at_ms.unwrap();
        assert!(handed_over < 60_000, "{handed_over} ms: {runs:?}");
        cluster.assert_exact_copy(job).await;
    }
}

/// A node killed mid-copy (no chance to release anything) and started again under the
/// same name takes its own jobs back at once instead of waiting out its old leases.
#[tokio::test]
async fn a_restarted_node_takes_its_own_jobs_back_at_once() {
    let mut cluster = Cluster::new(1, 2500, 4, 10, 2).await;
    cluster.config = cluster
        .config
        .replace("lease_seconds = 6", "lease_seconds = 300");
    let a = cluster.add_node("node-a").await;
    cluster.node(a).add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin = cluster.staff(a).await;
    cluster.import(&admin, 1..=1).await;
    wait_mid_copy(&admin, 1).await;
    cluster.nodes[a].kill();
    cluster.nodes[a].restart().await.unwrap();
    let admin = cluster.staff(a).await;
    let jobs = cluster
        .wait_all_settled(&admin, 1, Duration::from_secs(240))
        .await;
    let job = &jobs[0];
    assert_eq!(job.status, JobStatus::Synced, "{job:?}");
    let runs = runs_of(&admin, job).await;
    let (first, second) = two_runs(&runs);
    assert_eq!(
        (first.outcome.as_deref(), second.outcome.as_deref()),
        (Some("abandoned"), Some("synced")),
        "{runs:?}"
    );
    assert!(
        second.started_at_ms - first.started_at_ms < 120_000,
        "{runs:?}"
    );
    assert!(
        cluster
            .node(a)
            .log_text()
            .contains("taking back this node's jobs"),
        "{}",
        cluster.node(a).log_text()
    );
    cluster.assert_exact_copy(job).await;
}

/// Benchmark, not a test (scripts/bench.sh runs it with release builds): one node running
/// 200 small mailboxes at once (200 workers, one connection per side per job, plain IMAP
/// so Dovecot's login processes do not proxy every connection). Prints the throughput,
/// the node's peak memory and the most message bytes it held in flight (its budget is the
/// default 64 MiB unless `BENCH_MEMORY_BUDGET_MB` says otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes of work; run explicitly"]
async fn benchmark_two_hundred_mailboxes_at_once_on_one_node() {
    let mailboxes = env_or("BENCH_MAILBOXES", 200);
    let messages = env_or("BENCH_MESSAGES_PER_MAILBOX", 20);
    let seeding = Instant::now();
    let mut cluster = Cluster::new(mailboxes, messages, mailboxes, mailboxes as u32, 1).await;
    println!(
        "seeded {mailboxes} mailboxes of {messages} messages in {:.0} s",
        seeding.elapsed().as_secs_f64()
    );
    let budget = std::env::var("BENCH_MEMORY_BUDGET_MB")
        .map(|mb| format!("memory_budget_mb = {mb}\n"))
        .unwrap_or_default();
    cluster.config = format!(
        "workers = {mailboxes}\nlease_seconds = 30\n{budget}\
         [servers.old]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nallow_plaintext = true\n\
         connections_per_job = 1\nmax_jobs = {mailboxes}\n\
         [servers.new]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nallow_plaintext = true\n\
         connections_per_job = 1\nmax_jobs = {mailboxes}\n\
         [routes.default]\nsource = \"old\"\ntarget = \"new\"\nlabel = \"Old to new\"\n",
        cluster.source.imap_port(),
        cluster.target.imap_port(),
    );
    let a = cluster.add_node("node-one").await;
    cluster.node(a).add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin = cluster.staff(a).await;
    let idle_mb = peak_mb(cluster.node(a));

    let started = Instant::now();
    cluster.import(&admin, 1..=mailboxes).await;
    let jobs = cluster
        .wait_all_settled(&admin, mailboxes, Duration::from_secs(3600))
        .await;
    let secs = started.elapsed().as_secs_f64();
    let (mut total_messages, mut total_bytes) = (0u64, 0u64);
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Synced, "{job:?}");
        total_messages += job.counts.messages_done;
        total_bytes += job.counts.bytes_done;
    }
    let mb = total_bytes as f64 / 1e6;
    let (peak_in_flight, budget) = in_flight_from_log(&cluster.node(a).log_text())
        .into_iter()
        .max()
        .unwrap_or_default();
    println!(
        "mailferry, 1 node x {mailboxes} workers: {mailboxes} mailboxes, {total_messages} messages, {mb:.1} MB in {secs:.1} s \
         = {:.0} msg/s, {:.1} MB/s; peak memory {:.0} MB (idle {idle_mb:.0} MB); message bytes in flight at most {:.1} MiB of a {:.0} MiB budget",
        total_messages as f64 / secs,
        mb / secs,
        peak_mb(cluster.node(a)),
        peak_in_flight as f64 / (1 << 20) as f64,
        budget as f64 / (1 << 20) as f64,
    );
    for job in jobs.iter().step_by(20) {
        cluster.assert_exact_copy(job).await;
    }
}
