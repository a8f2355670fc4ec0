//! `mailferry migrate`: turns the command line into engine settings, shows progress on a
//! terminal, and prints the result (text, or one JSON object as the last stdout line).

use crate::cli::{MigrateArgs, ServeArgs};
use crate::config::Config;
use crate::db::{redact_url, Database};
use crate::engine::{
    self, Auth, Endpoint, EngineError, Event, Events, FolderRules, Password, Report, Security,
    Settings, Side, StaticToken, TokenHandle,
};
use crate::oauth::{AuthKind, Provider};
use mailferry_shared::AccountSide;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit status when the run completed but some messages were skipped or failed.
pub const EXIT_INCOMPLETE: u8 = 3;
/// Exit status when the run stopped early for a reason the user must fix (over quota).
pub const EXIT_STOPPED: u8 = 4;
/// Exit status on a fatal error (bad arguments, login refused, unreachable server).
pub const EXIT_FATAL: u8 = 2;

/// An account URL, parsed: `imap[s]://USER@HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUrl {
    pub tls: bool,
    pub user: String,
    pub host: String,
    pub port: u16,
}

pub fn parse_account_url(url: &str) -> Result<AccountUrl, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("imaps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("imap://") {
        (false, r)
    } else {
        return Err(format!("{url:?} must start with imap:// or imaps://"));
    };
    let rest = rest.trim_end_matches('/');
    let at = rest
        .rfind('@')
        .ok_or_else(|| format!("{url:?} has no user: write imap://USER@HOST:PORT"))?;
    let (userinfo, hostport) = (&rest[..at], &rest[at + 1..]);
    if userinfo.contains(':') {
        return Err(
            "put passwords in MAILFERRY_FROM_PASSWORD / MAILFERRY_TO_PASSWORD or a password file, not in the URL"
                .to_owned(),
        );
    }
    let user =
        percent_decode(userinfo).ok_or_else(|| format!("bad %-escape in the user of {url:?}"))?;
    if user.is_empty() {
        return Err(format!("{url:?} has an empty user"));
    }
    let default_port = if tls { 993 } else { 143 };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("bad IPv6 address in {url:?}"))?;
        let host = &v6[..end];
        let port = match v6[end + 1..].strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("bad port in {url:?}"))?,
            None => default_port,
        };
        (host.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse().map_err(|_| format!("bad port in {url:?}"))?,
            ),
            None => (hostport.to_owned(), default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(AccountUrl {
        tls,
        user,
        host,
        port,
    })
}

/// `%XX` escapes decoded; a `%` without two hex digits is kept as it is: user names like
/// `usuario1%ncc%migracion` exist and must work unescaped.
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|d| d.into_owned())
}

fn password(side: Side, file: Option<&Path>) -> Result<Password, String> {
    let var = match side {
        Side::Source => "MAILFERRY_FROM_PASSWORD",
        Side::Target => "MAILFERRY_TO_PASSWORD",
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the {side} password file {}: {e}",
                path.display()
            )
        })?;
        return Ok(Password::new(text.trim_end_matches(['\r', '\n'])));
    }
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Ok(Password::new(p)),
        _ => Err(format!(
            "no {side} password: set {var} or use --{}-password-file",
            if side == Side::Source { "from" } else { "to" }
        )),
    }
}

/// What the command line says about one side.
struct SideArgs<'a> {
    side: Side,
    /// `--from` / `--to`: an account URL, or with a profile a user name.
    account: &'a str,
    profile: Option<&'a str>,
    password_file: Option<&'a Path>,
    auth_as: Option<&'a str>,
    token_file: Option<&'a Path>,
}

