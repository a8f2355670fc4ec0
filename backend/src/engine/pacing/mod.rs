//! Pacing: keeps each account (server profile + user) within its provider's limits, all
//! jobs and nodes together, so that the tool never trips a suspension.
//!
//! The engine asks a [`Pacer`] before it opens a connection (a slot per account: a
//! database row with a holder and an expiry renewed while the connection is open, freed
//! on close; a crashed node's slots expire), before a body fetch (bytes down, messages)
//! and before an APPEND (bytes up, messages). Usage is counted per fixed window in the
//! database with atomic upserts (`ledger`). A byte cap reached ends the run with
//! [`EngineError::Paused`] until the window ends; a messages-per-hour cap waits inside
//! the run when the wait is short.
//!
//! An account without caps has no pacer at all: no database work, nothing to measure.

mod caps;
pub mod ledger;

pub use caps::{batch_bytes, bytes_words, cap_eta, eta_note, per_window, window_of, Caps, Kind};
pub use ledger::Clock;

use super::error::{EngineError, Result, Side};
use crate::engine::imap::endpoint::Endpoint;
use sqlx::AnyPool;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a connection slot stays ours without renewal (a crashed node's slots are
/// free again after this).
pub const SLOT_LEASE: Duration = Duration::from_secs(30);
/// How often a waiting connection looks for a free slot.
const SLOT_POLL: Duration = Duration::from_millis(250);

const DAY_MS: i64 = 86_400_000;

/// The longest wait for a messages-per-hour window inside a run; a longer one pauses the
/// job (it resumes by itself when the window opens).
pub const LONGEST_HOURLY_WAIT: Duration = Duration::from_secs(10 * 60);

/// The pacing of one account in one run.
#[derive(Debug)]
pub struct Pacer {
    side: Side,
    host: String,
    /// `profile/user`: the key of the account's rows.
    account: String,
    caps: Caps,
    pool: AnyPool,
    clock: Clock,
    /// This run's name in slot rows.
    holder: String,
    /// The longest wait for a messages-per-hour window inside the run; longer pauses the job.
    max_wait: Duration,
    /// The newest window this pacer has counted in, per kind (older windows of that kind
    /// are forgotten once a new one starts).
    newest_window: [AtomicI64; 3],
}

impl Pacer {
    /// The pacer of an account, or `None` when its caps are all off (then pacing costs
    /// nothing). `holder` names this run in slot rows (node and job).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        side: Side,
        host: String,
        account: String,
        caps: Caps,
        pool: AnyPool,
        clock: Clock,
        holder: String,
        max_wait: Duration,
    ) -> Option<Arc<Pacer>> {
        if caps.is_unlimited() {
            return None;
        }
        Some(Arc::new(Pacer {
            side,
            host,
            account,
            caps,
            pool,
            clock,
            holder,
            max_wait,
            newest_window: std::array::from_fn(|_| AtomicI64::new(i64::MIN)),
        }))
    }

    async fn now_ms(&self) -> Result<i64> {
        Ok(ledger::now_ms(&self.pool, self.clock).await?)
    }

    /// Waits for a free connection slot of the account (none needed without a cap).
    pub async fn connection_slot(self: &Arc<Self>) -> Result<Option<Slot>> {
        let Some(cap) = self.caps.connections else {
            return Ok(None);
        };
        let mut waiting_since = None;
        loop {
            let now = self.now_ms().await?;
            let expires = now + SLOT_LEASE.as_millis() as i64;
            for number in 0..cap.max(1) {
                if ledger::take_slot(
                    &self.pool,
                    &self.account,
                    number,
                    &self.holder,
                    now,
                    expires,
                )
                .await?
                {
                    if let Some(since) = waiting_since {
                        tracing::info!(account = %self.account, waited_ms = (now - since) as u64, "connection slot free");
                    }
                    return Ok(Some(Slot::new(self.clone(), number)));
                }
            }
            if waiting_since.is_none() {
                tracing::info!(account = %self.account, cap, "all connections of the account in use; waiting for one");
                waiting_since = Some(now);
            }
            tokio::time::sleep(SLOT_POLL).await;
        }
    }

    /// Counts `amount` of `kind` into the current window unless that goes past `cap`.
    /// `Ok(None)` when counted, `Ok(Some(window end))` when the window is full.
    async fn take(
        &self,
        kind: Kind,
        amount: u64,
        cap: u64,
        window: Duration,
    ) -> Result<Option<i64>> {
        let now = self.now_ms().await?;
        let (start, end) = window_of(now, window);
        let newest = self.newest_window[kind as usize].fetch_max(start, Ordering::Relaxed);
        if newest < start {
            // A day of history (at least the window before) stays; older counts go.
            let kept = (window.as_millis() as i64).max(DAY_MS);
            ledger::forget_before(&self.pool, &self.account, kind.as_str(), start - kept).await?;
        }
        if ledger::add_within(&self.pool, &self.account, kind.as_str(), start, amount, cap).await? {
            Ok(None)
        } else {
            Ok(Some(end))
        }
    }

    fn paused(&self, kind: Kind, cap: u64, window: Duration, until_ms: i64) -> EngineError {
        EngineError::Paused {
            side: self.side,
            host: self.host.clone(),
            reason: caps::reached_words(kind, cap, window),
            words: None,
            since: crate::clock::unix_seconds(),
            until: (until_ms + 999) / 1000,
        }
    }

    /// Bytes within the byte cap of `kind`, or the pause until the window ends.
    async fn bytes(&self, kind: Kind, cap: Option<u64>, amount: u64) -> Result<bool> {
        let Some(cap) = cap else { return Ok(true) };
        Ok(self
            .take(kind, amount, cap, self.caps.window)
            .await?
            .is_none())
    }

    fn bytes_paused(&self, kind: Kind, cap: Option<u64>) -> impl Fn(i64) -> EngineError + '_ {
        move |end| self.paused(kind, cap.unwrap_or(0), self.caps.window, end)
    }

    /// Messages within the hourly cap: waits for the next hour when that is soon enough,
    /// else pauses.
    async fn messages(&self, count: u64) -> Result<()> {
        let Some(cap) = self.caps.messages_per_hour else {
            return Ok(());
        };
        loop {
            let Some(end) = self.take(Kind::Messages, count, cap, caps::HOUR).await? else {
                return Ok(());
            };
            let wait = Duration::from_millis((end - self.now_ms().await?).max(0) as u64 + 50);
            if wait > self.max_wait {
                return Err(self.paused(Kind::Messages, cap, caps::HOUR, end));
            }
            tracing::info!(account = %self.account, wait_ms = wait.as_millis() as u64, "hourly message cap reached; waiting for the next hour");
            tokio::time::sleep(wait).await;
        }
    }

    /// Before fetching bodies of `sizes` bytes from this (source) account: all or nothing.
    pub async fn before_fetch(&self, sizes: &[u64]) -> Result<()> {
        if sizes.is_empty() {
            return Ok(());
        }
        let cap = self.caps.download_bytes;
        let total: u64 = sizes.iter().sum();
        if let Some(cap_value) = cap {
            // A batch larger than the whole cap is cut to at most a twentieth of it when
            // the batches are made, unless it is a single message.
            if let Some(end) = self
                .take(Kind::Download, total, cap_value, self.caps.window)
                .await?
            {
                return Err(self.bytes_paused(Kind::Download, cap)(end));
            }
        }
        self.messages(sizes.len() as u64).await
    }

    /// Before appending messages of `sizes` bytes to this (target) account: how many of
    /// them (from the front) may go now; a pause when not even the first may.
    pub async fn before_append(&self, sizes: &[u64]) -> Result<usize> {
        let cap = self.caps.upload_bytes;
        if sizes.is_empty() || (cap.is_none() && self.caps.messages_per_hour.is_none()) {
            return Ok(sizes.len());
        }
        let total: u64 = sizes.iter().sum();
        // Only a single message larger than the whole cap may go alone into an empty window.
        let group_fits = sizes.len() == 1 || cap.is_none_or(|c| total <= c);
        let admitted = if group_fits && self.bytes(Kind::Upload, cap, total).await? {
            sizes.len()
        } else {
            // The whole group does not fit: as many as fit, one by one.
            let mut n = 0;
            let last = if group_fits {
                sizes.len() - 1
            } else {
                sizes.len()
            };
            for &size in &sizes[..last] {
                if !self.bytes(Kind::Upload, cap, size).await? {
                    break;
                }
                n += 1;
            }
            n
        };
        if admitted == 0 {
            let now = self.now_ms().await?;
            let (_, end) = window_of(now, self.caps.window);
            return Err(self.bytes_paused(Kind::Upload, cap)(end));
        }
        self.messages(admitted as u64).await?;
        Ok(admitted)
    }
}

