//! Whose mailbox is it? Black-box attempts, over HTTP against real Dovecot servers, to
//! migrate someone else's mailbox through routes where a master login does the copying,
//! and to out-guess the sign-in rate limits.

use mailferry_e2e::api::{contains_secret, Api};
use mailferry_e2e::compare::{compare, snapshot, FolderMap};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::portal::Portal;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};
use mailferry_shared::{
    AccountSide, CheckRequest, CheckResult, JobView, SignInRequest, SignInResult,
};
use std::time::{Duration, Instant};

const MASTER_PW: &str = "master-Secret-1!";
const ALICE_SRC_PW: &str = "alice-old-Pw-3";
const ALICE_TGT_PW: &str = "alice-new-Pw-4";
const MALLORY_SRC_PW: &str = "mallory-old-Pw-5";
const MALLORY_TGT_PW: &str = "mallory-new-Pw-6";

fn master_options() -> DovecotOptions {
    DovecotOptions {
        master_user: Some(("admin".into(), MASTER_PW.into())),
        ..DovecotOptions::default()
    }
}

fn server_toml(name: &str, server: &Dovecot, master: bool) -> String {
    let mut text = format!(
        "[servers.{name}]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n",
        server.imaps_port(),
        server.ca_pem_path().display()
    );
    if master {
        text.push_str(&format!(
            "master_user = \"admin\"\nmaster_password = \"{MASTER_PW}\"\nmaster_login = \"star\"\n"
        ));
    }
    text
}

fn config(source: &Dovecot, source_master: bool, target: &Dovecot, target_master: bool) -> String {
    format!(
        "workers = 2\n{}{}[routes.default]\nsource = \"old\"\ntarget = \"new\"\n",
        server_toml("old", source, source_master),
        server_toml("new", target, target_master),
    )
}

fn request(source: (&str, &str), target: (&str, &str)) -> SignInRequest {
    SignInRequest {
        route: "default".into(),
        source_user: source.0.into(),
        source_password: source.1.into(),
        target_user: target.0.into(),
        target_password: target.1.into(),
    }
}

async fn message_count(server: &Dovecot, user: &str, password: &str) -> usize {
    let snap = snapshot(&server.account_tls(user, password)).await.unwrap();
    snap.folders.values().map(|f| f.messages.len()).sum()
}