impl<'a> SideArgs<'a> {
    fn of(side: Side, args: &'a MigrateArgs) -> Self {
        match side {
            Side::Source => SideArgs {
                side,
                account: &args.from,
                profile: args.from_profile.as_deref(),
                password_file: args.from_password_file.as_deref(),
                auth_as: args.from_auth_as.as_deref(),
                token_file: args.from_oauth2_token_file.as_deref(),
            },
            Side::Target => SideArgs {
                side,
                account: &args.to,
                profile: args.to_profile.as_deref(),
                password_file: args.to_password_file.as_deref(),
                auth_as: args.to_auth_as.as_deref(),
                token_file: args.to_oauth2_token_file.as_deref(),
            },
        }
    }

    /// `--from-NAME` or `--to-NAME`, as the user types it.
    fn flag(&self, name: &str) -> String {
        match self.side {
            Side::Source => format!("--from-{name}"),
            Side::Target => format!("--to-{name}"),
        }
    }
}

/// How one side is reached, decided before any network step.
struct SidePlan {
    endpoint: Endpoint,
    /// The server profile whose OAuth provider gets the tokens (app mode): checked, and
    /// a first token fetched, before anything is copied.
    provider: Option<(String, Arc<Provider>)>,
    /// Where a fixed token came from (named when the server refuses it).
    token_file: Option<PathBuf>,
    /// With a profile: the account's pacing key (`profile/user`) and the profile's caps,
    /// shared with the portal's jobs through the database.
    pacing: Option<(String, engine::pacing::Caps)>,
}

/// Reads an access token from a private file: surrounding whitespace trimmed, nothing
/// else allowed in it.
fn read_token(side: Side, path: &Path) -> Result<Password, String> {
    let loose = crate::startup::loose_mode(path).map_err(|e| format!("{side}: {e:#}"))?;
    if let Some(mode) = loose {
        return Err(format!(
            "{side}: the token file {} can be read by other users (mode {mode:03o}); make it \
             private with `chmod 600 {}` and try again",
            path.display(),
            path.display()
        ));
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("{side}: cannot read the token file {}: {e}", path.display()))?,
    );
    let token = text.trim();
    if token.is_empty() {
        return Err(format!(
            "{side}: the token file {} is empty",
            path.display()
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{side}: the token file {} holds more than one word: put only the access token in it",
            path.display()
        ));
    }
    Ok(Password::new(token))
}

fn static_token(token: Password, label: &str) -> TokenHandle {
    TokenHandle::new(StaticToken {
        token,
        label: label.to_owned(),
    })
}

fn plan_side(sa: &SideArgs<'_>, args: &MigrateArgs, config: &Config) -> Result<SidePlan, String> {
    let side = sa.side;
    if sa.token_file.is_some() && sa.password_file.is_some() {
        return Err(format!(
            "{side}: {} and {} exclude each other: log in with a token or a password",
            sa.flag("oauth2-token-file"),
            sa.flag("password-file")
        ));
    }
    if sa.token_file.is_some() && sa.auth_as.is_some() {
        return Err(format!(
            "{side}: {} and {} exclude each other: a token is the mailbox owner's own",
            sa.flag("oauth2-token-file"),
            sa.flag("auth-as")
        ));
    }
    let token = sa.token_file.map(|f| read_token(side, f)).transpose()?;
    match sa.profile {
        None => url_side(sa, args, token),
        Some(name) => profile_side(sa, args, config, name, token),
    }
}

