//! The admin's CSV import: a preview with every bad row explained, then one batch of jobs,
//! queued at once, with its own progress.

use super::auth::AdminAuth;
use super::error::ApiFailure;
use super::AppState;
use crate::import::{parse_users_csv, ImportContext, ImportRoute, Parsed};
use crate::jobs::{random_id, BatchJob, Credentials, NewBatch};
use crate::oauth::AuthKind;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use mailferry_shared::{
    AccountSide, BatchView, ImportPreview, ImportRequest, ImportResult, JobStatus, StatusCount,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/import/preview", post(preview))
        .route("/admin/import", post(import))
        .route("/admin/batches/{id}", get(batch))
}

fn context(state: &AppState) -> Result<ImportContext, ApiFailure> {
    let routes = state.routes.names().map(|name| {
        let mut route = ImportRoute::new(name);
        // No password column is needed where a master login or the organisation's app
        // copies, nor where the user signs in with an OAuth provider (the job then waits
        // for that sign-in).
        let no_password = |side| state.routes.auth_kind(name, side) != Some(AuthKind::Password);
        if no_password(AccountSide::Source) {
            route = route.with_source_master_user();
        }
        if no_password(AccountSide::Target) {
            route = route.with_target_master_user();
        }
        route
    });
    // With a single route, the context makes it the default for rows that name none.
    let ctx = ImportContext::new(routes)
        .map_err(|e| ApiFailure::Conflict(format!("Users cannot be imported yet: {e}")))?;
    Ok(ctx)
}

fn parse(state: &AppState, request: &ImportRequest) -> Result<Parsed, ApiFailure> {
    Ok(parse_users_csv(request.csv.as_bytes(), &context(state)?))
}

async fn preview(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Json(request): Json<ImportRequest>,
) -> Result<Json<ImportPreview>, ApiFailure> {
    Ok(Json(parse(&state, &request)?.preview()))
}

async fn import(
    State(state): State<AppState>,
    AdminAuth(admin): AdminAuth,
    Json(request): Json<ImportRequest>,
) -> Result<Json<ImportResult>, ApiFailure> {
    let parsed = parse(&state, &request)?;
    let preview = parsed.preview();
    if parsed.users.is_empty() || (!parsed.is_clean() && !request.import_valid_rows) {
        return Ok(Json(ImportResult {
            preview,
            batch: None,
        }));
    }
    let batch_id = format!("batch-{}", &random_id()[..16]);
    let mut jobs = Vec::with_capacity(parsed.users.len());
    for user in &parsed.users {
        // The job key is built from the name as the server compares it, so that a row
        // and a sign-in (or another import) for the same mailbox share one job.
        let source_user = state.routes.normalize_user(
            &user.route,
            AccountSide::Source,
            user.source_user.as_str(),
        );
        let target_user = state.routes.normalize_user(
            &user.route,
            AccountSide::Target,
            user.target_user.as_str(),
        );
        let endpoints = (
            state
                .routes
                .account_key(&user.route, AccountSide::Source, &source_user),
            state
                .routes
                .account_key(&user.route, AccountSide::Target, &target_user),
        );
        let (Some(source), Some(target)) = endpoints else {
            return Err(ApiFailure::Conflict(format!(
                "The route {:?} disappeared from the configuration during the import.",
                user.route
            )));
        };
        let password = |p: &Option<crate::engine::Password>| {
            p.as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default()
        };
        jobs.push(BatchJob {
            source_account: source,
            target_account: target,
            route: user.route.clone(),
            source_user,
            target_user,
            credentials: Credentials {
                source_password: password(&user.source_password),
                target_password: password(&user.target_password),
                source_tokens: None,
                target_tokens: None,
            },
        });
    }
    let batch = NewBatch {
        id: batch_id.clone(),
        created_by: admin.username.clone(),
        file_name: "upload.csv".into(),
    };
    // One transaction: a failure on any row leaves no batch and no job behind.
    state
        .store
        .import_batch(&state.vault, &batch, &jobs)
        .await?;
    state
        .store
        .audit(
            &admin.username,
            "import",
            None,
            &format!("{batch_id}: {} users", parsed.users.len()),
        )
        .await?;
    let batch = batch_view(&state, &batch_id).await?;
    Ok(Json(ImportResult {
        preview,
        batch: Some(batch),
    }))
}

async fn batch_view(state: &AppState, id: &str) -> Result<BatchView, ApiFailure> {
    let pool = state.db.pool();
    let row: Option<(String, i64, String, i64)> =
        sqlx::query_as("SELECT id, created_at, created_by, jobs FROM batches WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(|e| ApiFailure::Internal(e.into()))?;
    let Some((id, created_at, created_by, jobs)) = row else {
        return Err(ApiFailure::NotFound(
            "There is no such import batch.".into(),
        ));
    };
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM jobs WHERE batch_id = $1 GROUP BY status ORDER BY status",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(|e| ApiFailure::Internal(e.into()))?;
    Ok(BatchView {
        id,
        created_at,
        created_by,
        jobs: jobs as u64,
        by_status: counts
            .into_iter()
            .filter_map(|(status, n)| {
                JobStatus::parse(&status).map(|status| StatusCount {
                    status,
                    jobs: n as u64,
                })
            })
            .collect(),
    })
}

async fn batch(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<BatchView>, ApiFailure> {
    Ok(Json(batch_view(&state, &id).await?))
}