async fn wait_until_synced(api: &Api) -> JobView {
    let started = Instant::now();
    loop {
        let job: JobView = api.get_json("/api/my/job").await.unwrap();
        if job.status == mailferry_shared::JobStatus::Synced {
            return job;
        }
        assert!(!job.status.is_settled(), "the job ended as {job:?}");
        assert!(started.elapsed() < Duration::from_secs(90), "{job:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts the signed-in user's job and waits until it is synced.
async fn run_job(api: &Api) {
    let answer = api.post("/api/my/job/start", &()).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    wait_until_synced(api).await;
}

#[tokio::test]
async fn a_master_source_needs_the_owners_own_password() {
    let source = Dovecot::start(master_options()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    source.add_user("alice", ALICE_SRC_PW).unwrap();
    source.add_user("mallory", MALLORY_SRC_PW).unwrap();
    target.add_user("alice", ALICE_TGT_PW).unwrap();
    target.add_user("mallory", MALLORY_TGT_PW).unwrap();
    seed_mailbox(
        &source.account_tls("alice", ALICE_SRC_PW),
        &SeedSpec::new(7, 30),
    )
    .await
    .unwrap();
    let logins_before = source.login_count();
    let portal = Portal::start_with_config(&config(&source, true, &target, false))
        .await
        .unwrap();
    let mallory = Api::new(&portal.url(""));

    // Mallory knows Alice's address and has her own target account: with no password,
    // a guessed one, or the master's, no job is opened for Alice's mailbox.
    for (password, code) in [
        ("", "missing"),
        ("guess-1234", "wrong_password"),
        (MASTER_PW, "wrong_password"),
    ] {
        let result: SignInResult = mallory
            .post_json(
                "/api/session",
                &request(("alice", password), ("mallory", MALLORY_TGT_PW)),
            )
            .await
            .unwrap();
        assert!(!result.source.ok, "{result:?}");
        assert_eq!(result.source.code, code, "{result:?}");
        assert!(result.job_id.is_none(), "{result:?}");
        let me = mallory.get("/api/my/job").await.unwrap();
        assert_eq!(me.status, 401, "no session for a refused sign-in");
    }

    // `/api/check` does not tell which names exist: an existing user with a wrong password
    // and a user that does not exist get the same answer, and no master login happens.
    let ask = |user: &str, password: &str| CheckRequest {
        route: "default".into(),
        side: AccountSide::Source,
        user: user.into(),
        password: password.into(),
    };
    let empty: CheckResult = mallory
        .post_json("/api/check", &ask("alice", ""))
        .await
        .unwrap();
    assert_eq!((empty.ok, empty.code.as_str()), (false, "missing"));
    let known: CheckResult = mallory
        .post_json("/api/check", &ask("alice", "wrong-pw-1"))
        .await
        .unwrap();
    let unknown: CheckResult = mallory
        .post_json("/api/check", &ask("nobody-here", "wrong-pw-1"))
        .await
        .unwrap();
    assert!(!known.ok && !unknown.ok);
    assert_eq!(
        (known.code.as_str(), known.message.as_str()),
        (
            unknown.code.as_str(),
            unknown.message.replace("nobody-here", "alice").as_str()
        )
    );
    // Not one login (master or other) reached the source for all of that.
    assert_eq!(source.login_count(), logins_before, "{}", source.log_text());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(message_count(&target, "mallory", MALLORY_TGT_PW).await, 0);

    // Alice herself proves both mailboxes; the master login then does the copying.
    let alice = Api::new(&portal.url(""));
    let result: SignInResult = alice
        .post_json(
            "/api/session",
            &request(("alice", ALICE_SRC_PW), ("alice", ALICE_TGT_PW)),
        )
        .await
        .unwrap();
    assert!(result.source.ok && result.target.ok, "{result:?}");
    run_job(&alice).await;
    let differences = compare(
        &snapshot(&source.account_tls("alice", ALICE_SRC_PW))
            .await
            .unwrap(),
        &snapshot(&target.account_tls("alice", ALICE_TGT_PW))
            .await
            .unwrap(),
        &FolderMap::default(),
    );
    assert!(differences.is_empty(), "{differences:?}");
    assert_eq!(message_count(&target, "mallory", MALLORY_TGT_PW).await, 0);
    // Logins happened only now: Alice's proof, then the copy.
    assert!(source.login_count() > logins_before);
    let everything = mallory.everything_seen() + &alice.everything_seen() + &portal.log_text();
    for secret in [MASTER_PW, ALICE_SRC_PW, ALICE_TGT_PW, MALLORY_TGT_PW] {
        assert!(!contains_secret(&everything, secret), "a password leaked");
    }
}

#[tokio::test]
async fn a_master_target_is_bound_to_the_source_account() {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(master_options()).unwrap();
    source.add_user("mallory", MALLORY_SRC_PW).unwrap();
    target.add_user("alice", ALICE_TGT_PW).unwrap();
    target.add_user("mallory", MALLORY_TGT_PW).unwrap();
    seed_mailbox(
        &source.account_tls("mallory", MALLORY_SRC_PW),
        &SeedSpec::new(9, 12),
    )
    .await
    .unwrap();
    let portal = Portal::start_with_config(&config(&source, false, &target, true))
        .await
        .unwrap();
    let mallory = Api::new(&portal.url(""));
    let target_logins = target.login_count();

    // Mallory proves her own old mailbox and names Alice's new one as the target: refused
    // before anything logs in to the target, with or without a password for it.
    for password in ["", "guess", MASTER_PW] {
        let answer = mallory
            .post(
                "/api/session",
                &request(("mallory", MALLORY_SRC_PW), ("alice", password)),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(answer.body.contains("mallory"), "{}", answer.body);
    }
    assert_eq!(target.login_count(), target_logins, "{}", target.log_text());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(message_count(&target, "alice", ALICE_TGT_PW).await, 0);

    // Her own new mailbox follows from her old one, proved with her own password.
    let without_proof: SignInResult = mallory
        .post_json(
            "/api/session",
            &request(("mallory", MALLORY_SRC_PW), ("", "")),
        )
        .await
        .unwrap();
    assert!(!without_proof.target.ok && without_proof.job_id.is_none());
    let result: SignInResult = mallory
        .post_json(
            "/api/session",
            &request(("mallory", MALLORY_SRC_PW), ("", MALLORY_TGT_PW)),
        )
        .await
        .unwrap();
    assert!(result.source.ok && result.target.ok, "{result:?}");
    run_job(&mallory).await;
    let differences = compare(
        &snapshot(&source.account_tls("mallory", MALLORY_SRC_PW))
            .await
            .unwrap(),
        &snapshot(&target.account_tls("mallory", MALLORY_TGT_PW))
            .await
            .unwrap(),
        &FolderMap::default(),
    );
    assert!(differences.is_empty(), "{differences:?}");
    assert_eq!(message_count(&target, "alice", ALICE_TGT_PW).await, 0);
}

/// A client behind the portal's (trusted) reverse proxy at `address`.
struct Client {
    http: reqwest::Client,
    base: String,
    address: &'static str,
}

impl Client {
    fn new(portal: &Portal, address: &'static str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            base: portal.url(""),
            address,
        }
    }

    async fn post<B: serde::Serialize>(&self, path: &str, body: &B) -> (u16, String) {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Origin", self.base.trim_end_matches('/'))
            .header("X-Forwarded-For", self.address)
            .json(body)
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }
}

fn auth_failures(server: &Dovecot) -> usize {
    server
        .log_text()
        .lines()
        .filter(|l| l.contains("imap-login") && l.contains("auth failed"))
        .count()
}

#[tokio::test]
async fn a_burst_of_parallel_wrong_passwords_makes_few_real_logins() {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    source.add_user("erin", ALICE_SRC_PW).unwrap();
    target.add_user("erin", ALICE_TGT_PW).unwrap();
    let portal = Portal::start_with_config(&format!(
        "trusted_proxies = [\"127.0.0.1\", \"::1\"]\n{}",
        config(&source, false, &target, false)
    ))
    .await
    .unwrap();
    let stranger = std::sync::Arc::new(Client::new(&portal, "198.51.100.7"));
    let guess = CheckRequest {
        route: "default".into(),
        side: AccountSide::Source,
        user: "erin".into(),
        password: "wrong-guess".into(),
    };
    let burst: Vec<_> = (0..40)
        .map(|_| {
            let (stranger, guess) = (stranger.clone(), guess.clone());
            tokio::spawn(async move { stranger.post("/api/check", &guess).await })
        })
        .collect();
    let mut evaluated = 0;
    let mut limited = 0;
    for answer in burst {
        let (status, body) = answer.await.unwrap();
        match status {
            200 => {
                assert!(body.contains("wrong_password"), "{body}");
                evaluated += 1;
            }
            429 => limited += 1,
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    assert!(
        evaluated <= 5,
        "{evaluated} of 40 parallel guesses were evaluated"
    );
    assert_eq!(evaluated + limited, 40);
    // The mail server saw no more failed logins than the portal evaluated.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failures = auth_failures(&source);
    assert!(
        failures <= 5,
        "{failures} failed logins reached the server:\n{}",
        source.log_text()
    );

    // (A burst may even be refused whole: every guess counted the others' reservations.)
    // One more guess from a fresh address is evaluated and logged.
    let (status, body) = Client::new(&portal, "198.51.100.8")
        .post("/api/check", &guess)
        .await;
    assert_eq!(status, 200, "{body}");

    // The stranger cannot lock the owner out: from her own address she gets in.
    let owner = Client::new(&portal, "203.0.113.9");
    let (status, body) = owner
        .post(
            "/api/session",
            &request(("erin", ALICE_SRC_PW), ("erin", ALICE_TGT_PW)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let result: SignInResult = serde_json::from_str(&body).unwrap();
    let job_id = result.job_id.expect("a job for the owner");

    // One mailbox, one job: two simultaneous sign-ins spelling the names differently
    // land on the same job.
    let (first, second) = (
        Client::new(&portal, "203.0.113.10"),
        Client::new(&portal, "203.0.113.11"),
    );
    let spelled_one_way = request((" Erin", ALICE_SRC_PW), ("ERIN ", ALICE_TGT_PW));
    let spelled_another = request(("eRin", ALICE_SRC_PW), ("erin", ALICE_TGT_PW));
    let (a, b) = tokio::join!(
        first.post("/api/session", &spelled_one_way),
        second.post("/api/session", &spelled_another),
    );
    for (status, body) in [a, b] {
        assert_eq!(status, 200, "{body}");
        let result: SignInResult = serde_json::from_str(&body).unwrap();
        assert_eq!(
            result.job_id.as_deref(),
            Some(job_id.as_str()),
            "{result:?}"
        );
    }

    // The password-change endpoint is limited too.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (status, _) = owner
            .post(
                "/api/my/job/password",
                &mailferry_shared::PasswordUpdate {
                    side: AccountSide::Source,
                    password: "not-it".into(),
                },
            )
            .await;
        statuses.push(status);
    }
    assert!(statuses[..5].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses[6], 429, "{statuses:?}");

    // Every attempt is logged with its client address, never with a password.
    let log = portal.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("sign-in failed") && l.contains("198.51.100.8")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("sign-in succeeded") && l.contains("203.0.113.9")),
        "{log}"
    );
    for secret in [ALICE_SRC_PW, ALICE_TGT_PW, "wrong-guess"] {
        assert!(!contains_secret(&log, secret), "a password is in the log");
    }
}
