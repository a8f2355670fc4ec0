//! Builds the application from its configuration and runs it until a shutdown signal:
//! database, key vault, job store, worker pool, sessions, web server.

use crate::config::Config;
use crate::db::{redact_url, Database, DatabaseKind};
use crate::http::headers::SecurityHeaders;
use crate::http::origin::AllowedOrigins;
use crate::http::setup::SetupToken;
use crate::http::{self, rate_limit::RateLimiter, AppState, Edge};
use crate::jobs::{JobStore, Notifier, WorkerPool, WorkerSettings};
use crate::vault::Vault;
use anyhow::Context;
use axum::Router;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

pub async fn serve(config: Config) -> anyhow::Result<()> {
    refuse_readable_secrets(&config)?;
    // Fails early, with advice, on a public listener without public_url.
    AllowedOrigins::new(config.public_origin.as_deref(), config.listen)?;
    crate::db::create_private_dir(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let db = Database::open(&config.database_url).await?;
    tracing::info!(database = %redact_url(&config.database_url), "database ready");
    let vault = Vault::open(config.secret_key.as_deref(), &config.secret_key_file)?;
    vault.check_against(db.pool()).await?;
    let notifier = Notifier::default();
    let store = JobStore::new(db.pool().clone(), db.kind(), notifier.clone());
    if db.kind() == DatabaseKind::Postgres {
        // News of jobs run by other nodes reaches this node's streams and workers at once.
        tokio::spawn(crate::jobs::relay::listen(
            config.database_url.clone(),
            notifier,
        ));
    }
    if db.kind() == DatabaseKind::Sqlite {
        // SQLite means one node: any lease left is from this server's previous life.
        let released = store.release_all_leases().await?;
        if released > 0 {
            tracing::info!(
                jobs = released,
                "resuming jobs interrupted by the last shutdown"
            );
        }
    }
    if config.routes.is_empty() {
        tracing::warn!("no migration routes are configured: end users cannot sign in until the config file names servers and routes");
    }
    let routes = Arc::new(config.routes.clone());
    // Before any worker may use a provider the check would reject.
    check_oauth_providers(&routes).await?;
    tracing::info!(node = %config.node_name, "this node's name");
    let mut worker_settings = WorkerSettings::new(config.node_name.clone(), config.workers);
    worker_settings.lease_seconds = config.lease_seconds;
    worker_settings.delta_sync_minutes = config.delta_sync_minutes;
    worker_settings.credential_retention_hours = config.credential_retention_hours;
    worker_settings.stall_timeout = config
        .stall_timeout_seconds
        .map(std::time::Duration::from_secs);
    worker_settings.shutdown_grace = Duration::from_secs(config.shutdown_grace_seconds);
    worker_settings.budget =
        crate::engine::copy::budget::ByteBudget::new(config.memory_budget_mb << 20);
    let workers = WorkerPool::new(
        store.clone(),
        routes.clone(),
        vault.clone(),
        worker_settings,
    );
    if db.kind() == DatabaseKind::Postgres {
        // Jobs this node (by its name) held when it last stopped without releasing them
        // (killed, crashed): its own, so taken back at once rather than after the lease.
        let own = store.release_leases_of(&config.node_name).await?;
        if own > 0 {
            tracing::info!(jobs = own, node = %config.node_name, "taking back this node's jobs from its last run");
        }
    }
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let workers_stopped = tokio::spawn(workers.run_until(shutdown_rx.clone()));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let origins = AllowedOrigins::new(config.public_origin.as_deref(), addr)?;
    let sessions = match db.kind() {
        DatabaseKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&config.database_url).await?;
            let sessions = SqliteStore::new(pool);
            sessions
                .migrate()
                .await
                .context("create the session table")?;
            Sessions::Sqlite(sessions)
        }
        DatabaseKind::Postgres => {
            let pool = sqlx::PgPool::connect(&config.database_url).await?;
            let sessions = PostgresStore::new(pool);
            sessions
                .migrate()
                .await
                .context("create the session table")?;
            Sessions::Postgres(sessions)
        }
    };

    let public_url = config
        .public_origin
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let setup = first_run_setup(&db, &public_url).await?;
    if let Some(listen) = config.metrics_listen {
        let listener = http::metrics::bind(listen).await?;
        let handle = crate::metrics::install()?;
        let mut stopping = shutdown_rx.clone();
        let stopped = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let serving = http::metrics::serve(listener, handle, store.clone(), stopped);
        tokio::spawn(async move {
            if let Err(err) = serving.await {
                tracing::error!(error = %err, "the metrics listener stopped");
            }
        });
    }
    let state = AppState {
        db: db.clone(),
        store,
        routes,
        vault,
        limiter: Arc::new(RateLimiter::new(db.pool().clone())),
        trusted_proxies: config.trusted_proxies.clone().into(),
        node: config.node_name.as_str().into(),
        shutdown: shutdown_rx,
        edge: Arc::new(Edge {
            origins,
            session_lifetime: Duration::from_secs(config.session_lifetime_seconds),
            sessions: sessions.shared(),
            oauth_redirect: format!("{public_url}/api/oauth/callback"),
        }),
        setup: Arc::new(setup),
    };
    let app = http::router(state, &config.static_dir);
    let cookies = CookieRules {
        secure: config.secure_cookies,
        idle: Duration::from_secs(config.session_idle_seconds),
    };
    let app = match sessions {
        Sessions::Sqlite(store) => with_sessions(app, store, &cookies),
        Sessions::Postgres(store) => with_sessions(app, store, &cookies),
    };
    let security = Arc::new(SecurityHeaders::new(
        &config.static_dir,
        config.secure_cookies,
    ));
    let app = app.layer(axum::middleware::from_fn_with_state(
        security,
        http::headers::add,
    ));
    if !config.secure_cookies {
        tracing::warn!(
            "secure_cookies is off: the session cookie also travels over plain HTTP; use this \
             only for development on this machine"
        );
    }
    tracing::info!("Mailferry portal listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    })
    .await
    .context("the web server stopped unexpectedly")?;
    // The workers saw the same signal: they stop claiming, and release what they run
    // once the grace is over.
    let bound = Duration::from_secs(config.shutdown_grace_seconds) + Duration::from_secs(30);
    if tokio::time::timeout(bound, workers_stopped).await.is_err() {
        tracing::warn!(
            "the job workers did not stop within {bound:?}; their leases run out by themselves"
        );
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// While no staff account exists: a one-time setup token, and its link printed on the
/// terminal and in the log, so that whoever started the server can create the first admin
/// from the browser.
async fn first_run_setup(db: &Database, public_url: &str) -> anyhow::Result<SetupToken> {
    if crate::staff::any(db.pool()).await? {
        return Ok(SetupToken::default());
    }
    let (held, token) =
        SetupToken::issue().map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let link = format!("{public_url}/setup#{}", token.as_str());
    tracing::warn!(%link, "no staff account exists yet: open the setup link to create the first admin (it works once, until this server restarts)");
    eprintln!(
        "\n  No staff account exists yet. To create the first admin, open:\n\n    {link}\n\n  \
         (It works once, until this server restarts. `mailferry staff add` works too.)\n"
    );
    Ok(held)
}

/// The session store, of the database's kind.
enum Sessions {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Sessions {
    fn shared(&self) -> Arc<dyn SessionStore> {
        match self {
            Sessions::Sqlite(store) => Arc::new(store.clone()),
            Sessions::Postgres(store) => Arc::new(store.clone()),
        }
    }
}

struct CookieRules {
    /// HTTPS only: `Secure`, and the `__Host-` prefix (Path=/, no Domain) so no other
    /// host or path can plant or shadow it.
    secure: bool,
    /// A session unused this long ends.
    idle: Duration,
}

/// The session cookie's name: `__Host-mailferry_session` when it is `Secure`.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-mailferry_session"
    } else {
        "mailferry_session"
    }
}

/// Server-side sessions: the browser gets an opaque, HttpOnly, SameSite=Strict cookie.
/// Expired sessions are deleted every ten minutes.
fn with_sessions<S>(app: Router, store: S, rules: &CookieRules) -> Router
where
    S: SessionStore + ExpiredDeletion + Clone,
{
    let sweeper = store.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            if let Err(err) = sweeper.delete_expired().await {
                tracing::warn!(error = %err, "cannot delete expired sessions");
            }
        }
    });
    let idle = time::Duration::seconds(i64::try_from(rules.idle.as_secs()).unwrap_or(i64::MAX));
    let layer = SessionManagerLayer::new(store)
        .with_name(session_cookie_name(rules.secure))
        .with_path("/")
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(rules.secure)
        .with_expiry(Expiry::OnInactivity(idle));
    app.layer(layer)
}