/// A connection slot held while the connection is open: renewed in the background, freed
/// by [`Slot::release`] (or, failing that, when dropped).
#[derive(Debug)]
pub struct Slot {
    pacer: Arc<Pacer>,
    number: u32,
    renewer: tokio::task::JoinHandle<()>,
    released: bool,
}

impl Slot {
    fn new(pacer: Arc<Pacer>, number: u32) -> Slot {
        let renewing = pacer.clone();
        let renewer = tokio::spawn(async move {
            let every = SLOT_LEASE / 3;
            loop {
                tokio::time::sleep(every).await;
                let renewed = async {
                    let now = renewing.now_ms().await?;
                    let until = now + SLOT_LEASE.as_millis() as i64;
                    Ok::<_, EngineError>(
                        ledger::renew_slot(
                            &renewing.pool,
                            &renewing.account,
                            number,
                            &renewing.holder,
                            until,
                        )
                        .await?,
                    )
                }
                .await;
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(account = %renewing.account, slot = number, "connection slot expired before renewal");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot renew a connection slot"),
                }
            }
        });
        Slot {
            pacer,
            number,
            renewer,
            released: false,
        }
    }

    pub fn number(&self) -> u32 {
        self.number
    }

    /// Frees the slot now (after the connection is closed).
    pub async fn release(mut self) {
        self.renewer.abort();
        self.released = true;
        let p = &self.pacer;
        if let Err(e) = ledger::release_slot(&p.pool, &p.account, self.number, &p.holder).await {
            tracing::warn!(error = %e, "cannot free a connection slot; it expires by itself");
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released {
            return;
        }
        let pacer = self.pacer.clone();
        let number = self.number;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ =
                    ledger::release_slot(&pacer.pool, &pacer.account, number, &pacer.holder).await;
            });
        }
    }
}

