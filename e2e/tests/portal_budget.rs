//! One portal node's budget of message bytes in flight (`memory_budget_mb`) holds across
//! its jobs: two mailboxes copied at once by one node, each with three folders copied at
//! once, never hold more than the budget together. Read from the figure the node logs
//! after each run (the most listed bytes reserved at once in the process), not from timing.

use mailferry_e2e::api::Api;
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::imap_client::{connect, AppendItem};
use mailferry_e2e::memory::in_flight_from_log;
use mailferry_e2e::portal::Portal;
use mailferry_e2e::seed::sized_message;
use mailferry_shared::{JobStatus, JobView};
use std::time::{Duration, Instant};

const USERS: [&str; 2] = ["alice", "bob"];

fn password(side: &str, user: &str) -> String {
    format!("{side}-{user}-pw")
}

fn plain(name: &str, port: u16) -> String {
    format!(
        "[servers.{name}]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nallow_plaintext = true\nconnections_per_job = 3\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_of_one_node_stay_within_its_budget_together() {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    for (u, user) in USERS.iter().enumerate() {
        source.add_user(user, &password("src", user)).unwrap();
        target.add_user(user, &password("tgt", user)).unwrap();
        let mut conn = connect(&source.account(user, &password("src", user)))
            .await
            .unwrap();
        let folders = ["INBOX", "Archive", "Sent"];
        for f in &folders[1..] {
            conn.create(f).await.unwrap();
        }
        let mut bodies = Vec::new();
        for (f, folder) in folders.iter().enumerate() {
            for n in 0..25 {
                let id = u * 1000 + f * 100 + n;
                bodies.push((*folder, sized_message(id, 50_000 + n * 3_000)));
            }
        }
        let items: Vec<AppendItem<'_>> = bodies
            .iter()
            .map(|(folder, body)| AppendItem {
                mailbox: folder,
                flags: &[],
                internal_date: Some("15-Jun-2021 12:00:00 +0200"),
                bytes: body,
            })
            .collect();
        for r in conn.append_pipelined(&items).await.unwrap() {
            r.unwrap();
        }
        conn.logout().await;
    }

    let config = format!(
        "workers = 2\nmemory_budget_mb = 1\n{}{}[routes.default]\nsource = \"old\"\ntarget = \"new\"\nlabel = \"Old to new\"\n",
        plain("old", source.imap_port()),
        plain("new", target.imap_port())
    );
    let portal = Portal::start_with_config(&config).await.unwrap();
    let mut apis = Vec::new();
    for user in USERS {
        let api = Api::new(&portal.url(""));
        api.user_sign_in(
            (user, &password("src", user)),
            (user, &password("tgt", user)),
        )
        .await
        .unwrap();
        apis.push(api);
    }
    // Both started before either runs far: the node's two workers copy them at once.
    for api in &apis {
        let job: JobView = api.post_json("/api/my/job/start", &()).await.unwrap();
        assert!(job.status.is_active(), "{job:?}");
    }
    for (api, user) in apis.iter().zip(USERS) {
        let started = Instant::now();
        let job = loop {
            let job: JobView = api.get_json("/api/my/job").await.unwrap();
            if job.status.is_settled() {
                break job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "not finished: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(job.status, JobStatus::Synced, "{job:?}");
        assert_eq!(job.counts.messages_done, 75, "{job:?}");
        let before = snapshot(&source.account(user, &password("src", user)))
            .await
            .unwrap();
        let after = snapshot(&target.account(user, &password("tgt", user)))
            .await
            .unwrap();
        let map = FolderMap::from_pairs(
            job.folders
                .iter()
                .map(|f| (f.source.as_str(), f.target.as_str())),
        );
        let differences = compare(&before, &after, &map);
        assert!(differences.is_empty(), "{user}: {differences:#?}");
    }

    let figures = in_flight_from_log(&portal.log_text());
    println!("(peak bytes in flight, budget) after each run: {figures:?}");
    assert!(figures.len() >= 2, "one line per run");
    let (peak, budget) = figures.iter().copied().max().unwrap();
    assert_eq!(budget, 1 << 20);
    assert!(peak > 0);
    assert!(
        peak <= budget,
        "{peak} bytes were in flight at once on the node, over its budget of {budget}"
    );
}