/// A side given by its URL alone (no profile).
fn url_side(
    sa: &SideArgs<'_>,
    args: &MigrateArgs,
    token: Option<Password>,
) -> Result<SidePlan, String> {
    let side = sa.side;
    if !sa.account.contains("://") {
        return Err(format!(
            "{side}: {:?} is not an account URL: write imaps://USER@HOST[:PORT], or name a \
             server profile of the config file with {}",
            sa.account,
            sa.flag("profile")
        ));
    }
    let parsed = parse_account_url(sa.account).map_err(|e| format!("{side}: {e}"))?;
    let security = if parsed.tls {
        Security::ImplicitTls
    } else if args.allow_plaintext {
        Security::Plain
    } else {
        Security::StartTls
    };
    let (password, auth) = match token {
        Some(token) => (
            Password::new(""),
            Auth::OAuth2 {
                tokens: static_token(token, "the token file"),
            },
        ),
        None => (
            password(side, sa.password_file)?,
            match sa.auth_as {
                Some(owner) => Auth::Plain {
                    authzid: Some(owner.to_owned()),
                },
                None => Auth::Login,
            },
        ),
    };
    Ok(SidePlan {
        endpoint: Endpoint {
            side,
            host: parsed.host,
            port: parsed.port,
            security,
            user: parsed.user,
            password,
            auth,
            ca_file: args.ca_file.clone(),
            timeout: Duration::from_secs(args.timeout.max(1)),
        },
        provider: None,
        token_file: sa.token_file.map(Path::to_path_buf),
        pacing: None,
    })
}

/// The mailbox named with a profile: a bare user name or address, or a URL (whose host
/// and port must then be the profile's: the profile says where to connect).
fn profile_user(sa: &SideArgs<'_>) -> Result<(String, Option<AccountUrl>), String> {
    let side = sa.side;
    if sa.account.contains("://") {
        let url = parse_account_url(sa.account).map_err(|e| format!("{side}: {e}"))?;
        return Ok((url.user.clone(), Some(url)));
    }
    let user = sa.account.trim();
    if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{side}: {:?} is not a user name or address",
            sa.account
        ));
    }
    Ok((user.to_owned(), None))
}

fn profile_side(
    sa: &SideArgs<'_>,
    args: &MigrateArgs,
    config: &Config,
    name: &str,
    token: Option<Password>,
) -> Result<SidePlan, String> {
    let side = sa.side;
    let routes = &config.routes;
    let profile_flag = sa.flag("profile");
    if config.config_file.is_none() {
        return Err(format!(
            "{side}: {profile_flag} {name} needs the config file that names [servers.{name}]: \
             give it with --config FILE"
        ));
    }
    let Some(profile) = routes.server(name) else {
        let known = routes.server_names().collect::<Vec<_>>().join(", ");
        return Err(format!(
            "{side}: the config file has no server profile {name} (it has: {})",
            if known.is_empty() { "none" } else { &known }
        ));
    };
    if sa.auth_as.is_some() {
        return Err(format!(
            "{side}: {} does not go with {profile_flag}: the profile says how to log in \
             (auth = \"master\" with its master_user)",
            sa.flag("auth-as")
        ));
    }
    let (user, url) = profile_user(sa)?;
    let kind = profile.auth_kind();
    let label = routes
        .provider_of_server(name)
        .map_or_else(|| "the token file".to_owned(), |p| p.label().to_owned());
    let account_side = match side {
        Side::Source => AccountSide::Source,
        Side::Target => AccountSide::Target,
    };
    let mut provider = None;
    let endpoint = match (token, kind) {
        (Some(token), _) => {
            // The token decides how to log in, whatever the profile's own way is.
            let tokens = static_token(token, &label);
            routes
                .server_endpoint(name, account_side, &user, "", Some(tokens.clone()))
                .map(|mut e| {
                    e.user = user.clone();
                    e.password = Password::new("");
                    e.auth = Auth::OAuth2 { tokens };
                    e
                })
        }
        (None, AuthKind::OAuth2) => {
            return Err(format!(
                "{side}: server profile {name} has auth = \"oauth2\": the portal gets each \
                 user's tokens by a sign-in in the browser, which the command line cannot do. \
                 Use the portal, or get an access token for {user} elsewhere and pass it with \
                 {} FILE",
                sa.flag("oauth2-token-file")
            ))
        }
        (None, AuthKind::OAuth2App) => {
            provider = routes
                .provider_of_server(name)
                .map(|p| (name.to_owned(), p));
            routes.server_endpoint(name, account_side, &user, "", None)
        }
        (None, AuthKind::Master) => routes.server_endpoint(name, account_side, &user, "", None),
        (None, AuthKind::Password) => {
            let secret = password(side, sa.password_file)?;
            routes.server_endpoint(name, account_side, &user, secret.expose(), None)
        }
    };
    let mut endpoint =
        endpoint.ok_or_else(|| format!("{side}: server profile {name} gives no way to log in"))?;
    if let Some(url) = url {
        if !url.host.eq_ignore_ascii_case(&endpoint.host) || url.port != endpoint.port {
            return Err(format!(
                "{side}: {} names {}:{}, but server profile {name} is {}:{}; give just the user \
                 name with {profile_flag}",
                sa.account, url.host, url.port, endpoint.host, endpoint.port
            ));
        }
    }
    if profile.timeout_seconds.is_none() {
        endpoint.timeout = Duration::from_secs(args.timeout.max(1));
    }
    if endpoint.ca_file.is_none() {
        endpoint.ca_file = args.ca_file.clone();
    }
    Ok(SidePlan {
        endpoint,
        provider,
        token_file: sa.token_file.map(Path::to_path_buf),
        pacing: Some(routes.server_pacing(name, &user)),
    })
}

