//! The helpdesk's view of every job: a filterable table, the detail with the event log
//! and skipped messages, live progress, the UID map export, and actions (each audited).

use super::auth::{AdminAuth, StaffAuth};
use super::error::ApiFailure;
use super::events;
use super::AppState;
use crate::jobs::JobFilter;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use mailferry_shared::{JobDetail, JobPage, JobStatus, JobView, RouteInfo, StaffAccount};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/helpdesk/jobs", get(list))
        .route("/helpdesk/jobs/{id}", get(detail))
        .route("/helpdesk/jobs/{id}/events", get(stream))
        .route("/helpdesk/jobs/{id}/history", get(history))
        .route("/helpdesk/jobs/{id}/uid-map.csv", get(uid_map_csv))
        .route("/helpdesk/jobs/{id}/uid-map.json", get(uid_map_json))
        .route("/helpdesk/jobs/{id}/retry-skipped", post(retry_skipped))
        .route("/helpdesk/jobs/{id}/cancel", post(cancel))
        .route("/helpdesk/jobs/{id}/sync", post(sync_now))
        .route("/admin/routes", get(admin_routes))
        .route("/admin/staff", get(admin_staff))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    route: Option<String>,
    q: Option<String>,
    batch: Option<String>,
    sort: Option<String>,
    #[serde(default)]
    desc: bool,
    #[serde(default)]
    page: u64,
    per_page: Option<u64>,
}

async fn list(
    State(state): State<AppState>,
    _staff: StaffAuth,
    Query(query): Query<ListQuery>,
) -> Result<Json<JobPage>, ApiFailure> {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => Some(
            JobStatus::parse(text)
                .ok_or_else(|| ApiFailure::BadRequest(format!("Unknown status {text:?}.")))?,
        ),
        None => None,
    };
    let filter = JobFilter {
        status,
        route: query.route.filter(|r| !r.is_empty()),
        text: query.q,
        batch: query.batch.filter(|b| !b.is_empty()),
        sort: query.sort.filter(|s| !s.is_empty()),
        descending: query.desc,
        page: query.page,
        per_page: query.per_page.unwrap_or(50),
    };
    Ok(Json(state.store.list(&filter).await?))
}

/// The job's progress over time (404 for a job that does not exist).
async fn history(
    State(state): State<AppState>,
    _staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<Json<Vec<mailferry_shared::ProgressPoint>>, ApiFailure> {
    state.store.view(&id).await?;
    Ok(Json(state.store.history(&id).await?))
}

async fn detail(
    State(state): State<AppState>,
    _staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, ApiFailure> {
    let job = state.store.view(&id).await?;
    let events = state.store.events_after(&id, 0, 10_000).await?;
    let skipped_messages = state.store.skipped_messages(&id).await?;
    let runs = state.store.runs(&id).await?;
    Ok(Json(JobDetail {
        job,
        events,
        skipped_messages,
        runs,
    }))
}

async fn stream(
    State(state): State<AppState>,
    _staff: StaffAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiFailure> {
    events::stream(state, id, &headers).await
}

async fn uid_map_csv(
    State(state): State<AppState>,
    staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    export_uid_map(&state, &staff, &id, false).await
}

async fn uid_map_json(
    State(state): State<AppState>,
    staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    export_uid_map(&state, &staff, &id, true).await
}

/// The UID map as a download (CSV or JSON), audited.
async fn export_uid_map(
    state: &AppState,
    staff: &StaffAuth,
    id: &str,
    json: bool,
) -> Result<impl IntoResponse, ApiFailure> {
    state.store.view(id).await?;
    let body = state
        .store
        .export_uid_map(id, json)
        .await
        .map_err(|e| ApiFailure::Internal(e.into()))?;
    let (extension, content_type) = if json {
        ("json", "application/json")
    } else {
        ("csv", "text/csv; charset=utf-8")
    };
    state
        .store
        .audit(&staff.username, "export_uid_map", Some(id), extension)
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"uid-map-{id}.{extension}\""),
            ),
        ],
        body,
    ))
}

/// A pass can only run with the passwords stored.
async fn ensure_passwords_stored(state: &AppState, id: &str) -> Result<(), ApiFailure> {
    if state.store.has_credentials(id).await? {
        Ok(())
    } else {
        Err(ApiFailure::Conflict(
            "This job's passwords are no longer stored; the user must sign in again (or use a \
             route with a master user)."
                .into(),
        ))
    }
}

/// Queues a pass, logging who did it in the job's log and the audit log.
async fn queue_and_log(
    state: &AppState,
    staff: &StaffAuth,
    id: &str,
    action: &str,
) -> Result<(), ApiFailure> {
    state.store.queue(id).await?;
    state.store.log_action(id, &staff.username, action).await?;
    state
        .store
        .audit(&staff.username, action, Some(id), "")
        .await?;
    Ok(())
}

async fn retry_skipped(
    State(state): State<AppState>,
    staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiFailure> {
    // Refuse before forgetting anything: a job that cannot run keeps its skipped list.
    if state.store.view(&id).await?.status.is_active() {
        return Err(ApiFailure::Conflict(
            "This job is running; retry its skipped messages once it has finished.".into(),
        ));
    }
    ensure_passwords_stored(&state, &id).await?;
    let cleared = state.store.clear_skipped(&id).await?;
    queue_and_log(
        &state,
        &staff,
        &id,
        &format!("retry {cleared} skipped messages"),
    )
    .await?;
    Ok(Json(state.store.view(&id).await?))
}

async fn sync_now(
    State(state): State<AppState>,
    staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiFailure> {
    // Also answers 404 for an unknown job.
    ensure_passwords_stored(&state, &id).await?;
    queue_and_log(&state, &staff, &id, "sync now").await?;
    Ok(Json(state.store.view(&id).await?))
}

async fn cancel(
    State(state): State<AppState>,
    staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiFailure> {
    state.store.view(&id).await?;
    state
        .store
        .log_action(&id, &staff.username, "cancelled")
        .await?;
    state
        .store
        .audit(&staff.username, "cancel", Some(&id), "")
        .await?;
    state.store.cancel(&id).await?;
    Ok(Json(state.store.view(&id).await?))
}

async fn admin_routes(State(state): State<AppState>, _admin: AdminAuth) -> Json<Vec<RouteInfo>> {
    Json(state.routes.infos())
}

async fn admin_staff(
    State(state): State<AppState>,
    _admin: AdminAuth,
) -> Result<Json<Vec<StaffAccount>>, ApiFailure> {
    let staff = crate::staff::list(state.db.pool())
        .await
        .map_err(|e| ApiFailure::Internal(e.into()))?;
    Ok(Json(
        staff
            .into_iter()
            .map(|(username, role)| StaffAccount { username, role })
            .collect(),
    ))
}
