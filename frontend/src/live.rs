//! Live progress of one job over server-sent events.
//!
//! The stream's first event (`snapshot`) is the whole `JobView`; each later `job` event is
//! one entry of the job's log. Counts come straight from progress events; status and folder
//! events make us fetch the whole view again, because they change more than one field.
//! The browser's `EventSource` reconnects by itself (sending `Last-Event-ID`, so nothing is
//! missed); when it gives up (an HTTP error), we open a new one a little later.

use crate::api::{self, ApiResult, Failure};
use leptos::prelude::*;
use leptos::task::spawn_local;
use mailferry_shared::{JobEvent, JobEventKind, JobStatus, JobView, ProgressPoint};
use send_wrapper::SendWrapper;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

/// How far back the throughput chart looks, in seconds.
pub const CHART_WINDOW: i64 = 30 * 60;
/// While copying, how often the whole view (with per-folder numbers) is fetched again.
const FOLDER_REFRESH: Duration = Duration::from_secs(4);
/// After the browser gave up on the stream, how long to wait before opening a new one.
const REOPEN_AFTER: Duration = Duration::from_secs(5);

/// Whose job the page follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSource {
    /// The signed-in user's own job.
    Mine,
    /// Any job, for the helpdesk.
    Staff(String),
}

impl JobSource {
    fn events_url(&self) -> String {
        match self {
            JobSource::Mine => "/api/my/job/events".into(),
            JobSource::Staff(id) => format!("{}/events", api::job_url(id)),
        }
    }

    async fn history(&self) -> ApiResult<Vec<ProgressPoint>> {
        match self {
            JobSource::Mine => api::my_history().await,
            JobSource::Staff(id) => api::job_history(id).await,
        }
    }

    async fn fetch(&self) -> ApiResult<JobView> {
        match self {
            JobSource::Mine => api::my_job().await,
            JobSource::Staff(id) => api::job_detail(id).await.map(|detail| detail.job),
        }
    }
}

/// The state of the live connection, for the small note next to the progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    Reconnecting,
}

/// One point of the throughput chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSample {
    /// Unix seconds.
    pub at: i64,
    /// Messages per second.
    pub rate: f64,
}

/// Everything a page shows live about a job. Cheap to copy into closures.
#[derive(Clone, Copy)]
pub struct LiveJob {
    pub job: RwSignal<Option<JobView>>,
    pub connection: RwSignal<Connection>,
    pub samples: RwSignal<Vec<RateSample>>,
    /// The job's log without progress events (they are many and only move the numbers).
    pub log: RwSignal<Vec<JobEvent>>,
    /// Bumped when the list of skipped messages may have changed.
    pub skipped_changed: RwSignal<u64>,
    /// The last failed fetch of the job (e.g. 401 once the session is gone).
    pub failure: RwSignal<Option<Failure>>,
    refetch: StoredValue<SendWrapper<Rc<dyn Fn()>>>,
}

impl LiveJob {
    /// Fetches the whole view again now (e.g. after an action).
    pub fn refresh(&self) {
        self.refetch.try_with_value(|refetch| refetch());
    }

    /// Adds log entries loaded with the page, keeping the log in order without repeats.
    pub fn seed_log(&self, events: Vec<JobEvent>) {
        self.log.update(|log| {
            log.extend(events.into_iter().filter(|e| !is_progress(e)));
            log.sort_by_key(|e| e.seq);
            log.dedup_by_key(|e| e.seq);
        });
    }
}

fn is_progress(event: &JobEvent) -> bool {
    matches!(event.kind, JobEventKind::Progress { .. })
}

