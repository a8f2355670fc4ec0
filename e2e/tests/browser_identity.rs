//! The sign-in page on a route whose new server copies with a master login, in headless
//! Chromium: the user proves both mailboxes with their own passwords, the new account
//! follows from the old one (shown, not typed), and the migration completes exactly.

use fantoccini::Locator;
use mailferry_e2e::browser::{screenshot, wait_for_text, with_browser};
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::portal::Portal;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use std::time::{Duration, Instant};

const SOURCE_PW: &str = "bob-old-Pw-1";
const TARGET_PW: &str = "bob-new-Pw-2";
const MASTER_PW: &str = "admin-Master-9";

async fn element(
    client: &fantoccini::Client,
    testid: &str,
) -> anyhow::Result<fantoccini::elements::Element> {
    Ok(client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!("[data-testid={testid}]")))
        .await?)
}

#[tokio::test]
async fn the_new_account_follows_the_old_one_and_both_are_proved() {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions {
        master_user: Some(("admin".into(), MASTER_PW.into())),
        ..DovecotOptions::default()
    })
    .unwrap();
    source.add_user("bob", SOURCE_PW).unwrap();
    target.add_user("bob", TARGET_PW).unwrap();
    seed_mailbox(
        &source.account_tls("bob", SOURCE_PW),
        &SeedSpec::new(21, 40),
    )
    .await
    .unwrap();
    let config = format!(
        "workers = 2\n\
         [servers.old]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n\
         [servers.new]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n\
         master_user = \"admin\"\nmaster_password = \"{MASTER_PW}\"\nmaster_login = \"star\"\n\
         [routes.default]\nsource = \"old\"\ntarget = \"new\"\ntarget_user = \"same\"\n",
        source.imaps_port(),
        source.ca_pem_path().display(),
        target.imaps_port(),
        target.ca_pem_path().display(),
    );
    let portal = Portal::start_with_config(&config).await.unwrap();

    with_browser(async |client| {
        client.goto(&portal.url("/")).await?;
        wait_for_text(client, "[data-testid=server-status]", "Server ready").await?;
        element(client, "source-user")
            .await?
            .send_keys("bob")
            .await?;
        element(client, "source-password")
            .await?
            .send_keys(SOURCE_PW)
            .await?;
        // The new account is set by the route: shown, read-only, with the rule in words.
        let target_user = element(client, "target-user").await?;
        assert_eq!(target_user.prop("value").await?.as_deref(), Some("bob"));
        assert!(target_user.attr("readonly").await?.is_some());
        let rule = element(client, "target-user-rule").await?.text().await?;
        assert!(rule.contains("same user name"), "{rule}");
        // Without the new mailbox's own password nothing starts.
        element(client, "start").await?.click().await?;
        let started = Instant::now();
        loop {
            let note = client
                .find(Locator::Css("[data-testid=check-target]"))
                .await;
            if let Ok(note) = note {
                if note.attr("data-ok").await?.as_deref() == Some("false") {
                    break;
                }
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(20), "no answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        screenshot(client, "sign-in-master-target-needs-password").await?;
        element(client, "target-password")
            .await?
            .send_keys(TARGET_PW)
            .await?;
        element(client, "start").await?.click().await?;
        let started = Instant::now();
        loop {
            if let Ok(status) = client.find(Locator::Css("[data-testid=job-status]")).await {
                if status.attr("data-status").await?.as_deref() == Some("synced") {
                    break;
                }
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "not synced");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        screenshot(client, "migration-master-target-done").await?;
        Ok(())
    })
    .await
    .unwrap();

    let differences = compare(
        &snapshot(&source.account_tls("bob", SOURCE_PW))
            .await
            .unwrap(),
        &snapshot(&target.account_tls("bob", TARGET_PW))
            .await
            .unwrap(),
        &FolderMap::default(),
    );
    assert!(differences.is_empty(), "{differences:?}");
}