/// Before anything is copied: the profile's provider answers and accepts the app, and
/// gives a token for the mailbox (kept for the copy), so a wrong issuer, secret or key
/// is reported with the profile named.
async fn check_provider(plan: &SidePlan) -> Result<(), String> {
    let Some((name, provider)) = &plan.provider else {
        return Ok(());
    };
    let side = plan.endpoint.side;
    // The provider's words name the server profile already.
    provider
        .check()
        .await
        .map_err(|e| format!("{side}: {e} (see [servers.{name}.oauth] in the config file)"))?;
    if let Auth::OAuth2 { tokens } = &plan.endpoint.auth {
        tokens.token(false).await.map_err(|e| {
            let words = e.to_string();
            let words = words
                .strip_prefix(&format!("server {name}: "))
                .unwrap_or(&words);
            format!(
                "{side}: server profile {name} got no access token for {}: {words}",
                plan.endpoint.user
            )
        })?;
        tracing::debug!(%side, server = %name, "app token ready");
    }
    Ok(())
}

/// An engine error in words, with advice when a token from a file was refused.
fn explain_engine_error(err: &EngineError, plans: [&SidePlan; 2]) -> String {
    if let EngineError::Stalled { .. } = err {
        return format!(
            "{err}, each time it was tried; stopped. Run again to resume where it stopped \
             (--stall-timeout sets how long a run may make no progress)"
        );
    }
    if let EngineError::Login {
        side, bearer: true, ..
    } = err
    {
        if let Some(file) = plans
            .iter()
            .find(|p| p.endpoint.side == *side)
            .and_then(|p| p.token_file.as_ref())
        {
            return format!(
                "{err}. The server refused the access token from {}: it may have expired, be \
                 for another user, or lack a scope the server needs; get a new one",
                file.display()
            );
        }
    }
    err.to_string()
}

/// The JSON object printed last with `--json`.
#[derive(Debug, Serialize)]
struct JsonResult<'a> {
    ok: bool,
    job_id: &'a str,
    copied: u64,
    already_present: u64,
    skipped: u64,
    failed: u64,
    flags_updated: u64,
    bytes_copied: u64,
    seconds: f64,
    skipped_messages: &'a [engine::SkippedMessage],
    failed_folders: &'a [engine::FailedFolder],
    stopped: Option<&'a str>,
    error: Option<String>,
    /// When a paused run (exit status 4) may go on, in Unix seconds: run it again then.
    #[serde(skip_serializing_if = "Option::is_none")]
    resume_at: Option<i64>,
    /// What the label policy did (label-style sources only).
    label_policy: &'a [String],
    /// Labels added on a Gmail target by UID COPY.
    label_copies: u64,
    /// Messages copied without a keyword or the date the target refused.
    altered: &'a [String],
    /// Source folders not copied: other users' and shared folders.
    left_out: &'a [String],
    /// Source folders with raw 8-bit names, and the name each got on the target.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    renamed: &'a [String],
    /// The budget of message bytes in flight (`--memory-budget-mb`), and the most listed
    /// bytes that were in flight at once (above the budget only for one message larger
    /// than it, copied alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_budget_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_bytes_in_flight: Option<u64>,
}