/// The pieces that live as long as the page: the open stream and its callbacks.
struct Stream {
    source: EventSource,
    _callbacks: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

struct Inner {
    source: JobSource,
    live: LiveJob,
    stream: RefCell<Option<Stream>>,
    disposed: Cell<bool>,
    fetching: Cell<bool>,
    fetch_again: Cell<bool>,
}

/// Starts following a job; everything stops when the calling component goes away.
pub fn follow(source: JobSource) -> LiveJob {
    let inner_slot: Rc<RefCell<Option<Rc<Inner>>>> = Rc::new(RefCell::new(None));
    let refetch: Rc<dyn Fn()> = {
        let slot = inner_slot.clone();
        Rc::new(move || {
            if let Some(inner) = slot.borrow().clone() {
                fetch(inner);
            }
        })
    };
    let live = LiveJob {
        job: RwSignal::new(None),
        connection: RwSignal::new(Connection::Connecting),
        samples: RwSignal::new(Vec::new()),
        log: RwSignal::new(Vec::new()),
        skipped_changed: RwSignal::new(0),
        failure: RwSignal::new(None),
        refetch: StoredValue::new(SendWrapper::new(refetch)),
    };
    let inner = Rc::new(Inner {
        source,
        live,
        stream: RefCell::new(None),
        disposed: Cell::new(false),
        fetching: Cell::new(false),
        fetch_again: Cell::new(false),
    });
    *inner_slot.borrow_mut() = Some(inner.clone());
    open(inner.clone());
    // The run so far, from the store: the chart is drawn also for a page opened mid-run
    // or afterwards.
    {
        let inner = inner.clone();
        spawn_local(async move {
            if let Ok(points) = inner.source.history().await {
                if !inner.disposed.get() {
                    seed_samples(inner.live, &points);
                }
            }
        });
    }

    // Progress events carry only the totals: refresh the folder bars now and then.
    let ticker = {
        let inner = inner.clone();
        set_interval_with_handle(
            move || {
                let copying = inner
                    .live
                    .job
                    .try_with_untracked(|job| {
                        job.as_ref().is_some_and(|j| j.status == JobStatus::Copying)
                    })
                    .unwrap_or(false);
                if copying {
                    fetch(inner.clone());
                }
            },
            FOLDER_REFRESH,
        )
        .ok()
    };

    let cleanup = SendWrapper::new(move || {
        inner.disposed.set(true);
        if let Some(stream) = inner.stream.borrow_mut().take() {
            stream.source.close();
        }
        inner_slot.borrow_mut().take();
        if let Some(ticker) = ticker {
            ticker.clear();
        }
    });
    on_cleanup(move || cleanup.take()());
    live
}

fn open(inner: Rc<Inner>) {
    if inner.disposed.get() {
        return;
    }
    let Ok(source) = EventSource::new(&inner.source.events_url()) else {
        inner.live.connection.try_set(Connection::Reconnecting);
        return;
    };
    let mut callbacks = Vec::new();
    let mut listen = |name: &str, handler: Box<dyn FnMut(web_sys::Event)>| {
        let callback = Closure::wrap(handler);
        let _ = source.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref());
        callbacks.push(callback);
    };
    {
        let inner = inner.clone();
        listen(
            "snapshot",
            Box::new(move |event| {
                if let Some(view) = message_json::<JobView>(&event) {
                    on_snapshot(&inner, view);
                }
            }),
        );
    }
    {
        let inner = inner.clone();
        listen(
            "job",
            Box::new(move |event| {
                if let Some(job_event) = message_json::<JobEvent>(&event) {
                    on_event(&inner, job_event);
                }
            }),
        );
    }
    {
        let inner = inner.clone();
        listen("error", Box::new(move |_| on_error(inner.clone())));
    }
    *inner.stream.borrow_mut() = Some(Stream {
        source,
        _callbacks: callbacks,
    });
}

fn message_json<T: serde::de::DeserializeOwned>(event: &web_sys::Event) -> Option<T> {
    let data = event.dyn_ref::<MessageEvent>()?.data().as_string()?;
    serde_json::from_str(&data).ok()
}

fn on_snapshot(inner: &Inner, view: JobView) {
    let live = inner.live;
    if view.status == JobStatus::Copying {
        push_sample(
            live,
            RateSample {
                at: view.updated_at,
                rate: view.rate_messages,
            },
        );
    }
    live.job.try_set(Some(view));
    live.connection.try_set(Connection::Live);
    live.failure.try_set(None);
    live.skipped_changed.try_update(|n| *n += 1);
}

