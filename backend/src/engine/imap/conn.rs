//! A connection that comes back: holds the endpoint, reconnects with backoff after a
//! drop, and re-selects the folder it had open, so callers just ask for a session.
//!
//! It also logs in again before an OAuth 2.0 access token expires (some servers, Exchange
//! Online among them, cut sessions whose token has expired): [`Conn::session`], called
//! between commands, replaces a session whose token is due for renewal. A session is
//! borrowed for the whole of a command (pipelined or not), so a renewal never comes in
//! the middle of one.

use super::endpoint::Endpoint;
use super::name::WireName;
use super::session::{MailboxInfo, Session};
use crate::engine::error::{EngineError, Result};
use crate::engine::limits::Limits;
use crate::engine::pacing::{Pacer, Slot};
use crate::engine::retry::{Patience, Waiter};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How hard to try to get a connection back: `attempts` quick tries, `first_delay`
/// doubling up to `max_delay` apart; after them the connection's patience decides (see
/// [`crate::engine::retry`]), and the run pauses once it is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 6,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
pub struct Conn {
    endpoint: Endpoint,
    backoff: Backoff,
    limits: Limits,
    session: Option<Session>,
    /// The folder to have open (wire name, read-only) after a reconnect.
    want_selected: Option<(WireName, bool)>,
    selected: Option<(WireName, bool)>,
    /// The UIDVALIDITY the wanted folder had when [`Conn::select`] opened it: a re-select
    /// after a reconnect must find the same, or the UIDs in hand name other messages.
    opened_validity: Option<u32>,
    pub mailbox: MailboxInfo,
    /// The account's pacing, and the connection slot held while connected.
    pacer: Option<Arc<Pacer>>,
    slot: Option<Slot>,
    /// How to wait out transient refusals (throttling, a busy server).
    waiter: Waiter,
    /// When this connection last waited out a refusal: a connection dropped soon after
    /// is part of the throttling, not a sign the server is gone.
    last_wait: Option<Instant>,
}

impl Conn {
    pub fn new(endpoint: Endpoint, backoff: Backoff, limits: Limits) -> Self {
        Conn {
            endpoint,
            backoff,
            limits,
            session: None,
            want_selected: None,
            selected: None,
            opened_validity: None,
            mailbox: MailboxInfo::default(),
            pacer: None,
            slot: None,
            waiter: Waiter::default(),
            last_wait: None,
        }
    }

    /// Paces this connection by its account's caps (a connection slot while connected).
    pub fn paced(mut self, pacer: Option<Arc<Pacer>>) -> Self {
        self.pacer = pacer;
        self
    }

    /// Waits for a connection slot of the account, unless one is held or none is needed.
    async fn take_slot(&mut self) -> Result<()> {
        if let (None, Some(pacer)) = (&self.slot, &self.pacer) {
            // Waiting for a slot is a pacing pause, not a stall.
            let _pause = self.waiter.events.pausing();
            self.slot = pacer.connection_slot().await?;
        }
        Ok(())
    }

    /// The same connection, waiting out transient refusals as `waiter` says.
    pub fn waiting(mut self, waiter: Waiter) -> Self {
        self.waiter = waiter;
        self
    }

    /// Patience for one new command on this connection.
    pub fn patience(&self) -> Patience {
        self.waiter.patience()
    }

    /// Waits out a transient refusal of a command (or returns `Paused`, patience spent).
    pub async fn wait_out(
        &mut self,
        patience: &mut Patience,
        words: &str,
        suggested: Option<Duration>,
    ) -> Result<()> {
        let host = self.endpoint.address();
        let result = self
            .waiter
            .wait_out(patience, self.endpoint.side, &host, words, suggested)
            .await;
        self.last_wait = Some(Instant::now());
        result
    }

    /// Waits out `e`, an error [`EngineError::transient`] calls a refusal for now, with
    /// the server's words and suggested wait (or returns `Paused`, patience spent).
    pub async fn wait_out_refusal(
        &mut self,
        patience: &mut Patience,
        e: &EngineError,
    ) -> Result<()> {
        let words = e.server_words().unwrap_or_default();
        self.wait_out(patience, &words, e.transient().flatten())
            .await
    }

    /// Whether this connection waited out a refusal in the last two minutes.
    pub fn recently_throttled(&self) -> bool {
        self.last_wait
            .is_some_and(|t| t.elapsed() < Duration::from_secs(120))
    }

    /// Connects now (used at the start, where a failure is fatal and must say why).
    /// A login the server refuses for now (`[UNAVAILABLE]`, throttled) is waited out.
    pub async fn connect_once(&mut self) -> Result<&mut Session> {
        if self.session.is_none() {
            self.take_slot().await?;
        }
        let mut patience = self.patience();
        while self.session.is_none() {
            match Session::connect_with(&self.endpoint, self.limits).await {
                Ok(s) => {
                    self.session = Some(s);
                    self.selected = None;
                }
                Err(e) if e.transient().is_some() => {
                    self.wait_out_refusal(&mut patience, &e).await?;
                }
                Err(e) => return Err(e),
            }
        }
        self.ready().await
    }