/// The pacers of one run's two accounts. The default has none: no caps, no cost.
#[derive(Debug, Clone, Default)]
pub struct Pacers {
    pub source: Option<Arc<Pacer>>,
    pub target: Option<Arc<Pacer>>,
}

impl Pacers {
    /// The pacers of a run's two accounts: each side's endpoint with the account's key
    /// (`profile/user`, shared by every job and node) and caps, `None` without a server
    /// profile; no pacer for a side without caps. `holder` names the run in slot rows.
    pub fn new(
        pool: &AnyPool,
        clock: Clock,
        holder: &str,
        source: (&Endpoint, Option<(String, Caps)>),
        target: (&Endpoint, Option<(String, Caps)>),
    ) -> Pacers {
        let pacer = |(endpoint, account): (&Endpoint, Option<(String, Caps)>)| {
            let (account, caps) = account?;
            Pacer::new(
                endpoint.side,
                endpoint.address(),
                account,
                caps,
                pool.clone(),
                clock,
                holder.to_owned(),
                LONGEST_HOURLY_WAIT,
            )
        };
        Pacers {
            source: pacer(source),
            target: pacer(target),
        }
    }

    /// The byte caps that bound a run's time left (bytes per window): the source's
    /// download, the target's upload.
    pub fn byte_caps(&self) -> impl Iterator<Item = (u64, Duration)> + '_ {
        let cap = |pacer: &Option<Arc<Pacer>>, bytes: fn(&Caps) -> Option<u64>| {
            pacer
                .as_ref()
                .and_then(|p| Some((bytes(&p.caps)?, p.caps.window)))
        };
        [
            cap(&self.source, |c| c.download_bytes),
            cap(&self.target, |c| c.upload_bytes),
        ]
        .into_iter()
        .flatten()
    }

    pub fn of(&self, side: Side) -> Option<Arc<Pacer>> {
        match side {
            Side::Source => self.source.clone(),
            Side::Target => self.target.clone(),
        }
    }

    /// The largest message the target's profile takes.
    pub fn target_max_message(&self) -> Option<u64> {
        self.target.as_ref().and_then(|p| p.caps.max_message)
    }

    /// The batch size to use instead of `wanted` so a window's last batch wastes little.
    pub fn batch_bytes(&self, wanted: u64) -> u64 {
        batch_bytes(
            wanted,
            &[
                self.source.as_ref().and_then(|p| p.caps.download_bytes),
                self.target.as_ref().and_then(|p| p.caps.upload_bytes),
            ],
        )
    }

    /// Before a body fetch of messages of `sizes` bytes from the source.
    pub async fn before_fetch(&self, sizes: impl IntoIterator<Item = u64>) -> Result<()> {
        match &self.source {
            Some(p) => p.before_fetch(&sizes.into_iter().collect::<Vec<_>>()).await,
            None => Ok(()),
        }
    }

    /// Before an APPEND of messages of `sizes` bytes: how many (from the front) may go.
    pub async fn before_append(&self, sizes: impl IntoIterator<Item = u64>) -> Result<usize> {
        match &self.target {
            Some(p) => {
                p.before_append(&sizes.into_iter().collect::<Vec<_>>())
                    .await
            }
            None => Ok(sizes.into_iter().count()),
        }
    }
}

#[cfg(test)]
mod tests;
