//! OAuth 2.0 end to end, over HTTP: a real OpenID Connect provider (oidc-provider) on
//! loopback, bearer-only Dovecot servers that validate each token by introspection, and
//! the portal in between. A user agent walks through the provider's own login and
//! consent pages (the browser test clicks through the same pages in Chromium).

use mailferry_e2e::api::Api;
use mailferry_e2e::compare::snapshot;
use mailferry_e2e::oauth_agent::Agent;
use mailferry_e2e::oauth_portal::{kit, Kit, Login, Options, ALICE_PW, BOB_PW};
use mailferry_e2e::portal::Portal;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use mailferry_shared::{JobStatus, JobView, Me, OAuthStatus, SignInRequest, SignInResult};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// Polls the user's job until `done` says so; panics with `what` after `limit`.
async fn wait_until(api: &Api, limit: Duration, done: impl Fn(&JobView) -> bool) -> JobView {
    let started = Instant::now();
    loop {
        let view: JobView = api.get_json("/api/my/job").await.unwrap();
        if done(&view) {
            return view;
        }
        assert!(
            started.elapsed() < limit,
            "job still {:?} ({:?}) after {limit:?}",
            view.status,
            view.status_reason
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for_status(api: &Api, wanted: &[JobStatus], limit: Duration) -> JobView {
    wait_until(api, limit, |view| wanted.contains(&view.status)).await
}

/// Waits until the job's run is over, however it ended.
async fn run_to_end(api: &Api, limit: Duration) -> JobView {
    wait_until(api, limit, |view| view.status.is_settled()).await
}

/// Alice signs in on a mixed route (her old password, her new mailbox through the
/// provider) and starts her migration.
async fn start_mixed(kit: &Kit, agent: &Agent, api: &Api) {
    agent
        .sign_in(&kit.start_url("target", false), "alice", ALICE_PW, true)
        .await
        .unwrap();
    let result: SignInResult = api
        .post_json("/api/session", &mixed_sign_in())
        .await
        .unwrap();
    assert!(result.job_id.is_some(), "{result:?}");
    api.post("/api/my/job/start", &()).await.unwrap();
}

fn mixed_sign_in() -> SignInRequest {
    let mut request = empty_sign_in();
    request.source_user = "alice".into();
    request.source_password = "alice-imap-pw".into();
    request
}

fn empty_sign_in() -> SignInRequest {
    SignInRequest {
        route: "default".into(),
        source_user: String::new(),
        source_password: String::new(),
        target_user: String::new(),
        target_password: String::new(),
    }
}

#[tokio::test]
async fn both_sides_signed_in_with_the_provider_copy_exactly_and_no_token_leaks() {
    let kit = kit(Options::default()).await;
    seed_mailbox(
        &kit.account(&kit.old, "alice").await,
        &SeedSpec::new(11, 60),
    )
    .await
    .unwrap();
    let agent = Agent::new();
    let api = Api::with_client(&kit.portal.url(""), agent.http.clone());

    // Without the provider sign-ins nothing starts.
    let refused = api.post("/api/session", &empty_sign_in()).await.unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("Sign in with Kit ID"),
        "{}",
        refused.body
    );

    for side in ["source", "target"] {
        let started = Instant::now();
        let landing = agent
            .sign_in(&kit.start_url(side, false), "alice", ALICE_PW, true)
            .await
            .unwrap();
        // Provider pages, code exchange, ID token check and the IMAP login with the token.
        println!(
            "sign-in with the provider ({side}): {:?}",
            started.elapsed()
        );
        assert!(landing.url.contains("/?route=default"), "{landing:?}");
        let status: OAuthStatus = api.get_json("/api/oauth/status").await.unwrap();
        let notice = status.notice.expect("the outcome is reported");
        assert!(notice.ok, "{notice:?}");
        assert!(notice.message.contains("alice"), "{notice:?}");
    }
    let status: OAuthStatus = api.get_json("/api/oauth/status").await.unwrap();
    assert_eq!(status.signed_in.len(), 2, "{status:?}");
    assert!(status.signed_in.iter().all(|s| s.user == "alice"));

    // Names typed into the request are ignored on provider sides: whoever consented
    // is whose mailbox is opened.
    let mut request = empty_sign_in();
    request.source_user = "bob".into();
    request.target_user = "bob".into();
    let result: SignInResult = api.post_json("/api/session", &request).await.unwrap();
    assert!(result.source.ok && result.target.ok, "{result:?}");
    assert!(result.job_id.is_some());
    match api.get_json::<Me>("/api/me").await.unwrap() {
        Me::User {
            source_user,
            target_user,
            ..
        } => assert_eq!(
            (source_user.as_str(), target_user.as_str()),
            ("alice", "alice")
        ),
        other => panic!("not signed in as a user: {other:?}"),
    }
    api.post("/api/my/job/start", &()).await.unwrap();
    let done = run_to_end(&api, Duration::from_secs(120)).await;
    assert_eq!(done.status, JobStatus::Synced, "{:?}", done.status_reason);
    kit.assert_exact("alice").await;
    // Bob's mailbox on the new server was never touched.
    let bob = snapshot(&kit.account(&kit.new, "bob").await).await.unwrap();
    assert_eq!(
        bob.folders
            .values()
            .map(|f| f.messages.len())
            .sum::<usize>(),
        0
    );

    // No token in any answer, the portal's log, or the database file.
    kit.assert_no_token_in("the API answers", &api.everything_seen());
    kit.assert_no_token_in("the portal's log", &kit.portal.log_text());
    let db = std::fs::read(kit.portal.data_dir().join("mailferry.db")).unwrap_or_default();
    kit.assert_no_token_in("the database", &String::from_utf8_lossy(&db));
}

#[tokio::test]
async fn a_forged_or_cancelled_callback_signs_nobody_in() {
    let kit = kit(Options::default()).await;
    let agent = Agent::new();
    let api = Api::with_client(&kit.portal.url(""), agent.http.clone());
    // A state this browser never started.
    let forged = agent
        .follow(
            &kit.portal
                .url("/api/oauth/complete?state=forged-state&code=anything"),
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 400, "{forged:?}");
    assert!(forged.body.contains("does not belong"), "{}", forged.body);
    let status: OAuthStatus = api.get_json("/api/oauth/status").await.unwrap();
    assert!(status.signed_in.is_empty());
    assert!(matches!(
        api.get_json::<Me>("/api/me").await.unwrap(),
        Me::Anonymous
    ));

    // The user cancels at the consent page.
    agent
        .sign_in(&kit.start_url("source", false), "alice", ALICE_PW, false)
        .await
        .unwrap();
    let status: OAuthStatus = api.get_json("/api/oauth/status").await.unwrap();
    let notice = status.notice.expect("a notice");
    assert_eq!(notice.code, "cancelled", "{notice:?}");
    assert!(status.signed_in.is_empty());

    // A real state with a code that is not the provider's: refused, nothing kept.
    let start = agent
        .http
        .get(kit.start_url("source", false))
        .send()
        .await
        .unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let state = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let tampered = agent
        .follow(&kit.portal.url(&format!(
            "/api/oauth/complete?state={state}&code=tampered-code"
        )))
        .await
        .unwrap();
    assert!(tampered.url.contains("/?route=default"), "{tampered:?}");
    let status: OAuthStatus = api.get_json("/api/oauth/status").await.unwrap();
    assert_eq!(status.notice.map(|n| n.code).as_deref(), Some("refused"));
    assert!(status.signed_in.is_empty());
    // The state was good for one callback only.
    let replay = agent
        .follow(
            &kit.portal
                .url(&format!("/api/oauth/complete?state={state}&code=x")),
        )
        .await
        .unwrap();
    assert_eq!(replay.status, 400);
}

#[tokio::test]
async fn a_mixed_route_binds_the_provider_account_to_the_old_mailbox() {
    let kit = kit(Options {
        source: Login::Password,
        target_user: Some("same"),
        ..Options::default()
    })
    .await;
    seed_mailbox(
        &kit.account(&kit.old, "alice").await,
        &SeedSpec::new(12, 40),
    )
    .await
    .unwrap();
    let request = mixed_sign_in();
    // Consent as bob cannot open a job for alice's old mailbox on a "same" route.
    let mallory = Agent::new();
    let mallory_api = Api::with_client(&kit.portal.url(""), mallory.http.clone());
    mallory
        .sign_in(&kit.start_url("target", false), "bob", BOB_PW, true)
        .await
        .unwrap();
    let refused = mallory_api.post("/api/session", &request).await.unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("your new mailbox is alice"),
        "{}",
        refused.body
    );
    assert!(matches!(
        mallory_api.get_json::<Me>("/api/me").await.unwrap(),
        Me::Anonymous
    ));
    // Signed in as alice: the job starts and copies exactly.
    let agent = Agent::new();
    let api = Api::with_client(&kit.portal.url(""), agent.http.clone());
    agent
        .sign_in(&kit.start_url("target", false), "alice", ALICE_PW, true)
        .await
        .unwrap();
    let result: SignInResult = api.post_json("/api/session", &request).await.unwrap();
    assert!(result.job_id.is_some(), "{result:?}");
    api.post("/api/my/job/start", &()).await.unwrap();
    let done = run_to_end(&api, Duration::from_secs(120)).await;
    assert_eq!(done.status, JobStatus::Synced, "{:?}", done.status_reason);
    kit.assert_exact("alice").await;
}

/// Access tokens that live 15 seconds while thousands of messages are copied: the
/// engine renews them before they expire and logs in again with fresh ones.
#[tokio::test]
async fn tokens_expiring_every_fifteen_seconds_do_not_stop_a_long_copy() {
    let kit = kit(Options {
        source: Login::Password,
        ttl: Duration::from_secs(15),
        slow_source: Some(Duration::from_millis(1500)),
        ..Options::default()
    })
    .await;
    let seeded = seed_mailbox(
        &kit.account(&kit.old, "alice").await,
        &SeedSpec::new(13, 3000),
    )
    .await
    .unwrap();
    let agent = Agent::new();
    let api = Api::with_client(&kit.portal.url(""), agent.http.clone());
    let started = Instant::now();
    start_mixed(&kit, &agent, &api).await;
    let done = run_to_end(&api, Duration::from_secs(600)).await;
    let took = started.elapsed();
    assert_eq!(done.status, JobStatus::Synced, "{:?}", done.status_reason);
    assert_eq!((done.skipped, done.failed), (0, 0));
    kit.assert_exact("alice").await;
    // The target accepted several different access tokens of the portal's, each checked
    // by introspection: the copy went on across expiries.
    let issued = kit.portal_token_ids();
    let portal_tokens: BTreeSet<String> = kit
        .provider
        .introspections()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.active)
        .filter_map(|i| i.token_id)
        .filter(|id| issued.contains(id))
        .collect();
    let logins = kit.new.log_text().matches("Login: user=<alice>").count();
    println!(
        "copy of {} messages with 15 s tokens took {took:?}: {} distinct access tokens, {logins} logins on the target",
        seeded.total_messages(),
        portal_tokens.len()
    );
    let expected = (took.as_secs() / 15) as usize;
    assert!(
        portal_tokens.len() >= expected.max(3),
        "{} tokens in {took:?}",
        portal_tokens.len()
    );
}

