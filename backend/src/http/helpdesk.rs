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

async fn detail(
    State(state): State<AppState>,
    _staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, ApiFailure> {
    let job = state.store.view(&id).await?;
    let events = state.store.events_after(&id, 0, 10_000).await?;
    let skipped_messages = state.store.skipped_messages(&id).await?;
    Ok(Json(JobDetail {
        job,
        events,
        skipped_messages,
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
    state.store.view(&id).await?;
    let csv = state
        .store
        .export_uid_map_csv(&id)
        .await
        .map_err(|e| ApiFailure::Internal(e.into()))?;
    state
        .store
        .audit(&staff.username, "export_uid_map", Some(&id), "csv")
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"uid-map-{id}.csv\""),
            ),
        ],
        csv,
    ))
}

async fn uid_map_json(
    State(state): State<AppState>,
    staff: StaffAuth,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiFailure> {
    state.store.view(&id).await?;
    let json = state
        .store
        .export_uid_map_json(&id)
        .await
        .map_err(|e| ApiFailure::Internal(e.into()))?;
    state
        .store
        .audit(&staff.username, "export_uid_map", Some(&id), "json")
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"uid-map-{id}.json\""),
            ),
        ],
        json,
    ))
}

/// Starts a pass again (needs stored credentials), logging who did it.
async fn requeue(
    state: &AppState,
    staff: &StaffAuth,
    id: &str,
    action: &str,
) -> Result<(), ApiFailure> {
    if !state.store.has_credentials(id).await? {
        return Err(ApiFailure::Conflict(
            "This job's passwords are no longer stored; the user must sign in again (or use a \
             route with a master user)."
                .into(),
        ));
    }
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
    state.store.view(&id).await?;
    // Refuse before forgetting anything: a job that cannot run keeps its skipped list.
    if !state.store.has_credentials(&id).await? || state.store.status(&id).await?.is_active() {
        return Err(ApiFailure::Conflict(
            "This job cannot be retried now: it is running, or its passwords are no longer \
             stored (the user must sign in again)."
                .into(),
        ));
    }
    let cleared = state.store.clear_skipped(&id).await?;
    requeue(
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
    state.store.view(&id).await?;
    requeue(&state, &staff, &id, "sync now").await?;
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