/// Refuses to start when the config file or a master password file can be read by
/// anyone but its owner: they hold passwords for every mailbox.
pub(crate) fn refuse_readable_secrets(config: &Config) -> anyhow::Result<()> {
    let files = config.config_file.iter().chain(&config.secret_files);
    for path in files {
        if let Some(mode) = loose_mode(path)? {
            anyhow::bail!(
                "{} can be read by other users (mode {mode:03o}) and may hold passwords; \
                 make it private with `chmod 600 {}` and start again",
                path.display(),
                path.display()
            );
        }
    }
    Ok(())
}

/// The file's permission bits when group or others have any access.
pub(crate) fn loose_mode(path: &Path) -> anyhow::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Every OAuth provider of the config answers discovery and accepts the client secret:
/// a wrong issuer, tenant or secret stops the start with the profile named. A provider
/// that cannot be reached only warns (it is tried again at each sign-in and refresh).
pub async fn check_oauth_providers(routes: &crate::profiles::Routes) -> anyhow::Result<()> {
    let providers: Vec<_> = routes.providers().collect();
    let results = futures::future::join_all(providers.iter().map(|p| p.check())).await;
    for (provider, result) in providers.into_iter().zip(results) {
        match result {
            Ok(()) => {
                tracing::info!(server = %provider.server, issuer = %provider.settings.issuer, "OAuth provider ready")
            }
            Err(err @ crate::oauth::ProviderError::Unreachable { .. }) => {
                tracing::warn!(error = %err, "OAuth provider unreachable at start-up; sign-ins with it will fail until it answers")
            }
            Err(err) => anyhow::bail!("{err}"),
        }
    }
    Ok(())
}