/// Why a run ended without a report: the words, and the exit status.
struct Ended {
    message: String,
    status: u8,
    /// Unix seconds; set when the run paused (a cap or a throttling server).
    resume_at: Option<i64>,
}

impl From<String> for Ended {
    fn from(message: String) -> Self {
        Ended {
            message,
            status: EXIT_FATAL,
            resume_at: None,
        }
    }
}

pub async fn run(config_file: Option<&Path>, args: MigrateArgs) -> ExitCode {
    let started = Instant::now();
    match run_inner(config_file, &args, started).await {
        Ok(code) => code,
        Err(Ended {
            message,
            status,
            resume_at,
        }) => {
            eprintln!("mailferry migrate: {message}");
            if args.json {
                let empty = Report::default();
                let out = JsonResult {
                    ok: false,
                    job_id: "",
                    copied: 0,
                    already_present: 0,
                    skipped: 0,
                    failed: 0,
                    flags_updated: 0,
                    bytes_copied: 0,
                    seconds: started.elapsed().as_secs_f64(),
                    skipped_messages: &empty.skipped_messages,
                    failed_folders: &empty.failed_folders,
                    stopped: None,
                    error: Some(message),
                    resume_at,
                    label_policy: &[],
                    label_copies: 0,
                    altered: &[],
                    left_out: &[],
                    renamed: &[],
                    memory_budget_bytes: None,
                    peak_bytes_in_flight: None,
                };
                println!("{}", serde_json::to_string(&out).unwrap_or_default());
            }
            ExitCode::from(status)
        }
    }
}

