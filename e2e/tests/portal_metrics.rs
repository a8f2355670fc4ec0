//! `/metrics` on its own listener (`metrics_listen`): Prometheus text that a Prometheus
//! text-format parser reads, whose figures match the jobs: jobs by status as the helpdesk
//! lists them, messages and bytes copied as the targets hold them, this node's events.

use mailferry_e2e::api::Api;
use mailferry_e2e::compare::snapshot;
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::portal::{route_config, Portal};
use mailferry_e2e::ports::free_port;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use mailferry_shared::{JobPage, JobStatus};
use prometheus_parse::{Sample, Scrape, Value};
use std::time::Duration;

const ADMIN_PW: &str = "admin-password-1";

fn value(sample: &Sample) -> f64 {
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{}: unexpected {other:?}", sample.metric),
    }
}

/// The one sample named `name` whose labels include `labels`.
fn one(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    value(found[0])
}

async fn scrape(port: u16) -> (String, Scrape) {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = Scrape::parse(lines).unwrap_or_else(|e| panic!("{e}: {text}"));
    (text, parsed)
}

#[tokio::test]
async fn metrics_parse_and_match_the_jobs() {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    let mut folders = 0;
    for (i, user) in ["ann", "ben"].iter().enumerate() {
        source.add_user(user, &format!("{user}-Pw-9")).unwrap();
        target.add_user(user, &format!("{user}-Pw-9")).unwrap();
        let seeded = seed_mailbox(
            &source.account_tls(user, &format!("{user}-Pw-9")),
            &SeedSpec::new(300 + i as u64, 60 + 40 * i),
        )
        .await
        .unwrap();
        folders += seeded.folders.len();
    }
    // cat's target password is wrong: that job does not get to copy.
    source.add_user("cat", "cat-Pw-9").unwrap();
    target.add_user("cat", "cat-Pw-9").unwrap();

    let metrics_port = free_port();
    let portal = Portal::start_with_config_and_env(
        &route_config(&source, &target, ""),
        vec![(
            "MAILFERRY_METRICS_LISTEN".into(),
            format!("127.0.0.1:{metrics_port}"),
        )],
    )
    .await
    .unwrap();
    portal.add_staff("ada", ADMIN_PW, "admin").unwrap();

    // Before any job: every status is listed, at zero.
    let (_, before) = scrape(metrics_port).await;
    for status in JobStatus::ALL {
        assert_eq!(
            one(&before, "mailferry_jobs", &[("status", status.as_str())]),
            0.0
        );
    }
    assert_eq!(one(&before, "mailferry_messages_copied", &[]), 0.0);

    let admin = Api::new(&portal.url(""));
    admin.staff_sign_in("ada", ADMIN_PW).await.unwrap();
    let csv = "source_user,source_password,target_user,target_password\n\
               ann,ann-Pw-9,ann,ann-Pw-9\nben,ben-Pw-9,ben,ben-Pw-9\ncat,cat-Pw-9,cat,not-cats-pw\n";
    let result = admin.import_csv(csv).await.unwrap();
    let batch = result.batch.expect("a batch");
    admin
        .wait_for_batch(&batch.id, 3, Duration::from_secs(180))
        .await
        .unwrap();

    let page: JobPage = admin
        .get_json("/api/helpdesk/jobs?per_page=100")
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    // What the targets hold (the sizes the servers give: the seed's own byte counts
    // differ where the server stores line ends its way).
    let (mut messages, mut bytes) = (0, 0);
    for user in ["ann", "ben"] {
        let held = snapshot(&target.account_tls(user, &format!("{user}-Pw-9")))
            .await
            .unwrap();
        for folder in held.folders.values() {
            messages += folder.messages.len();
            bytes += folder.messages.iter().map(|m| m.size as u64).sum::<u64>();
        }
    }
    assert!(messages >= 160, "{messages}");
    let (text, after) = scrape(metrics_port).await;
    // Jobs by status: what the helpdesk lists, status by status.
    for status in JobStatus::ALL {
        let listed = page.jobs.iter().filter(|j| j.status == status).count();
        assert_eq!(
            one(&after, "mailferry_jobs", &[("status", status.as_str())]),
            listed as f64,
            "{status:?} in {text}"
        );
    }
    assert_eq!(
        one(&after, "mailferry_jobs", &[("status", "synced")]),
        2.0,
        "{text}"
    );
    assert_eq!(one(&after, "mailferry_queue_length", &[]), 0.0, "{text}");
    // Copied: every message of ann and ben, with their sizes.
    assert_eq!(
        one(&after, "mailferry_messages_copied", &[]),
        messages as f64,
        "{text}"
    );
    assert_eq!(
        one(&after, "mailferry_bytes_copied", &[]),
        bytes as f64,
        "{text}"
    );
    assert_eq!(
        one(&after, "mailferry_messages_skipped", &[]),
        0.0,
        "{text}"
    );
    // This node's events: one "folder done" per folder of the two copies.
    assert_eq!(
        one(
            &after,
            "mailferry_node_events_total",
            &[("kind", "folder_done")]
        ),
        folders as f64,
        "{text}"
    );
    assert!(
        one(&after, "mailferry_node_events_total", &[("kind", "status")]) >= 6.0,
        "{text}"
    );
    // The portal's own port does not serve it.
    let portal_side = reqwest::get(portal.url("/metrics")).await.unwrap();
    assert!(
        !portal_side.text().await.unwrap().contains("mailferry_jobs"),
        "metrics only on metrics_listen"
    );
}
