//! The first run: a portal started on an empty data directory has no staff account, so it
//! prints a one-time setup link; opening it in headless Chromium creates the first admin,
//! who lands on the admin pages. The link's rules (wrong token, a restart, reuse, a staff
//! account made from the command line) are checked over the API.

use fantoccini::Locator;
use mailferry_e2e::api::Api;
use mailferry_e2e::browser::{screenshot, wait_for_text, with_browser};
use mailferry_e2e::portal::Portal;
use mailferry_shared::{FirstAdmin, Me, SetupStatus, StaffRole};
use std::time::Duration;

/// The tokens of the setup links in the portal's log (each start prints its link on the
/// terminal and in the log line), oldest first, each once.
fn setup_tokens(portal: &Portal) -> Vec<String> {
    let log = portal.log_text();
    let mut tokens: Vec<String> = Vec::new();
    for (at, _) in log.match_indices("/setup#") {
        let token: String = log[at + "/setup#".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .collect();
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    tokens
}

/// The token of the newest setup link in the portal's log.
fn setup_token(portal: &Portal) -> Option<String> {
    setup_tokens(portal).pop()
}

fn first_admin(token: &str, username: &str, password: &str) -> FirstAdmin {
    FirstAdmin {
        token: token.into(),
        username: username.into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn the_setup_link_creates_the_first_admin_in_the_browser() {
    let portal = Portal::start().await.unwrap();
    let token = setup_token(&portal).expect("a setup link in the log");
    assert_eq!(token.len(), 43, "{}", portal.log_text());
    let link = portal.url(&format!("/setup#{token}"));
    assert!(
        portal.log_text().contains(&link),
        "the printed link is the portal's own address: {}",
        portal.log_text()
    );

    with_browser(async |client| {
        // The start page says how to begin.
        client.goto(&portal.url("/")).await?;
        wait_for_text(client, "main", "Open the setup link it printed").await?;

        client.goto(&link).await?;
        let user = client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("[data-testid=setup-user]"))
            .await?;
        user.clear().await?;
        user.send_keys("ada").await?;
        client
            .find(Locator::Css("[data-testid=setup-password]"))
            .await?
            .send_keys("first-admin-pw-1")
            .await?;
        client
            .find(Locator::Css("[data-testid=setup-repeat]"))
            .await?
            .send_keys("first-admin-pw-2")
            .await?;
        screenshot(client, "setup-form").await?;
        client
            .find(Locator::Css("[data-testid=setup-create]"))
            .await?
            .click()
            .await?;
        wait_for_text(
            client,
            "[data-testid=setup-result]",
            "The two passwords differ",
        )
        .await?;
        let repeat = client
            .find(Locator::Css("[data-testid=setup-repeat]"))
            .await?;
        repeat.clear().await?;
        repeat.send_keys("first-admin-pw-1").await?;
        client
            .find(Locator::Css("[data-testid=setup-create]"))
            .await?
            .click()
            .await?;
        // Signed in as the new admin, on the admin pages.
        wait_for_text(client, "header nav", "Admin").await?;
        wait_for_text(client, "header nav", "ada").await?;
        let url = client.current_url().await?;
        assert!(url.path().ends_with("/admin"), "{url}");
        screenshot(client, "setup-done-admin").await?;

        // The link has done its work.
        client.goto(&link).await?;
        wait_for_text(
            client,
            "[data-testid=setup-done]",
            "already has a staff account",
        )
        .await?;
        Ok(())
    })
    .await
    .unwrap();

    // The new account signs in like any staff account.
    let api = Api::new(&portal.url(""));
    api.staff_sign_in("ada", "first-admin-pw-1").await.unwrap();
    let me: Me = api.get_json("/api/me").await.unwrap();
    assert_eq!(
        me,
        Me::Staff {
            username: "ada".into(),
            role: StaffRole::Admin
        }
    );
}

#[tokio::test]
async fn the_setup_token_works_once_on_its_own_node_until_a_restart() {
    let mut portal = Portal::start().await.unwrap();
    let api = Api::new(&portal.url(""));
    let status: SetupStatus = api.get_json("/api/setup").await.unwrap();
    assert!(status.needed);
    let old = setup_token(&portal).expect("a setup link");

    // A wrong token is refused and says what to do.
    let wrong = api
        .post(
            "/api/setup",
            &first_admin("not-the-token", "eve", "eve-password-1"),
        )
        .await
        .unwrap();
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert!(
        wrong.body.contains("link the server printed"),
        "{}",
        wrong.body
    );

    // A restart issues a new link; the old one no longer works.
    portal.restart().await.unwrap();
    let new = setup_token(&portal).expect("a new setup link");
    assert_ne!(new, old);
    let stale = api
        .post("/api/setup", &first_admin(&old, "eve", "eve-password-1"))
        .await
        .unwrap();
    assert_eq!(stale.status, 403, "{}", stale.body);

    // A weak password is refused with the rule, and the token stays good.
    let weak = api
        .post("/api/setup", &first_admin(&new, "ada", "short"))
        .await
        .unwrap();
    assert_eq!(weak.status, 400, "{}", weak.body);
    assert!(
        weak.body.contains("at least 10 characters"),
        "{}",
        weak.body
    );

    let me: Me = api
        .post_json("/api/setup", &first_admin(&new, "ada", "first-admin-pw-1"))
        .await
        .unwrap();
    assert!(
        matches!(
            me,
            Me::Staff {
                role: StaffRole::Admin,
                ..
            }
        ),
        "{me:?}"
    );
    // The session is the admin's at once.
    let me: Me = api.get_json("/api/me").await.unwrap();
    assert!(matches!(me, Me::Staff { .. }), "{me:?}");

    // Used once: again with the same token (from another browser) is refused.
    let other = Api::new(&portal.url(""));
    let again = other
        .post("/api/setup", &first_admin(&new, "mallory", "mallory-pw-12"))
        .await
        .unwrap();
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("already set up"), "{}", again.body);
    let status: SetupStatus = other.get_json("/api/setup").await.unwrap();
    assert!(!status.needed);

    // With a staff account in the database, a restart prints no link at all.
    portal.restart().await.unwrap();
    assert_eq!(setup_tokens(&portal), [old, new], "{}", portal.log_text());
}

#[tokio::test]
async fn a_staff_account_made_on_the_command_line_ends_the_setup_link() {
    let portal = Portal::start().await.unwrap();
    let token = setup_token(&portal).expect("a setup link");
    portal
        .add_staff("root-admin", "cli-admin-pw-1", "admin")
        .unwrap();
    let api = Api::new(&portal.url(""));
    let status: SetupStatus = api.get_json("/api/setup").await.unwrap();
    assert!(!status.needed);
    let late = api
        .post("/api/setup", &first_admin(&token, "eve", "eve-password-1"))
        .await
        .unwrap();
    assert_eq!(late.status, 409, "{}", late.body);
}