async fn run_inner(
    config_file: Option<&Path>,
    args: &MigrateArgs,
    started: Instant,
) -> Result<ExitCode, Ended> {
    let serve_args = ServeArgs {
        database_url: args.db.clone(),
        data_dir: args.data_dir.clone(),
        ..ServeArgs::default()
    };
    let config = Config::load(config_file, &serve_args).map_err(|e| e.to_string())?;
    if args.from_profile.is_some() || args.to_profile.is_some() {
        // The same rule as `serve`: a config naming secrets must be private.
        crate::startup::refuse_readable_secrets(&config).map_err(|e| format!("{e:#}"))?;
    }
    let source = plan_side(&SideArgs::of(Side::Source, args), args, &config)?;
    let target = plan_side(&SideArgs::of(Side::Target, args), args, &config)?;
    check_provider(&source).await?;
    check_provider(&target).await?;
    let db = Database::open(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!(database = %redact_url(&config.database_url), "database ready");

    let mut settings = Settings::new(source.endpoint.clone(), target.endpoint.clone());
    settings.rules = FolderRules {
        map: FolderRules::parse_map(&args.map)?,
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        include_all_mail: false,
        all_mail_target: None,
    };
    settings.labels = engine::gmail::LabelOptions {
        mode: args.labels.parse()?,
        labels_as_folders: args.labels_as_folders,
        archive_folder: args.archive_folder.trim_matches('/').to_owned(),
    };
    settings.pacing = engine::pacing::Pacers::new(
        db.pool(),
        db.kind().clock(),
        &format!("cli/{}", std::process::id()),
        (&source.endpoint, source.pacing.clone()),
        (&target.endpoint, target.pacing.clone()),
    );
    settings.dry_run = args.dry_run;
    settings.read_back = !args.no_read_back;
    settings.connections = args.connections.max(1);
    settings.limits.max_message = args.max_message_mb.max(1).saturating_mul(1 << 20);
    settings.budget =
        engine::copy::budget::ByteBudget::new(args.memory_budget_mb.max(1).saturating_mul(1 << 20));
    settings.patience = Duration::from_secs(args.patience);
    settings.stall_timeout = Some(Duration::from_secs(args.stall_timeout)).filter(|t| !t.is_zero());

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let progress = tokio::spawn(progress_task(rx, show_progress));
    let result = engine::run(&settings, db.pool(), Events::new(Some(tx))).await;
    let _ = progress.await;
    let outcome = result.map_err(|e| Ended {
        message: explain_engine_error(&e, [&source, &target]),
        // Asked to wait (throttled past --patience, a daily cap): run again later.
        status: if matches!(e, EngineError::Paused { .. }) {
            EXIT_STOPPED
        } else {
            EXIT_FATAL
        },
        resume_at: match &e {
            EngineError::Paused { until, .. } => Some(*until),
            _ => None,
        },
    })?;
    let report = &outcome.report;

    if let Some(path) = &args.export_map {
        let map = engine::UidMap::new(db.pool().clone(), report.job_id.clone());
        let text = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            map.export_json().await
        } else {
            map.export_csv().await
        }
        .map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }

    let seconds = started.elapsed().as_secs_f64();
    if args.dry_run && !args.json {
        println!("Folder plan (dry run, nothing changed):");
        for p in &outcome.planned {
            println!(
                "  {:<40} -> {:<40} {:>7} messages, {:>7} to copy ({}{})",
                p.plan.source.map_key(),
                p.plan.target_display(),
                p.messages,
                p.messages.saturating_sub(p.already_mapped),
                p.plan.reason,
                if p.plan.target_exists {
                    ""
                } else {
                    ", will be created"
                }
            );
        }
        for left_out in &report.left_out {
            println!("  left out: {left_out}");
        }
        for renamed in &report.renamed {
            println!("  renamed: {renamed}");
        }
    }
    if args.json {
        let out = JsonResult {
            ok: report.is_complete() && report.stopped.is_none(),
            job_id: &report.job_id,
            copied: report.copied,
            already_present: report.already_present,
            skipped: report.skipped,
            failed: report.failed,
            flags_updated: report.flags_updated,
            bytes_copied: report.bytes_copied,
            seconds,
            skipped_messages: &report.skipped_messages,
            failed_folders: &report.failed_folders,
            stopped: report.stopped.as_deref(),
            error: None,
            resume_at: None,
            label_policy: &report.label_policy,
            label_copies: report.label_copies,
            altered: &report.altered,
            left_out: &report.left_out,
            renamed: &report.renamed,
            memory_budget_bytes: Some(settings.budget.capacity()),
            peak_bytes_in_flight: Some(engine::copy::budget::process_peak()),
        };
        println!(
            "{}",
            serde_json::to_string(&out).map_err(|e| e.to_string())?
        );
    } else if !args.dry_run {
        println!(
            "{} copied, {} already present, {} skipped, {} failed, {} flag updates; {:.1} MB in {:.1} s (job {})",
            report.copied,
            report.already_present,
            report.skipped,
            report.failed,
            report.flags_updated,
            report.bytes_copied as f64 / 1e6,
            seconds,
            report.job_id
        );
        for note in &report.label_policy {
            println!("  labels: {note}");
        }
        for note in &report.altered {
            println!("  altered: {note}");
        }
        for note in &report.renamed {
            println!("  renamed: {note}");
        }
        for s in &report.skipped_messages {
            println!(
                "  skipped: {} UID {} ({} bytes, subject {:?}): {}",
                s.folder,
                s.uid,
                s.size.unwrap_or(0),
                s.subject.as_deref().unwrap_or(""),
                s.reason
            );
        }
        for f in &report.failed_folders {
            println!(
                "  failed folder: {} ({} messages): {}",
                f.folder, f.messages, f.error
            );
        }
        if let Some(reason) = &report.stopped {
            println!("  stopped: {reason}");
        }
    }
    let _ = std::io::stdout().flush();
    Ok(if report.stopped.is_some() {
        ExitCode::from(EXIT_STOPPED)
    } else if !report.is_complete() {
        ExitCode::from(EXIT_INCOMPLETE)
    } else {
        ExitCode::SUCCESS
    })
}

