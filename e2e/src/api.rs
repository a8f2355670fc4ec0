//! An HTTP client for the portal's API with a cookie jar (one per simulated browser).
//! It keeps every response body it saw, so a test can prove that no password was ever
//! sent back.

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<String>>>,
}

/// Whether `text` holds `secret` as written or as JSON (and `{:?}`) would escape it: a
/// password with a `"` or `\` in it appears escaped in an API answer or a log line.
pub fn contains_secret(text: &str, secret: &str) -> bool {
    let escaped = serde_json::to_string(secret).expect("a string serialises");
    text.contains(secret) || text.contains(escaped.trim_matches('"'))
}

/// A response: status and body text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("unexpected answer ({}): {}", self.status, self.body))
    }
}

impl Api {
    /// A fresh "browser" for the portal at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("HTTP client"),
            seen: Arc::default(),
        }
    }

    /// A "browser" for the portal at `base` sharing `client`'s cookies (e.g. with an
    /// [`crate::oauth_agent::Agent`] that walked through a provider's sign-in).
    pub fn with_client(base: &str, client: reqwest::Client) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            client,
            seen: Arc::default(),
        }
    }

    /// The same "browser" (cookies, recorded bodies) talking to another node at `base`.
    pub fn at(&self, base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            ..self.clone()
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn record(&self, body: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(body.to_owned());
    }

    /// Every body received so far, joined.
    pub fn everything_seen(&self) -> String {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        let response = self.client.get(self.url(path)).send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        self.record(&body);
        Ok(Answer { status, body })
    }

    /// The portal's origin (`http://127.0.0.1:PORT`), as a browser on its pages sends it.
    pub fn origin(&self) -> String {
        match self.base.find("://") {
            Some(scheme_end) => match self.base[scheme_end + 3..].find('/') {
                Some(slash) => self.base[..scheme_end + 3 + slash].to_owned(),
                None => self.base.clone(),
            },
            None => self.base.clone(),
        }
    }

    /// POST as the portal's own page would send it (with its `Origin`).
    pub async fn post<B: Serialize>(&self, path: &str, body: &B) -> anyhow::Result<Answer> {
        self.post_with_origin(path, body, Some(&self.origin()))
            .await
    }

    /// POST with the given `Origin` header, or none at all.
    pub async fn post_with_origin<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        origin: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        self.send(reqwest::Method::POST, path, Some(body), &headers)
            .await
    }

    /// DELETE as the portal's own page would send it (e.g. sign-out: `/api/session`).
    pub async fn delete(&self, path: &str) -> anyhow::Result<Answer> {
        let origin = self.origin();
        self.send::<()>(reqwest::Method::DELETE, path, None, &[("Origin", &origin)])
            .await
    }

    /// Any request with exactly these extra headers (no automatic `Origin`): for tests
    /// that play another web site, an old client or a rebound host name.
    pub async fn send<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        self.record(&body);
        Ok(Answer { status, body })
    }

    /// GET that must answer 200 with JSON of type `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let answer = self.get(path).await?;
        if answer.status != 200 {
            bail!("GET {path} answered {}: {}", answer.status, answer.body);
        }
        answer.json()
    }

    /// POST that must answer 200 with JSON of type `T`.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let answer = self.post(path, body).await?;
        if answer.status != 200 {
            bail!("POST {path} answered {}: {}", answer.status, answer.body);
        }
        answer.json()
    }

    /// An admin's CSV import (`import_valid_rows: false`): the import's answer.
    pub async fn import_csv(&self, csv: &str) -> anyhow::Result<mailferry_shared::ImportResult> {
        self.post_json(
            "/api/admin/import",
            &mailferry_shared::ImportRequest {
                csv: csv.to_owned(),
                import_valid_rows: false,
            },
        )
        .await
    }

    /// Waits until all `jobs` of batch `id` are settled (or `limit` passes: an error
    /// with the batch as it stands); returns the batch.
    pub async fn wait_for_batch(
        &self,
        id: &str,
        jobs: u64,
        limit: std::time::Duration,
    ) -> anyhow::Result<mailferry_shared::BatchView> {
        let started = std::time::Instant::now();
        loop {
            let view: mailferry_shared::BatchView =
                self.get_json(&format!("/api/admin/batches/{id}")).await?;
            let settled: u64 = view
                .by_status
                .iter()
                .filter(|c| c.status.is_settled())
                .map(|c| c.jobs)
                .sum();
            if settled == jobs {
                return Ok(view);
            }
            if started.elapsed() > limit {
                bail!("batch {id} not settled after {limit:?}: {view:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Signs in as staff; fails unless the portal says the session is a staff one.
    pub async fn staff_sign_in(&self, username: &str, password: &str) -> anyhow::Result<()> {
        let me: mailferry_shared::Me = self
            .post_json(
                "/api/staff/session",
                &mailferry_shared::StaffSignIn {
                    username: username.into(),
                    password: password.into(),
                },
            )
            .await?;
        if !matches!(me, mailferry_shared::Me::Staff { .. }) {
            bail!("signed in as {me:?}, not as staff");
        }
        Ok(())
    }

    /// Signs in on route `default` with a (user, password) for each server; fails unless
    /// both servers accepted theirs. Returns the portal's answer.
    pub async fn user_sign_in(
        &self,
        source: (&str, &str),
        target: (&str, &str),
    ) -> anyhow::Result<mailferry_shared::SignInResult> {
        let result: mailferry_shared::SignInResult = self
            .post_json(
                "/api/session",
                &mailferry_shared::SignInRequest {
                    route: "default".into(),
                    source_user: source.0.into(),
                    source_password: source.1.into(),
                    target_user: target.0.into(),
                    target_password: target.1.into(),
                },
            )
            .await?;
        if !(result.source.ok && result.target.ok) {
            bail!("sign-in refused: {result:?}");
        }
        Ok(result)
    }

    /// Opens a server-sent-events stream (optionally resuming after `last_event_id`).
    pub async fn events(
        &self,
        path: &str,
        last_event_id: Option<i64>,
    ) -> anyhow::Result<SseStream> {
        let mut request = self
            .client
            .get(self.url(path))
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await?;
        if response.status() != 200 {
            let status = response.status();
            bail!("GET {path} answered {status}: {}", response.text().await?);
        }
        Ok(SseStream {
            response,
            buffer: String::new(),
            seen: self.seen.clone(),
        })
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl SseStream {
    /// The next event (comments and keep-alives skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        has_data = true;
                    }
                }
                if has_data {
                    self.seen
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(event.data.clone());
                    return Ok(Some(event));
                }
                continue;
            }
            match self.response.chunk().await? {
                Some(bytes) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                None => return Ok(None),
            }
        }
    }
}
