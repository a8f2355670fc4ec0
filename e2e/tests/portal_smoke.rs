//! The portal as a user first meets it: the server answers, the page renders in Chromium.

use mailferry_e2e::browser::{screenshot, wait_for_text, with_browser};
use mailferry_e2e::portal::Portal;
use mailferry_e2e::postgres::{suite_database, SuiteDatabase};
use mailferry_shared::{ApiError, Health, HealthStatus};

/// The database the suite runs on, as `/api/health` names it.
fn database_name() -> &'static str {
    match suite_database() {
        SuiteDatabase::Sqlite => "sqlite",
        SuiteDatabase::Postgres => "postgres",
    }
}

#[tokio::test]
async fn health_reports_ok_with_its_database() {
    let portal = Portal::start().await.unwrap();
    let response = reqwest::get(portal.url("/api/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    let health: Health = response.json().await.unwrap();
    assert_eq!(health.status, HealthStatus::Ok);
    assert_eq!(health.database, database_name());
    let sqlite_file = portal.data_dir().join("mailferry.db");
    match suite_database() {
        // The default SQLite file was created inside the data directory.
        SuiteDatabase::Sqlite => assert!(sqlite_file.is_file()),
        // On PostgreSQL the schema is there and no SQLite file was made.
        SuiteDatabase::Postgres => {
            assert!(!sqlite_file.exists());
            let pg = portal.postgres().expect("the suite's PostgreSQL");
            let tables = pg
                .psql(
                    "mailferry",
                    "SELECT COUNT(*) FROM information_schema.tables WHERE \
                     (table_schema = 'public' AND table_name IN ('jobs', 'uid_map', 'job_events', 'staff')) \
                     OR (table_schema = 'tower_sessions' AND table_name = 'session')",
                )
                .unwrap();
            assert_eq!(tables, "5");
        }
    }
}

#[tokio::test]
async fn unknown_api_path_is_a_json_404_and_client_routes_get_the_app() {
    let portal = Portal::start().await.unwrap();

    let response = reqwest::get(portal.url("/api/no-such-thing"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: ApiError = response.json().await.unwrap();
    assert_eq!(error.code, "not_found");
    assert!(
        error.message.contains("/api/no-such-thing"),
        "{}",
        error.message
    );

    // A deep link into the single-page app is answered with index.html, so reloads work.
    let response = reqwest::get(portal.url("/helpdesk/jobs/42")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("<title>Mailferry</title>"), "{body}");
    assert!(
        body.contains(".wasm"),
        "index.html should load the app: {body}"
    );

    // The app's WebAssembly goes out gzip-compressed to browsers that accept it.
    let wasm = body
        .split('"')
        .find(|part| part.ends_with(".wasm"))
        .expect("index.html names the .wasm file");
    let response = reqwest::Client::new()
        .get(portal.url(&format!("/{}", wasm.trim_start_matches('/'))))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header("content-type").as_deref(), Some("application/wasm"));
}

#[tokio::test]
async fn start_page_renders_in_chromium_and_shows_the_server_state() {
    let portal = Portal::start().await.unwrap();
    with_browser(async |client| {
        client.goto(&portal.url("/")).await?;
        // Text rendered by the WebAssembly app after it called /api/health.
        let status = wait_for_text(client, "[data-testid=server-status]", "Server ready").await?;
        assert!(status.contains(database_name()), "{status}");
        let heading = client
            .find(fantoccini::Locator::Css("h1"))
            .await?
            .text()
            .await?;
        assert_eq!(heading, "Move your mailbox");
        screenshot(client, "start-page").await?;
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_page_shows_a_friendly_not_found() {
    let portal = Portal::start().await.unwrap();
    with_browser(async |client| {
        client.goto(&portal.url("/no/such/page")).await?;
        wait_for_text(client, "h1", "Page not found").await?;
        Ok(())
    })
    .await
    .unwrap();
}