/// A one-line progress display on stderr, redrawn a few times a second.
async fn progress_task(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>, show: bool) {
    let (mut total, mut copied, mut skipped, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut last = Instant::now();
    let start = Instant::now();
    while let Some(event) = rx.recv().await {
        match &event {
            Event::FolderPlanned { to_copy, .. } => total += to_copy,
            Event::MessageCopied { bytes: b, .. } => {
                copied += 1;
                bytes += b;
            }
            Event::MessageSkipped { .. } => skipped += 1,
            Event::FolderFailed { folder, error } if show => {
                eprintln!("\rfolder {folder} failed: {error}");
            }
            Event::Waiting {
                side, words, until, ..
            } if show => {
                let at = engine::retry::wait::hh_mm(*until);
                eprintln!(
                    "\rwaiting: the {side} server said \"{words}\"; trying again at {at} UTC"
                );
            }
            _ => {}
        }
        let finished = matches!(event, Event::Finished { .. });
        if show && (finished || last.elapsed() > Duration::from_millis(200)) {
            last = Instant::now();
            let done = copied + skipped;
            let width = 30usize;
            let filled = (done.min(total) * width as u64)
                .checked_div(total)
                .map_or(width, |f| f as usize);
            let secs = start.elapsed().as_secs_f64().max(0.001);
            eprint!(
                "\r[{}{}] {done}/{total} messages, {:.1} MB, {:.0} msg/s{}",
                "#".repeat(filled),
                "-".repeat(width - filled),
                bytes as f64 / 1e6,
                copied as f64 / secs,
                if skipped > 0 {
                    format!(", {skipped} skipped")
                } else {
                    String::new()
                }
            );
            if finished {
                eprintln!();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn private(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn migrate_args(words: &[&str]) -> MigrateArgs {
        use clap::Parser;
        let mut all = vec!["mailferry", "migrate"];
        all.extend_from_slice(words);
        match crate::cli::Cli::try_parse_from(all).unwrap().command {
            crate::cli::Command::Migrate(args) => *args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_token_file_is_trimmed_and_must_be_private_and_one_word() {
        let dir = tempfile::tempdir().unwrap();
        let good = private(dir.path(), "t", "  eyJ.abc-_~+/=\r\n");
        assert_eq!(
            read_token(Side::Target, &good).unwrap().expose(),
            "eyJ.abc-_~+/="
        );
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_token(Side::Target, &good).unwrap_err();
        assert!(err.contains("chmod 600") && err.contains("target"), "{err}");
        assert!(!err.contains("eyJ"), "{err}");
        let empty = private(dir.path(), "e", "\n");
        assert!(read_token(Side::Source, &empty)
            .unwrap_err()
            .contains("empty"));
        let two = private(dir.path(), "two", "Bearer eyJ\n");
        assert!(read_token(Side::Source, &two)
            .unwrap_err()
            .contains("only the access token"));
    }

    #[test]
    fn profiles_name_the_server_and_a_consent_profile_asks_for_a_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = private(dir.path(), "secret", "s3cret\n");
        let config_file = private(
            dir.path(),
            "mailferry.toml",
            &format!(
                "[servers.old]\nhost = 'imap.old.example'\nport = 1993\n\
                 [servers.m365]\nauth = 'oauth2'\n[servers.m365.oauth]\nprovider = 'microsoft'\n\
                 tenant = 'tenant-guid'\nclient_id = 'app'\nclient_secret_file = '{}'\n",
                secret.display()
            ),
        );
        let config = Config::load(Some(&config_file), &ServeArgs::default()).unwrap();
        let plan = |words: &[&str], side: Side| {
            let args = migrate_args(words);
            plan_side(&SideArgs::of(side, &args), &args, &config).map(|p| p.endpoint)
        };
        // A bare user name with a password profile: the profile's server, the user's password.
        let pw = private(dir.path(), "pw", "pw\n");
        let source = plan(
            &[
                "--from-profile",
                "old",
                "--from",
                "alice",
                "--from-password-file",
                pw.to_str().unwrap(),
                "--to",
                "imaps://a@h",
            ],
            Side::Source,
        )
        .unwrap();
        assert_eq!(
            (source.host.as_str(), source.port, source.user.as_str()),
            ("imap.old.example", 1993, "alice")
        );
        assert_eq!(source.auth, Auth::Login);
        // A URL must name the profile's own server.
        let err = plan(
            &[
                "--from-profile",
                "old",
                "--from",
                "imaps://alice@elsewhere:993",
                "--from-password-file",
                pw.to_str().unwrap(),
                "--to",
                "x",
            ],
            Side::Source,
        )
        .unwrap_err();
        assert!(
            err.contains("server profile old is imap.old.example:1993"),
            "{err}"
        );
        // User consent cannot happen here: the token file is the way.
        let err = plan(
            &[
                "--from",
                "imaps://a@h",
                "--to-profile",
                "m365",
                "--to",
                "bo@example.org",
            ],
            Side::Target,
        )
        .unwrap_err();
        assert!(
            err.contains("m365") && err.contains("--to-oauth2-token-file"),
            "{err}"
        );
        // With a token file the preset's host is used and the token logs in.
        let token = private(dir.path(), "token", "tok\n");
        let target = plan(
            &[
                "--from",
                "imaps://a@h",
                "--to-profile",
                "m365",
                "--to",
                "bo@example.org",
                "--to-oauth2-token-file",
                token.to_str().unwrap(),
            ],
            Side::Target,
        )
        .unwrap();
        assert_eq!(
            (target.host.as_str(), target.port, target.user.as_str()),
            ("outlook.office365.com", 993, "bo@example.org")
        );
        assert!(matches!(target.auth, Auth::OAuth2 { .. }));
        let err = plan(
            &[
                "--from",
                "imaps://a@h",
                "--to-profile",
                "nope",
                "--to",
                "bo",
            ],
            Side::Target,
        )
        .unwrap_err();
        assert!(
            err.contains("no server profile nope") && err.contains("m365, old"),
            "{err}"
        );
        // Without a profile, --to must be a URL.
        let err = plan(&["--from", "imaps://a@h", "--to", "bo"], Side::Target).unwrap_err();
        assert!(err.contains("--to-profile"), "{err}");
    }

    #[test]
    fn account_urls_parse_with_defaults_and_escapes() {
        assert_eq!(
            parse_account_url("imaps://alice@mail.example.com").unwrap(),
            AccountUrl {
                tls: true,
                user: "alice".into(),
                host: "mail.example.com".into(),
                port: 993
            }
        );
        let u = parse_account_url("imap://bob%40example.com@127.0.0.1:1143").unwrap();
        assert_eq!(
            (u.tls, u.user.as_str(), u.port),
            (false, "bob@example.com", 1143)
        );
        let u = parse_account_url("imap://usuario1%ncc%migracion@h").unwrap();
        assert_eq!(u.user, "usuario1%ncc%migracion");
        let u = parse_account_url("imap://user*master@[::1]:143").unwrap();
        assert_eq!((u.user.as_str(), u.host.as_str()), ("user*master", "::1"));
        assert!(parse_account_url("imap://u:secret@h")
            .unwrap_err()
            .contains("MAILFERRY_FROM_PASSWORD"));
        assert!(parse_account_url("http://u@h").is_err());
    }
}