    /// A live session with the wanted folder selected, reconnecting as needed, and
    /// logging in again (with a freshly refreshed token) when the access token of the
    /// current session expires within its margin (see [`crate::engine::auth::Renewal`]).
    pub async fn session(&mut self) -> Result<&mut Session> {
        let mut fresh_token = false;
        if let Some(old) = self.session.take_if(|s| s.renewal_due(SystemTime::now())) {
            let left = old
                .token_expires_at()
                .and_then(|t| t.duration_since(SystemTime::now()).ok())
                .map_or(0, |d| d.as_millis());
            tracing::debug!(
                side = %self.endpoint.side,
                host = %old.host(),
                expires_in_ms = left as u64,
                "access token expires soon; logging in again with a new one"
            );
            old.logout().await;
            self.selected = None;
            fresh_token = true;
        }
        if self.session.is_none() {
            self.take_slot().await?;
            let mut delay = self.backoff.first_delay;
            let mut attempt = 0;
            let mut patience = self.patience();
            loop {
                attempt += 1;
                let connected = if fresh_token {
                    Session::connect_with_fresh_token(&self.endpoint, self.limits).await
                } else {
                    Session::connect_with(&self.endpoint, self.limits).await
                };
                match connected {
                    Ok(s) => {
                        self.session = Some(s);
                        self.selected = None;
                        break;
                    }
                    Err(e) if e.transient().is_some() => {
                        // Refused for now (a busy or throttling server): not a password
                        // problem and not a lost server; wait as long as patience allows.
                        self.wait_out_refusal(&mut patience, &e).await?;
                    }
                    Err(e) if e.is_hostile() && attempt < 2 => {
                        tracing::warn!(side = %self.endpoint.side, error = %e, "reconnect failed, trying once more");
                        tokio::time::sleep(delay).await;
                    }
                    Err(e) if e.is_connection_failure() && !e.is_hostile() => {
                        if attempt < self.backoff.attempts {
                            tracing::warn!(side = %self.endpoint.side, error = %e, attempt, "reconnect failed, backing off");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(self.backoff.max_delay);
                        } else {
                            // Still unreachable after the quick tries: wait as long as
                            // patience allows (told to the listeners), then pause the run.
                            let host = self.endpoint.address();
                            self.waiter
                                .wait_out_unreachable(
                                    &mut patience,
                                    self.endpoint.side,
                                    &host,
                                    &e.to_string(),
                                )
                                .await?;
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.ready().await
    }

    async fn ready(&mut self) -> Result<&mut Session> {
        if self.want_selected != self.selected {
            if let Some((name, ro)) = self.want_selected.clone() {
                let session = self.session.as_mut().ok_or_else(|| lost(&self.endpoint))?;
                match session.select(&name, ro).await {
                    Ok(info) => {
                        let now = info.uidvalidity;
                        self.mailbox = info;
                        self.selected = Some((name.clone(), ro));
                        if let Some(was) = self.opened_validity.filter(|was| *was != now) {
                            tracing::warn!(side = %self.endpoint.side, folder = %name, was, now, "UIDVALIDITY changed across a reconnect");
                            return Err(EngineError::UidValidityChanged {
                                side: self.endpoint.side,
                                host: self.endpoint.address(),
                                folder: name.to_string(),
                                was,
                                now,
                            });
                        }
                    }
                    Err(e) => {
                        if e.is_connection_failure() {
                            self.session = None;
                        }
                        return Err(e);
                    }
                }
            }
        }
        self.session.as_mut().ok_or_else(|| lost(&self.endpoint))
    }

    /// Opens a folder (and keeps it open across reconnects: each re-select checks that its
    /// UIDVALIDITY is still the one seen here, else [`EngineError::UidValidityChanged`]).
    pub async fn select(&mut self, wire: impl AsRef<[u8]>, read_only: bool) -> Result<MailboxInfo> {
        self.want_selected = Some((WireName::new(wire.as_ref()), read_only));
        self.selected = None;
        self.opened_validity = None;
        self.session().await?;
        self.opened_validity = Some(self.mailbox.uidvalidity);
        Ok(self.mailbox.clone())
    }

    /// The folder kept open, opened again in another mode (read-only or not); its
    /// UIDVALIDITY must still be the one [`Conn::select`] saw.
    pub async fn reopen(&mut self, read_only: bool) -> Result<MailboxInfo> {
        if let Some((wire, _)) = self.want_selected.clone() {
            self.want_selected = Some((wire, read_only));
            self.session().await?;
        }
        Ok(self.mailbox.clone())
    }

    /// The folder this connection keeps open (wire name, read-only).
    pub fn selected_folder(&self) -> Option<(WireName, bool)> {
        self.want_selected.clone()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets the session after an error that killed it.
    pub fn note_error(&mut self, e: &EngineError) {
        if e.is_connection_failure() {
            self.session = None;
            self.selected = None;
        }
    }

    pub async fn close(&mut self) {
        if let Some(s) = self.session.take() {
            s.logout().await;
        }
        if let Some(slot) = self.slot.take() {
            slot.release().await;
        }
    }
}

fn lost(endpoint: &Endpoint) -> EngineError {
    EngineError::ConnectionLost {
        side: endpoint.side,
        host: endpoint.address(),
        message: "no session".into(),
    }
}
