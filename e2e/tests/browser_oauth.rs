//! "Sign in with …" in headless Chromium: the user clicks the button, signs in and
//! consents on the provider's own pages (the kit's oidc-provider), comes back, starts,
//! and the migration completes byte-exact. Both sides with the provider, and a mixed
//! route whose consent is withdrawn mid-job and given again from the migration page.

use fantoccini::{Client, Locator};
use mailferry_e2e::browser::{screenshot, wait_for_text, with_browser};
use mailferry_e2e::oauth_portal::{kit, Kit, Login, Options, ALICE_PW};
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use std::time::{Duration, Instant};

async fn element(client: &Client, testid: &str) -> anyhow::Result<fantoccini::elements::Element> {
    Ok(client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!("[data-testid={testid}]")))
        .await?)
}

/// On the provider's pages: logs in as `login` if asked, then allows the consent, and
/// waits to be back on the portal.
async fn at_the_provider(
    client: &Client,
    kit: &Kit,
    login: &str,
    password: &str,
) -> anyhow::Result<()> {
    let portal = kit.portal.url("");
    let started = Instant::now();
    loop {
        let url = client.current_url().await?.to_string();
        if url.starts_with(&portal) && !url.contains("/api/oauth/") {
            return Ok(());
        }
        if let Ok(field) = client.find(Locator::Css("input[name=login]")).await {
            field.send_keys(login).await?;
            client
                .find(Locator::Css("input[name=password]"))
                .await?
                .send_keys(password)
                .await?;
            client.find(Locator::Id("submit")).await?.click().await?;
        } else if let Ok(allow) = client.find(Locator::Id("allow")).await {
            allow.click().await?;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "stuck at {url}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_status(client: &Client, wanted: &str, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(status) = client.find(Locator::Css("[data-testid=job-status]")).await {
            if status.attr("data-status").await?.as_deref() == Some(wanted) {
                return Ok(());
            }
        }
        anyhow::ensure!(started.elapsed() < limit, "not {wanted} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn both_mailboxes_signed_in_with_the_provider_in_chromium() {
    let kit = kit(Options::default()).await;
    seed_mailbox(
        &kit.account(&kit.old, "alice").await,
        &SeedSpec::new(31, 50),
    )
    .await
    .unwrap();
    with_browser(async |client| {
        client.goto(&kit.portal.url("/")).await?;
        wait_for_text(client, "[data-testid=server-status]", "Server ready").await?;
        // No user name or password fields on provider sides: only the button.
        assert!(client
            .find(Locator::Css("[data-testid=source-user]"))
            .await
            .is_err());
        let button = element(client, "source-oauth").await?;
        assert_eq!(button.text().await?, "Sign in with Kit ID");
        screenshot(client, "oauth-sign-in-page").await?;
        button.click().await?;
        at_the_provider(client, &kit, "alice", ALICE_PW).await?;
        wait_for_text(client, "[data-testid=source-oauth-user]", "alice").await?;
        element(client, "target-oauth").await?.click().await?;
        at_the_provider(client, &kit, "alice", ALICE_PW).await?;
        wait_for_text(client, "[data-testid=target-oauth-user]", "alice").await?;
        wait_for_text(client, "[data-testid=source-oauth-user]", "alice").await?;
        screenshot(client, "oauth-both-signed-in").await?;
        element(client, "start").await?.click().await?;
        wait_for_status(client, "synced", Duration::from_secs(120)).await?;
        screenshot(client, "oauth-migration-done").await?;
        Ok(())
    })
    .await
    .unwrap();
    kit.assert_exact("alice").await;
}

#[tokio::test]
async fn consent_withdrawn_mid_job_is_given_again_from_the_migration_page() {
    let kit = kit(Options {
        source: Login::Password,
        ttl: Duration::from_secs(6),
        slow_source: Some(Duration::from_millis(400)),
        ..Options::default()
    })
    .await;
    seed_mailbox(
        &kit.account(&kit.old, "alice").await,
        &SeedSpec::new(32, 2000),
    )
    .await
    .unwrap();
    with_browser(async |client| {
        client.goto(&kit.portal.url("/")).await?;
        wait_for_text(client, "[data-testid=server-status]", "Server ready").await?;
        element(client, "source-user")
            .await?
            .send_keys("alice")
            .await?;
        element(client, "source-password")
            .await?
            .send_keys("alice-imap-pw")
            .await?;
        element(client, "target-oauth").await?.click().await?;
        at_the_provider(client, &kit, "alice", ALICE_PW).await?;
        // The route and the typed old account survive the trip to the provider? The
        // page comes back fresh: the old mailbox's fields are typed again.
        wait_for_text(client, "[data-testid=target-oauth-user]", "alice").await?;
        let user = element(client, "source-user").await?;
        if user.prop("value").await?.as_deref() != Some("alice") {
            user.send_keys("alice").await?;
            element(client, "source-password")
                .await?
                .send_keys("alice-imap-pw")
                .await?;
        }
        element(client, "start").await?.click().await?;
        wait_for_status(client, "copying", Duration::from_secs(60)).await?;
        kit.provider.revoke_account("alice").await?;
        wait_for_status(client, "paused_sign_in_again", Duration::from_secs(120)).await?;
        screenshot(client, "oauth-paused-sign-in-again").await?;
        element(client, "renew-new").await?.click().await?;
        at_the_provider(client, &kit, "alice", ALICE_PW).await?;
        wait_for_text(client, "[data-testid=renew-result]", "goes on").await?;
        wait_for_status(client, "synced", Duration::from_secs(240)).await?;
        screenshot(client, "oauth-resumed-done").await?;
        Ok(())
    })
    .await
    .unwrap();
    kit.assert_exact("alice").await;
}