fn on_event(inner: &Rc<Inner>, event: JobEvent) {
    let live = inner.live;
    let mut refetch = false;
    match &event.kind {
        JobEventKind::Progress {
            counts,
            rate_messages,
            rate_bytes,
        } => {
            live.job.try_update(|job| {
                if let Some(job) = job {
                    job.counts = *counts;
                    job.rate_messages = *rate_messages;
                    job.rate_bytes = *rate_bytes;
                    let rated = eta(counts.messages_total, counts.messages_done, *rate_messages);
                    // A provider's byte cap (eta_note) bounds the time left from below.
                    job.eta_seconds = match (job.eta_note.is_some(), job.eta_seconds) {
                        (true, Some(capped)) => Some(rated.map_or(capped, |r| r.max(capped))),
                        _ => rated,
                    };
                    job.updated_at = job.updated_at.max(event.at);
                }
            });
            push_sample(
                live,
                RateSample {
                    at: event.at,
                    rate: *rate_messages,
                },
            );
        }
        JobEventKind::Status { status, reason } => {
            live.job.try_update(|job| {
                if let Some(job) = job {
                    job.status = *status;
                    job.status_reason = reason.clone();
                }
            });
            if status.is_settled() {
                live.skipped_changed.try_update(|n| *n += 1);
            }
            refetch = true;
        }
        JobEventKind::MessageSkipped { .. } => {
            live.job.try_update(|job| {
                if let Some(job) = job {
                    job.skipped += 1;
                }
            });
            live.skipped_changed.try_update(|n| *n += 1);
        }
        JobEventKind::FolderPlanned { .. }
        | JobEventKind::FolderDone { .. }
        | JobEventKind::FolderFailed { .. } => refetch = true,
        JobEventKind::Waiting { .. } | JobEventKind::Note { .. } | JobEventKind::Action { .. } => {}
    }
    if !is_progress(&event) {
        live.log.try_update(|log| {
            if log.last().is_none_or(|last| last.seq < event.seq) {
                log.push(event);
            }
        });
    }
    if refetch {
        fetch(inner.clone());
    }
}

fn eta(total: u64, done: u64, rate: f64) -> Option<u64> {
    (rate > 0.0 && total > done).then(|| ((total - done) as f64 / rate).ceil() as u64)
}

/// Samples closer together than this are merged (the newest counts): the chart keeps
/// about one point per this many seconds, however often progress arrives.
const SAMPLE_SPACING: i64 = 5;

fn push_sample(live: LiveJob, sample: RateSample) {
    live.samples.try_update(|samples| {
        match samples.as_slice() {
            [.., last] if last.at > sample.at => return,
            [.., before, _] if sample.at - before.at < SAMPLE_SPACING => {
                *samples.last_mut().expect("two samples") = sample;
            }
            [.., last] if last.at == sample.at => *samples.last_mut().expect("one") = sample,
            _ => samples.push(sample),
        }
        let oldest = sample.at - CHART_WINDOW;
        samples.retain(|s| s.at >= oldest);
    });
}

/// Puts the stored history before what the live stream brought meanwhile.
fn seed_samples(live: LiveJob, points: &[ProgressPoint]) {
    live.samples.try_update(|samples| {
        let first_live = samples.first().map_or(i64::MAX, |s| s.at);
        let mut merged: Vec<RateSample> = points
            .iter()
            .filter(|p| p.at < first_live)
            .map(|p| RateSample {
                at: p.at,
                rate: p.rate_messages,
            })
            .collect();
        merged.append(samples);
        if let Some(newest) = merged.last().map(|s| s.at) {
            merged.retain(|s| s.at >= newest - CHART_WINDOW);
        }
        *samples = merged;
    });
}

fn on_error(inner: Rc<Inner>) {
    let state = inner
        .stream
        .borrow()
        .as_ref()
        .map(|s| s.source.ready_state());
    inner.live.connection.try_set(Connection::Reconnecting);
    // A fetch tells us whether the session is gone (401) and keeps the numbers fresh.
    fetch(inner.clone());
    if state == Some(EventSource::CLOSED) {
        // The browser gave up (an HTTP error answer): try again ourselves, later.
        let stream = inner.stream.borrow_mut().take();
        if let Some(stream) = &stream {
            stream.source.close();
        }
        // The old callbacks (one of them is running now) are dropped only later.
        set_timeout(
            move || {
                drop(stream);
                open(inner);
            },
            REOPEN_AFTER,
        );
    }
}

/// Fetches the whole view; calls made while one is running are folded into one more.
fn fetch(inner: Rc<Inner>) {
    if inner.disposed.get() {
        return;
    }
    if inner.fetching.replace(true) {
        inner.fetch_again.set(true);
        return;
    }
    spawn_local(async move {
        loop {
            inner.fetch_again.set(false);
            let result = inner.source.fetch().await;
            if inner.disposed.get() {
                break;
            }
            match result {
                Ok(view) => {
                    inner.live.job.try_set(Some(view));
                    inner.live.failure.try_set(None);
                }
                Err(failure) => {
                    inner.live.failure.try_set(Some(failure));
                }
            }
            if !inner.fetch_again.get() {
                break;
            }
        }
        inner.fetching.set(false);
    });
}