/// Consent withdrawn while the copy runs: the job pauses saying why, the user signs in
/// again, and the job resumes from its UID map and completes exactly.
#[tokio::test]
async fn consent_revoked_mid_job_pauses_until_the_user_signs_in_again() {
    let kit = kit(Options {
        source: Login::Password,
        ttl: Duration::from_secs(8),
        // Slow enough that the copy outlives its first token.
        slow_source: Some(Duration::from_millis(400)),
        ..Options::default()
    })
    .await;
    seed_mailbox(
        &kit.account(&kit.old, "alice").await,
        &SeedSpec::new(14, 2500),
    )
    .await
    .unwrap();
    let agent = Agent::new();
    let api = Api::with_client(&kit.portal.url(""), agent.http.clone());
    start_mixed(&kit, &agent, &api).await;
    wait_for_status(&api, &[JobStatus::Copying], Duration::from_secs(60)).await;
    kit.provider.revoke_account("alice").await.unwrap();
    let paused = wait_for_status(
        &api,
        &[
            JobStatus::PausedSignInAgain,
            JobStatus::Synced,
            JobStatus::Failed,
        ],
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(
        paused.status,
        JobStatus::PausedSignInAgain,
        "{:?}",
        paused.status_reason
    );
    let reason = paused.status_reason.clone().unwrap_or_default();
    assert!(reason.contains("sign in again with Kit ID"), "{reason}");
    // New consent as alice: the job resumes by itself.
    let landing = agent
        .sign_in(&kit.start_url("target", true), "alice", ALICE_PW, true)
        .await
        .unwrap();
    assert!(landing.url.ends_with("/migration"), "{landing:?}");
    let status: OAuthStatus = api.get_json("/api/oauth/status").await.unwrap();
    assert!(status.notice.as_ref().is_some_and(|n| n.ok), "{status:?}");
    let done = run_to_end(&api, Duration::from_secs(300)).await;
    assert_eq!(done.status, JobStatus::Synced, "{:?}", done.status_reason);
    kit.assert_exact("alice").await;
}

/// App mode: the organisation's service account acts for every mailbox; the admin
/// imports users from a CSV without any password, and the jobs run to completion.
#[tokio::test]
async fn a_csv_import_on_an_app_mode_route_runs_its_jobs() {
    let kit = kit(Options {
        source: Login::Password,
        target: Login::App,
        target_user: Some("same"),
        ..Options::default()
    })
    .await;
    for (i, user) in ["alice", "bob"].iter().enumerate() {
        seed_mailbox(
            &kit.account(&kit.old, user).await,
            &SeedSpec::new(20 + i as u64, 25),
        )
        .await
        .unwrap();
    }
    kit.portal
        .add_staff("ada", "admin-password-1", "admin")
        .unwrap();
    let admin = Api::new(&kit.portal.url(""));
    admin
        .staff_sign_in("ada", "admin-password-1")
        .await
        .unwrap();
    let csv =
        "source_user,source_password,target_user\nalice,alice-imap-pw,alice\nbob,bob-imap-pw,bob\n";
    let result = admin.import_csv(csv).await.unwrap();
    assert!(
        result.preview.errors.is_empty(),
        "{:#?}",
        result.preview.errors
    );
    let batch = result.batch.expect("a batch");
    let view = admin
        .wait_for_batch(&batch.id, 2, Duration::from_secs(180))
        .await
        .unwrap();
    assert_eq!(
        view.by_status
            .iter()
            .map(|c| (c.status, c.jobs))
            .collect::<Vec<_>>(),
        [(JobStatus::Synced, 2)],
        "{view:?}\n{}",
        kit.portal.log_text()
    );
    kit.assert_exact("alice").await;
    kit.assert_exact("bob").await;
    // The portal's tokens came from the service account's assertions, one per user.
    let introspected: BTreeSet<Option<String>> = kit
        .provider
        .introspections()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.active)
        .map(|i| i.sub)
        .collect();
    assert!(
        introspected.contains(&Some("alice".into())) && introspected.contains(&Some("bob".into()))
    );
}

