//! The portal as people use it, in headless Chromium against the real backend and two
//! real Dovecot servers: an end user migrates their mailbox, closes the page mid-copy
//! and comes back; the helpdesk finds the job and exports its UID map.

use fantoccini::{Client, Locator};
use mailferry_e2e::api::Api;
use mailferry_e2e::browser::{screenshot, wait_for_text, with_browser};
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::portal::{route_config, Portal};
use mailferry_e2e::seed::{seeded_servers, SeedSpec};
use mailferry_shared::{JobDetail, JobPage};
use std::time::{Duration, Instant};

const SOURCE_PW: &str = "old-Pass-1";
const TARGET_PW: &str = "new-Pass-2";
const STAFF_PW: &str = "helpdesk-pass-123";

async fn fill(client: &Client, testid: &str, text: &str) -> anyhow::Result<()> {
    let input = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!("[data-testid={testid}]")))
        .await?;
    input.clear().await?;
    input.send_keys(text).await?;
    Ok(())
}

async fn click(client: &Client, testid: &str) -> anyhow::Result<()> {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!("[data-testid={testid}]")))
        .await?
        .click()
        .await?;
    Ok(())
}

/// Waits until `[data-testid=job-status]` carries one of `statuses` in `data-status`.
async fn wait_for_status(
    client: &Client,
    statuses: &[&str],
    limit: Duration,
) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        if let Ok(element) = client.find(Locator::Css("[data-testid=job-status]")).await {
            if let Ok(Some(status)) = element.attr("data-status").await {
                if statuses.contains(&status.as_str()) {
                    return Ok(status);
                }
            }
        }
        anyhow::ensure!(started.elapsed() < limit, "job never reached {statuses:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// "N of M messages" -> N.
async fn messages_done(client: &Client) -> anyhow::Result<u64> {
    let text = client
        .find(Locator::Css("[data-testid=progress-messages]"))
        .await?
        .text()
        .await?;
    Ok(text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

#[tokio::test]
async fn user_migrates_through_the_page_and_helpdesk_exports_the_uid_map() {
    let (source, target) = seeded_servers("alice", SOURCE_PW, TARGET_PW, &SeedSpec::new(77, 3000))
        .await
        .unwrap();
    let portal = Portal::start_with_config(&route_config(&source, &target, ""))
        .await
        .unwrap();
    portal.add_staff("helen", STAFF_PW, "helpdesk").unwrap();

    with_browser(async |client| {
        client.goto(&portal.url("/")).await?;
        wait_for_text(client, "[data-testid=server-status]", "Server ready").await?;
        fill(client, "source-user", "alice").await?;
        fill(client, "source-password", "not-the-password").await?;
        fill(client, "target-user", "alice").await?;
        fill(client, "target-password", TARGET_PW).await?;
        // Checking each side tells which one is wrong.
        click(client, "check-source-button").await?;
        click(client, "check-target-button").await?;
        let started = Instant::now();
        let (source_ok, target_ok) = loop {
            let source_note = client
                .find(Locator::Css("[data-testid=check-source]"))
                .await;
            let target_note = client
                .find(Locator::Css("[data-testid=check-target]"))
                .await;
            if let (Ok(s), Ok(t)) = (source_note, target_note) {
                if let (Some(s), Some(t)) = (s.attr("data-ok").await?, t.attr("data-ok").await?) {
                    break (s, t);
                }
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(20),
                "no check results"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!((source_ok.as_str(), target_ok.as_str()), ("false", "true"));
        let note = client
            .find(Locator::Css("[data-testid=check-source]"))
            .await?
            .text()
            .await?;
        assert!(
            note.contains("old"),
            "the note names the old server: {note}"
        );
        screenshot(client, "sign-in-wrong-password").await?;

        fill(client, "source-password", SOURCE_PW).await?;
        click(client, "start").await?;
        wait_for_status(
            client,
            &["queued", "connecting", "copying"],
            Duration::from_secs(30),
        )
        .await?;
        let started = Instant::now();
        while messages_done(client).await.unwrap_or(0) == 0 {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "no progress shown"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let before = messages_done(client).await?;
        screenshot(client, "migration-copying").await?;

        // Close the page mid-copy, come back later: the job went on without it.
        client.goto("about:blank").await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        client.goto(&portal.url("/")).await?;
        wait_for_status(client, &["copying", "synced"], Duration::from_secs(30)).await?;
        let after = messages_done(client).await?;
        assert!(
            after > before,
            "copying went on while the page was closed ({before} -> {after})"
        );
        assert!(client.current_url().await?.path().ends_with("/migration"));

        let finished = wait_for_status(
            client,
            &["synced", "completed_with_skips", "failed"],
            Duration::from_secs(240),
        )
        .await?;
        assert_eq!(finished, "synced");
        screenshot(client, "migration-done").await?;
        click(client, "sign-out").await?;

        // The helpdesk finds the user's job, opens it and sees the same state.
        client.goto(&portal.url("/staff")).await?;
        fill(client, "staff-user", "helen").await?;
        fill(client, "staff-password", STAFF_PW).await?;
        click(client, "staff-sign-in").await?;
        fill(client, "filter-q", "alice").await?;
        let row = client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("[data-testid=job-row][data-user=alice]"))
            .await?;
        screenshot(client, "helpdesk-table").await?;
        let job_id = row
            .attr("data-job-id")
            .await?
            .expect("rows carry their job id");
        row.click().await?;
        wait_for_status(client, &["synced"], Duration::from_secs(20)).await?;
        let link = client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("[data-testid=export-csv]"))
            .await?;
        let href = link.attr("href").await?.unwrap_or_default();
        assert!(
            href.contains(&job_id) && href.ends_with("uid-map.csv"),
            "{href}"
        );
        // The runs table names the node that ran the job and how the run ended.
        let runs = wait_for_text(client, "[data-testid=job-runs]", "Done").await?;
        let runs = runs.to_lowercase();
        assert!(runs.contains("node") && runs.contains("outcome"), "{runs}");
        screenshot(client, "helpdesk-job-detail").await?;
        Ok(())
    })
    .await
    .unwrap();

    // The export behind that link, and the mailbox itself, checked from outside the browser.
    let staff = Api::new(&portal.url(""));
    staff.staff_sign_in("helen", STAFF_PW).await.unwrap();
    let page: JobPage = staff.get_json("/api/helpdesk/jobs?q=alice").await.unwrap();
    let job_id = &page.jobs[0].id;
    let csv = staff
        .get(&format!("/api/helpdesk/jobs/{job_id}/uid-map.csv"))
        .await
        .unwrap();
    assert_eq!(csv.status, 200);
    let detail: JobDetail = staff
        .get_json(&format!("/api/helpdesk/jobs/{job_id}"))
        .await
        .unwrap();
    let map = FolderMap::from_pairs(
        detail
            .job
            .folders
            .iter()
            .map(|f| (f.source.as_str(), f.target.as_str())),
    );
    let source_snapshot = snapshot(&source.account_tls("alice", SOURCE_PW))
        .await
        .unwrap();
    let target_snapshot = snapshot(&target.account_tls("alice", TARGET_PW))
        .await
        .unwrap();
    let differences = compare(&source_snapshot, &target_snapshot, &map);
    assert!(differences.is_empty(), "{differences:#?}");
    let messages: usize = source_snapshot
        .folders
        .values()
        .map(|f| f.messages.len())
        .sum();
    assert_eq!(
        csv.body.lines().count(),
        messages + 1,
        "one line per message plus the header"
    );
}
