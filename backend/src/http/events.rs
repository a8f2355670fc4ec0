//! Live progress as server-sent events: a snapshot of the job first, then every event of
//! its log in order. Each event's SSE id is its number in the log, so a client that
//! reconnects with `Last-Event-ID` misses nothing. Streams read the store; many watchers
//! cost the engine nothing.

use super::error::ApiFailure;
use super::AppState;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::stream::{self, Stream};
use std::convert::Infallible;
use std::time::Duration;

/// How often a stream looks at the store when nothing woke it (news from other nodes).
const POLL: Duration = Duration::from_secs(1);

pub async fn stream(
    state: AppState,
    job_id: String,
    headers: &HeaderMap,
) -> Result<impl IntoResponse, ApiFailure> {
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    // The log position is read before the snapshot, so no later event can be missed.
    let position = state.store.last_event_seq(&job_id).await?;
    let view = state.store.view(&job_id).await?;
    let mut snapshot = Event::default()
        .event("snapshot")
        .json_data(&view)
        .map_err(|e| ApiFailure::Internal(e.into()))?;
    if resume_after.is_none() {
        snapshot = snapshot.id(position.to_string());
    }
    let start = resume_after.unwrap_or(position);
    Ok(Sse::new(follow(state, job_id, snapshot, start)).keep_alive(KeepAlive::default()))
}

struct Cursor {
    state: AppState,
    job_id: String,
    last: i64,
    pending: std::collections::VecDeque<Event>,
    wake: tokio::sync::broadcast::Receiver<String>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

fn follow(
    state: AppState,
    job_id: String,
    snapshot: Event,
    start: i64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let cursor = Cursor {
        wake: state.store.notifier().subscribe(),
        shutdown: state.shutdown.clone(),
        state,
        job_id,
        last: start,
        pending: [snapshot].into(),
    };
    stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok(event), cursor));
            }
            if *cursor.shutdown.borrow() {
                return None;
            }
            match cursor
                .state
                .store
                .events_after(&cursor.job_id, cursor.last, 200)
                .await
            {
                Ok(events) if !events.is_empty() => {
                    for event in events {
                        cursor.last = event.seq;
                        match Event::default()
                            .id(event.seq.to_string())
                            .event("job")
                            .json_data(&event)
                        {
                            Ok(sse) => cursor.pending.push_back(sse),
                            Err(err) => tracing::warn!(error = %err, "cannot encode an event"),
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "live progress: cannot read the job log"),
            }
            // Nothing new: wait for news of this job, a poll tick, or shutdown.
            let job_id = cursor.job_id.clone();
            let wake = &mut cursor.wake;
            let shutdown = &mut cursor.shutdown;
            tokio::select! {
                _ = async {
                    loop {
                        match wake.recv().await {
                            Ok(id) if id == job_id => break,
                            Ok(_) => continue,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await
                            }
                        }
                    }
                } => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    })
}
