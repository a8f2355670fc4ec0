//! The admin's CSV import in headless Chromium: a bad row is shown with its reason, the
//! fixed file imports three users, and all three migrations complete.

use fantoccini::{Client, Locator};
use mailferry_e2e::browser::{screenshot, wait_for_text, with_browser};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::portal::{route_config, Portal};
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use std::time::{Duration, Instant};

const ADMIN_PW: &str = "admin-password-1";
const USERS: [&str; 3] = ["ann", "ben", "cat"];

fn password(user: &str) -> String {
    format!("{user}-Pw-9")
}

async fn upload(
    client: &Client,
    dir: &std::path::Path,
    name: &str,
    csv: &str,
) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, csv)?;
    let input = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=csv-file]"))
        .await?;
    input.send_keys(&path.display().to_string()).await?;
    Ok(())
}

#[tokio::test]
async fn admin_fixes_a_bad_row_imports_three_users_and_all_complete() {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    for (i, user) in USERS.iter().enumerate() {
        source.add_user(user, &password(user)).unwrap();
        target.add_user(user, &password(user)).unwrap();
        seed_mailbox(
            &source.account_tls(user, &password(user)),
            &SeedSpec::new(90 + i as u64, 150),
        )
        .await
        .unwrap();
    }
    let portal = Portal::start_with_config(&route_config(&source, &target, ""))
        .await
        .unwrap();
    portal.add_staff("ada", ADMIN_PW, "admin").unwrap();
    let files = tempfile::tempdir().unwrap();

    let row = |user: &str| format!("{user},{pw},{user},{pw}\n", pw = password(user));
    let header = "source_user,source_password,target_user,target_password\n";
    // Line 3 lacks the target password.
    let bad = format!(
        "{header}{}ben,{},ben,\n{}",
        row("ann"),
        password("ben"),
        row("cat")
    );
    let good = format!("{header}{}{}{}", row("ann"), row("ben"), row("cat"));

    with_browser(async |client| {
        client.goto(&portal.url("/staff")).await?;
        let user = client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("[data-testid=staff-user]"))
            .await?;
        user.send_keys("ada").await?;
        client
            .find(Locator::Css("[data-testid=staff-password]"))
            .await?
            .send_keys(ADMIN_PW)
            .await?;
        client
            .find(Locator::Css("[data-testid=staff-sign-in]"))
            .await?
            .click()
            .await?;
        wait_for_text(client, "body", "Migrations").await?;
        client.goto(&portal.url("/admin")).await?;

        upload(client, files.path(), "bad.csv", &bad).await?;
        let error = wait_for_text(
            client,
            "[data-testid=row-error][data-line='3']",
            "target_password",
        )
        .await?;
        assert!(error.contains("empty"), "{error}");
        assert_eq!(
            client
                .find_all(Locator::Css("[data-testid=row-error]"))
                .await?
                .len(),
            1
        );
        screenshot(client, "admin-bad-row").await?;

        upload(client, files.path(), "good.csv", &good).await?;
        wait_for_text(
            client,
            "[data-testid=preview-summary]",
            "3 rows, all ready to import",
        )
        .await?;
        anyhow::ensure!(client
            .find_all(Locator::Css("[data-testid=row-error]"))
            .await?
            .is_empty());
        client
            .find(Locator::Css("[data-testid=import]"))
            .await?
            .click()
            .await?;
        let started = Instant::now();
        loop {
            let done = client
                .find(Locator::Css("[data-testid=batch-done]"))
                .await
                .ok();
            let text = match done {
                Some(e) => e.text().await.unwrap_or_default(),
                None => String::new(),
            };
            if text.trim() == "3" {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(180),
                "batch not done: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let failed = client
            .find(Locator::Css("[data-testid=batch-failed]"))
            .await?
            .text()
            .await?;
        assert_eq!(failed.trim(), "0");
        screenshot(client, "admin-batch-done").await?;
        Ok(())
    })
    .await
    .unwrap();
    let log = portal.log_text();
    for user in USERS {
        assert!(
            !log.contains(&password(user)),
            "a password leaked into the log"
        );
    }
}