/// A wrong client secret or issuer stops the portal at start, naming the profile.
#[tokio::test]
async fn a_wrong_client_secret_or_issuer_is_named_at_start() {
    let kit = kit(Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("wrong.secret");
    std::fs::write(&secret, "not-the-secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = |issuer: &str| {
        format!(
            "[servers.old]\nhost = \"localhost\"\nport = {}\n\
             [servers.m365]\nhost = \"localhost\"\nport = {}\nauth = \"oauth2\"\n\
             [servers.m365.oauth]\nissuer = \"{issuer}\"\nclient_id = \"mailferry\"\nclient_secret_file = \"{}\"\n\
             [routes.default]\nsource = \"old\"\ntarget = \"m365\"\n",
            kit.old.imaps_port(),
            kit.new.imaps_port(),
            secret.display()
        )
    };
    let err = Portal::start_with_config(&server(&kit.provider.issuer()))
        .await
        .err()
        .expect("a wrong secret stops the start");
    let text = format!("{err:#}");
    assert!(text.contains("server m365"), "{text}");
    assert!(text.contains("client id or secret"), "{text}");
    let err =
        Portal::start_with_config(&server(&format!("{}/not-an-issuer", kit.provider.issuer())))
            .await
            .err()
            .expect("a wrong issuer stops the start");
    let text = format!("{err:#}");
    assert!(text.contains("server m365"), "{text}");
    assert!(text.contains("not an OpenID Connect issuer"), "{text}");
}
