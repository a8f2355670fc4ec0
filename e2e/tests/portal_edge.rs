//! The portal's web edge, black-box against the real binary: security headers, the session
//! cookie, the origin check (CSRF, DNS rebinding), session lifetimes and revocation by the
//! staff command line, private files, and CSV exports that a spreadsheet cannot run.

use mailferry_e2e::api::{Answer, Api};
use mailferry_e2e::portal::{mailferry_bin, static_dir, Portal};
use mailferry_e2e::ports::free_port;
use mailferry_shared::{ImportRequest, JobPage, Me};
use reqwest::Method;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_PW: &str = "admin-password-1";
const HELPDESK_PW: &str = "helpdesk-pass-123";

/// A portal started exactly as given (no test-kit defaults), killed on drop.
struct RawPortal {
    child: Child,
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    _root: tempfile::TempDir,
}

impl RawPortal {
    /// `mailferry serve` with built-in defaults except the port, a data directory that
    /// does not exist yet, the built app, and `extra` arguments.
    fn spawn(extra: &[&str]) -> (RawPortal, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let port = free_port();
        let data_dir = root.path().join("fresh").join("data");
        let log = root.path().join("portal.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(mailferry_bin())
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--static-dir")
            .arg(static_dir())
            .args(extra)
            .env_remove("MAILFERRY_SECURE_COOKIES")
            .env_remove("MAILFERRY_PUBLIC_URL")
            .env_remove("MAILFERRY_DATABASE_URL")
            .env_remove("MAILFERRY_CONFIG")
            .env("MAILFERRY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        (
            RawPortal {
                child,
                port,
                data_dir,
                log,
                _root: root,
            },
            scratch,
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `/api/health`; fails with the log if the server exits first.
    async fn healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the portal exited with {status}: {}", self.log_text());
            }
            if let Ok(r) = reqwest::get(self.url("/api/health")).await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no health: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the server to exit on its own and returns its log.
    fn refused(mut self) -> String {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(!status.success(), "it should refuse to start");
                return self.log_text();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the portal started although it should have refused: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn add_staff(&self, name: &str, password: &str, role: &str) {
        let out = staff_command(
            &["staff", "add", name, "--role", role, "--data-dir"],
            &self.data_dir,
            password,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for RawPortal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn staff_command(args: &[&str], data_dir: &Path, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(mailferry_bin())
        .args(args)
        .arg(data_dir)
        .env_remove("MAILFERRY_DATABASE_URL")
        .env_remove("MAILFERRY_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut input) = child.stdin.take() {
        input.write_all(format!("{stdin}\n").as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The text of each inline `<script>` (no `src`) in a page.
fn inline_scripts(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let tag_end = start + rest[start..].find('>').unwrap();
        let body_end = tag_end + rest[tag_end..].find("</script>").unwrap();
        if !rest[start..tag_end].contains(" src=") {
            out.push(rest[tag_end + 1..body_end].to_owned());
        }
        rest = &rest[body_end..];
    }
    out
}

fn sha256_base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_the_csp_admits_only_the_app() {
    let portal = Portal::start().await.unwrap();
    let client = reqwest::Client::new();
    let page = client.get(portal.url("/")).send().await.unwrap();
    let policy = header(&page, "content-security-policy").expect("a CSP on the app page");
    let html = page.text().await.unwrap();
    let scripts = inline_scripts(&html);
    assert!(!scripts.is_empty(), "Trunk's loader is inline: {html}");
    for script in &scripts {
        let hash = format!("'sha256-{}'", sha256_base64(script));
        assert!(
            policy.contains(&hash),
            "the loader's hash {hash} is not in {policy}"
        );
    }
    for part in [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(policy.contains(part), "{part} missing from {policy}");
    }
    for loose in ["'unsafe-inline'", " 'unsafe-eval'", "*", "data:", "http:"] {
        assert!(!policy.contains(loose), "{loose} in {policy}");
    }
    // The same on API answers, errors, assets and refusals; no HSTS over plain HTTP.
    for (method, path) in [
        (Method::GET, "/api/health"),
        (Method::GET, "/api/no-such-thing"),
        (Method::GET, "/api/helpdesk/jobs"),
        (Method::GET, "/style.css"),
        (Method::DELETE, "/api/session"),
    ] {
        let response = client
            .request(method.clone(), portal.url(path))
            .send()
            .await
            .unwrap();
        let status = response.status();
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ] {
            assert_eq!(
                header(&response, name).as_deref(),
                Some(value),
                "{method} {path} ({status})"
            );
        }
        assert_eq!(
            header(&response, "content-security-policy").as_deref(),
            Some(policy.as_str()),
            "{method} {path}"
        );
        assert_eq!(header(&response, "strict-transport-security"), None);
    }
}

#[tokio::test]
async fn by_default_the_session_cookie_is_host_prefixed_secure_and_strict_and_hsts_is_sent() {
    let (mut portal, _scratch) = RawPortal::spawn(&[]);
    portal.healthy().await;
    portal.add_staff("ada", ADMIN_PW, "admin");
    let origin = format!("http://127.0.0.1:{}", portal.port);
    let response = reqwest::Client::new()
        .post(portal.url("/api/staff/session"))
        .header("Origin", &origin)
        .json(&mailferry_shared::StaffSignIn {
            username: "ada".into(),
            password: ADMIN_PW.into(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "strict-transport-security").as_deref(),
        Some("max-age=31536000")
    );
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = &cookies[0];
    assert!(cookie.starts_with("__Host-mailferry_session="), "{cookie}");
    let attributes: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for wanted in ["secure", "httponly", "samesite=strict", "path=/"] {
        assert!(attributes.iter().any(|a| a == wanted), "{wanted}: {cookie}");
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "{cookie}"
    );
}

/// Signs out (a harmless state-changing request) with exactly these headers.
async fn sign_out_with(api: &Api, headers: &[(&str, &str)]) -> Answer {
    api.send::<()>(Method::DELETE, "/api/session", None, headers)
        .await
        .unwrap()
}

#[tokio::test]
async fn only_the_portals_own_pages_may_change_state() {
    let portal = Portal::start().await.unwrap();
    portal.add_staff("helen", HELPDESK_PW, "helpdesk").unwrap();
    let port = portal.url("").rsplit(':').next().unwrap().to_owned();
    let staff = Api::new(&portal.url(""));
    staff.staff_sign_in("helen", HELPDESK_PW).await.unwrap();

    let ours = [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ];
    let rebound_host = format!("evil.example:{port}");
    let rebound_origin = format!("http://evil.example:{port}");
    let other_port = format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1);
    let refused: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("a foreign Origin", vec![("Origin", "https://evil.example")]),
        ("Origin null", vec![("Origin", "null")]),
        ("another port", vec![("Origin", other_port.as_str())]),
        (
            "a rebound host name",
            vec![
                ("Host", rebound_host.as_str()),
                ("Origin", rebound_origin.as_str()),
            ],
        ),
        ("no Origin, Sec-Fetch-Site or Referer", vec![]),
        (
            "Sec-Fetch-Site cross-site",
            vec![("Sec-Fetch-Site", "cross-site")],
        ),
        (
            "Sec-Fetch-Site same-site",
            vec![("Sec-Fetch-Site", "same-site")],
        ),
        (
            "a foreign Referer",
            vec![("Referer", "https://evil.example/x")],
        ),
    ];
    for (what, headers) in &refused {
        let answer = sign_out_with(&staff, headers).await;
        assert_eq!(answer.status, 403, "{what}: {}", answer.body);
        // The session survived the attempt.
        assert_eq!(
            staff.get("/api/helpdesk/jobs").await.unwrap().status,
            200,
            "{what} signed the staff member out"
        );
    }
    let no_headers = sign_out_with(&staff, &[]).await;
    assert!(no_headers.body.contains("Origin"), "{}", no_headers.body);

    // Same-origin requests work, by each kind of evidence.
    let referer = format!("http://127.0.0.1:{port}/staff");
    let mut accepted: Vec<Vec<(&str, &str)>> =
        ours.iter().map(|o| vec![("Origin", o.as_str())]).collect();
    accepted.push(vec![("Sec-Fetch-Site", "same-origin")]);
    accepted.push(vec![("Referer", referer.as_str())]);
    for headers in accepted {
        staff.staff_sign_in("helen", HELPDESK_PW).await.unwrap();
        let answer = sign_out_with(&staff, &headers).await;
        assert_eq!(answer.status, 200, "{headers:?}: {}", answer.body);
        assert_eq!(staff.get("/api/helpdesk/jobs").await.unwrap().status, 401);
    }
}

#[tokio::test]
async fn with_public_url_only_that_origin_is_accepted() {
    let portal = Portal::start_with_env(vec![(
        "MAILFERRY_PUBLIC_URL".into(),
        "https://migrate.example.org".into(),
    )])
    .await
    .unwrap();
    let api = Api::new(&portal.url(""));
    let public = sign_out_with(&api, &[("Origin", "https://migrate.example.org")]).await;
    assert_eq!(public.status, 200, "{}", public.body);
    let loopback = api.origin();
    let local = sign_out_with(&api, &[("Origin", loopback.as_str())]).await;
    assert_eq!(local.status, 403, "{}", local.body);
}

#[tokio::test]
async fn a_public_listener_without_public_url_refuses_to_start() {
    // The refusal comes before anything listens (a server that does start is killed).
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("portal.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(mailferry_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(root.path().join("data"))
        .env_remove("MAILFERRY_PUBLIC_URL")
        .env_remove("MAILFERRY_CONFIG")
        .env_remove("MAILFERRY_DATABASE_URL")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let portal = RawPortal {
        child,
        port: 0,
        data_dir: root.path().join("data"),
        log,
        _root: root,
    };
    let text = portal.refused();
    assert!(
        text.contains("public_url") && text.contains("MAILFERRY_PUBLIC_URL"),
        "{text}"
    );
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_busy() {
    let portal = Portal::start_with_config("session_lifetime_seconds = 4\n")
        .await
        .unwrap();
    portal.add_staff("helen", HELPDESK_PW, "helpdesk").unwrap();
    let staff = Api::new(&portal.url(""));
    staff.staff_sign_in("helen", HELPDESK_PW).await.unwrap();
    let started = Instant::now();
    // Busy all along, so the idle timer never runs out.
    while started.elapsed() < Duration::from_secs(3) {
        assert_eq!(staff.get("/api/helpdesk/jobs").await.unwrap().status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(staff.get("/api/helpdesk/jobs").await.unwrap().status, 401);
    let me: Me = staff.get_json("/api/me").await.unwrap();
    assert_eq!(me, Me::Anonymous);
}

#[tokio::test]
async fn staff_changes_from_the_command_line_take_effect_at_once() {
    let portal = Portal::start().await.unwrap();
    portal.add_staff("ada", ADMIN_PW, "admin").unwrap();
    portal.add_staff("helen", HELPDESK_PW, "helpdesk").unwrap();
    portal.add_staff("hugo", HELPDESK_PW, "helpdesk").unwrap();
    let helen = Api::new(&portal.url(""));
    helen.staff_sign_in("helen", HELPDESK_PW).await.unwrap();
    let helen_elsewhere = Api::new(&portal.url(""));
    helen_elsewhere
        .staff_sign_in("helen", HELPDESK_PW)
        .await
        .unwrap();
    let hugo = Api::new(&portal.url(""));
    hugo.staff_sign_in("hugo", HELPDESK_PW).await.unwrap();
    let ada = Api::new(&portal.url(""));
    ada.staff_sign_in("ada", ADMIN_PW).await.unwrap();
    assert_eq!(ada.get("/api/admin/staff").await.unwrap().status, 200);

    // A password change ends every session signed in with the old one.
    let new_pw = "a-brand-new-password";
    let out = portal
        .command(&["staff", "passwd", "helen"], &format!("{new_pw}\n"))
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for session in [&helen, &helen_elsewhere] {
        assert_eq!(session.get("/api/helpdesk/jobs").await.unwrap().status, 401);
    }
    assert!(helen.staff_sign_in("helen", HELPDESK_PW).await.is_err());
    helen.staff_sign_in("helen", new_pw).await.unwrap();
    assert_eq!(helen.get("/api/helpdesk/jobs").await.unwrap().status, 200);

    // A removed member is out at the next request.
    assert_eq!(hugo.get("/api/helpdesk/jobs").await.unwrap().status, 200);
    let out = portal.command(&["staff", "remove", "hugo"], "").unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hugo.get("/api/helpdesk/jobs").await.unwrap().status, 401);
    let again = portal.command(&["staff", "remove", "hugo"], "").unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no staff account named hugo"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A demoted admin loses admin at once (the reset also ends the old session).
    let out = portal
        .command(
            &[
                "staff",
                "add",
                "ada",
                "--role",
                "helpdesk",
                "--reset-password",
            ],
            &format!("{ADMIN_PW}\n"),
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(ada.get("/api/admin/staff").await.unwrap().status, 200);
    ada.staff_sign_in("ada", ADMIN_PW).await.unwrap();
    assert_eq!(ada.get("/api/admin/staff").await.unwrap().status, 403);
    assert_eq!(ada.get("/api/helpdesk/jobs").await.unwrap().status, 200);
}

/// A portal whose one route points at closed ports, and one imported job: enough for a
/// live-progress stream without any mail server.
async fn portal_with_a_job() -> (Portal, String) {
    let portal = Portal::start_with_config(&closed_route_config())
        .await
        .unwrap();
    let id = import_a_job(&portal).await;
    (portal, id)
}

/// One route whose servers are closed ports.
fn closed_route_config() -> String {
    let closed = free_port();
    format!(
        "workers = 1\n\
         [servers.old]\nhost = \"127.0.0.1\"\nport = {closed}\ntls = \"tls\"\n\
         [servers.new]\nhost = \"127.0.0.1\"\nport = {closed}\ntls = \"tls\"\n\
         [routes.default]\nsource = \"old\"\ntarget = \"new\"\nlabel = \"Old to new\"\n"
    )
}

/// Imports one job through the admin API (as admin `ada`) and returns its id.
async fn import_a_job(portal: &Portal) -> String {
    portal.add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin = Api::new(&portal.url(""));
    admin.staff_sign_in("ada", ADMIN_PW).await.unwrap();
    let answer = admin
        .post(
            "/api/admin/import",
            &ImportRequest {
                csv: "source_user,source_password,target_user,target_password,route\n\
                      zoe,pw-one-1,zoe,pw-two-2,default\n"
                    .into(),
                import_valid_rows: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let page: JobPage = admin.get_json("/api/helpdesk/jobs").await.unwrap();
    page.jobs.first().expect("the imported job").id.clone()
}

/// Reads the stream until it ends; panics if it is still open after `limit`.
async fn ends_within(stream: &mut mailferry_e2e::api::SseStream, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.next()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) | Ok(Err(_)) => return started.elapsed(),
            Err(_) => panic!("the stream was still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn live_progress_ends_when_its_session_is_signed_out_elsewhere_or_revoked() {
    let (portal, id) = portal_with_a_job().await;
    portal.add_staff("helen", HELPDESK_PW, "helpdesk").unwrap();
    let path = format!("/api/helpdesk/jobs/{id}/events");

    // Signed out through another connection of the same session.
    let staff = Api::new(&portal.url(""));
    staff.staff_sign_in("helen", HELPDESK_PW).await.unwrap();
    let mut stream = staff.events(&path, None).await.unwrap();
    let first = stream.next().await.unwrap().expect("the snapshot");
    assert_eq!(first.event, "snapshot");
    let signed_out = staff.delete("/api/session").await.unwrap();
    assert_eq!(signed_out.status, 200, "{}", signed_out.body);
    ends_within(&mut stream, Duration::from_secs(10)).await;

    // Ended by the command line: the account is removed while it watches.
    staff.staff_sign_in("helen", HELPDESK_PW).await.unwrap();
    let mut stream = staff.events(&path, None).await.unwrap();
    stream.next().await.unwrap().expect("the snapshot");
    let out = portal.command(&["staff", "remove", "helen"], "").unwrap();
    assert!(out.status.success());
    ends_within(&mut stream, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_sign_out_on_one_node_ends_the_live_stream_on_another() {
    use mailferry_e2e::postgres::PgServer;
    let pg = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .unwrap();
    let db_url = pg.create_database("mailferry").unwrap();
    let key_dir = tempfile::tempdir().unwrap();
    let config = closed_route_config();
    let mut nodes = Vec::new();
    for name in ["node-a", "node-b"] {
        nodes.push(
            Portal::start_node(&config, &db_url, key_dir.path(), name)
                .await
                .unwrap(),
        );
    }
    let id = import_a_job(&nodes[0]).await;
    nodes[0]
        .add_staff("helen", HELPDESK_PW, "helpdesk")
        .unwrap();
    let on_a = Api::new(&nodes[0].url(""));
    on_a.staff_sign_in("helen", HELPDESK_PW).await.unwrap();
    let on_b = on_a.at(&nodes[1].url(""));
    let mut stream = on_b
        .events(&format!("/api/helpdesk/jobs/{id}/events"), None)
        .await
        .unwrap();
    stream.next().await.unwrap().expect("the snapshot");
    assert_eq!(on_a.delete("/api/session").await.unwrap().status, 200);
    ends_within(&mut stream, Duration::from_secs(10)).await;
    drop(nodes);
    drop(pg);
}

#[tokio::test]
async fn first_start_makes_private_files_and_a_readable_config_is_refused() {
    let (mut portal, scratch) = RawPortal::spawn(&["--secure-cookies", "false"]);
    portal.healthy().await;
    portal.add_staff("ada", ADMIN_PW, "admin");
    assert_eq!(mode(&portal.data_dir), 0o700, "the data directory");
    for name in ["mailferry.db", "mailferry.db-wal", "mailferry.db-shm"] {
        assert_eq!(mode(&portal.data_dir.join(name)), 0o600, "{name}");
    }
    drop(portal);

    // A config file others can read is refused, with the fix in the message.
    let config = scratch.path().join("mailferry.toml");
    std::fs::write(&config, "workers = 1\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config_text = config.display().to_string();
    let (portal, _) = RawPortal::spawn(&["--config", &config_text]);
    let log = portal.refused();
    assert!(
        log.contains(&format!("chmod 600 {config_text}")),
        "the message should say how to fix it: {log}"
    );

    // So is a master password file others can read.
    let secret = scratch.path().join("master.pw");
    std::fs::write(&secret, "master-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(
        &config,
        format!(
            "[servers.old]\nhost = \"127.0.0.1\"\nmaster_user = \"admin\"\n\
             master_password_file = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (portal, _) = RawPortal::spawn(&["--config", &config_text]);
    let log = portal.refused();
    assert!(
        log.contains(&format!("chmod 600 {}", secret.display())),
        "{log}"
    );
    assert!(!log.contains("master-secret"), "{log}");
}

/// Waits up to `limit` for the portal log to mention a CSP violation.
async fn violation_logged(portal: &Portal, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if portal
            .log_text()
            .contains("Content-Security-Policy violation")
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn the_app_runs_in_chromium_under_the_policy_without_a_single_violation() {
    use fantoccini::Locator;
    use mailferry_e2e::browser::{wait_for_text, with_browser};
    let (portal, _id) = portal_with_a_job().await;
    portal.add_staff("helen", HELPDESK_PW, "helpdesk").unwrap();
    with_browser(async |client| {
        client.goto(&portal.url("/")).await?;
        wait_for_text(client, "[data-testid=server-status]", "Server ready").await?;
        client.goto(&portal.url("/staff")).await?;
        for (testid, text) in [("staff-user", "helen"), ("staff-password", HELPDESK_PW)] {
            client
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css(&format!("[data-testid={testid}]")))
                .await?
                .send_keys(text)
                .await?;
        }
        client
            .find(Locator::Css("[data-testid=staff-sign-in]"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("[data-testid=job-row]"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("[data-testid=job-status]"))
            .await?;
        // Reports are sent asynchronously: give them time to arrive.
        assert!(
            !violation_logged(&portal, Duration::from_secs(3)).await,
            "Chromium reported a CSP violation: {}",
            portal.log_text()
        );

        // The check can fail: injected inline code is blocked and reported.
        let blocked = client
            .execute(
                "const s = document.createElement('script'); \
                 s.textContent = 'window.__injected = true;'; \
                 document.head.appendChild(s); \
                 return window.__injected === undefined;",
                vec![],
            )
            .await?;
        assert_eq!(blocked, serde_json::Value::Bool(true), "inline script ran");
        assert!(
            violation_logged(&portal, Duration::from_secs(10)).await,
            "the blocked script was not reported"
        );
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_uid_map_csv_cannot_smuggle_a_formula_into_a_spreadsheet() {
    use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
    use mailferry_e2e::imap_client::{connect, AppendItem};
    use mailferry_e2e::portal::route_config;
    use mailferry_shared::{JobStatus, JobView, SignInRequest, SignInResult};
    const SOURCE_PW: &str = "src-Secret-7";
    const TARGET_PW: &str = "tgt-Secret-9";
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    source.add_user("mallory", SOURCE_PW).unwrap();
    target.add_user("mallory", TARGET_PW).unwrap();
    // Folder names are the attacker's: anyone who shares a folder or names one chooses them.
    let hostile = ["=HYPERLINK(\"evil\",\"x\")", "@SUM(1+1)", "+1", "-2"];
    let mut conn = connect(&source.account_tls("mallory", SOURCE_PW))
        .await
        .unwrap();
    let message = b"From: a@example.org\r\nSubject: =cmd\r\n\r\nhello\r\n";
    for folder in hostile {
        conn.create(folder).await.unwrap();
        let items = [AppendItem {
            mailbox: folder,
            flags: &[],
            internal_date: None,
            bytes: message,
        }];
        for reply in conn.append_pipelined(&items).await.unwrap() {
            reply.unwrap();
        }
    }
    conn.logout().await;

    let portal = Portal::start_with_config(&route_config(&source, &target, ""))
        .await
        .unwrap();
    portal.add_staff("helen", HELPDESK_PW, "helpdesk").unwrap();
    let user = Api::new(&portal.url(""));
    let signed_in: SignInResult = user
        .post_json(
            "/api/session",
            &SignInRequest {
                route: "default".into(),
                source_user: "mallory".into(),
                source_password: SOURCE_PW.into(),
                target_user: "mallory".into(),
                target_password: TARGET_PW.into(),
            },
        )
        .await
        .unwrap();
    let job_id = signed_in.job_id.expect("a job");
    let _: JobView = user.post_json("/api/my/job/start", &()).await.unwrap();
    let started = Instant::now();
    loop {
        let job: JobView = user.get_json("/api/my/job").await.unwrap();
        if job.status == JobStatus::Synced {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job did not finish: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let staff = Api::new(&portal.url(""));
    staff.staff_sign_in("helen", HELPDESK_PW).await.unwrap();
    let csv = staff
        .get(&format!("/api/helpdesk/jobs/{job_id}/uid-map.csv"))
        .await
        .unwrap();
    assert_eq!(csv.status, 200, "{}", csv.body);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 1 + hostile.len(), "{}", csv.body);
    // Every cell a spreadsheet reads: none may start with a formula character.
    for line in &lines[1..] {
        for cell in split_csv_line(line) {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula cell {cell:?} in {line}"
            );
        }
    }
    // The names are all there, behind a quote, with CSV quoting intact.
    for folder in hostile {
        let wanted = format!("'{folder}");
        assert!(
            lines[1..]
                .iter()
                .any(|line| split_csv_line(line).first() == Some(&wanted)),
            "{wanted} missing: {}",
            csv.body
        );
    }
}

/// Splits one CSV line into its unquoted cell values (RFC 4180 quoting).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cells.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}
