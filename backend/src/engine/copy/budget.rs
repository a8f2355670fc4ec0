//! The node's budget for message bytes in flight: fetched from a source and not yet
//! appended to a target, all jobs and folders of the process together. A batch's listed
//! sizes (`RFC822.SIZE`) are reserved before it is fetched and given back when its APPENDs
//! are done. A message larger than the whole budget is still copied: it waits until it
//! can have the whole budget alone.
//!
//! Reservations are counted in KiB (rounded up) on a fair semaphore, so a large one that
//! waits is not overtaken by a stream of small ones. Nothing holds a reservation while it
//! waits for another: a batch being appended needs none, so every wait ends.

use super::fetch::SourceMessage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default budget: 64 MiB of message bytes in flight per node.
pub const DEFAULT_BUDGET_BYTES: u64 = 64 << 20;

/// The smallest budget accepted (anything lower is raised to it).
const MIN_BUDGET_KIB: u64 = 64;

/// Listed bytes reserved now from any budget of this process, and the most at any time:
/// with one budget per node (as it must be) this never passes that budget, except by one
/// message larger than it alone; budgets made per job would show here.
static PROCESS_IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static PROCESS_PEAK: AtomicU64 = AtomicU64::new(0);

/// The most listed message bytes reserved at once in this process, all budgets together.
pub fn process_peak() -> u64 {
    PROCESS_PEAK.load(Ordering::Relaxed)
}

/// A budget of message bytes in flight, shared by cloning (one per node or process).
#[derive(Clone)]
pub struct ByteBudget {
    inner: Arc<Inner>,
}

struct Inner {
    permits: Arc<Semaphore>,
    /// The budget, in KiB.
    capacity_kib: u64,
    /// Listed bytes of the messages reserved now, and the most at any time.
    in_flight: AtomicU64,
    peak: AtomicU64,
}

impl std::fmt::Debug for ByteBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteBudget")
            .field("capacity", &self.capacity())
            .field("in_flight", &self.in_flight())
            .field("peak", &self.peak())
            .finish()
    }
}

impl Default for ByteBudget {
    fn default() -> Self {
        ByteBudget::new(DEFAULT_BUDGET_BYTES)
    }
}

impl ByteBudget {
    /// A budget of `bytes` (at least 64 KiB; at most what a semaphore counts).
    pub fn new(bytes: u64) -> Self {
        let capacity_kib = bytes
            .div_ceil(1024)
            .clamp(MIN_BUDGET_KIB, u64::from(u32::MAX));
        ByteBudget {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(capacity_kib as usize)),
                capacity_kib,
                in_flight: AtomicU64::new(0),
                peak: AtomicU64::new(0),
            }),
        }
    }

    /// The budget in bytes.
    pub fn capacity(&self) -> u64 {
        self.inner.capacity_kib * 1024
    }

    /// Listed bytes of the messages in flight now.
    pub fn in_flight(&self) -> u64 {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// The most listed bytes in flight at any time since this budget was made.
    pub fn peak(&self) -> u64 {
        self.inner.peak.load(Ordering::Relaxed)
    }

    /// Waits until messages of `bytes` listed bytes may be fetched, and reserves them
    /// until the returned reservation is dropped. More than the whole budget waits for
    /// the whole budget (then nothing else is in flight).
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let kib = bytes.div_ceil(1024).clamp(1, self.inner.capacity_kib);
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_many_owned(kib as u32)
            .await
            .ok();
        let now = self.inner.in_flight.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.inner.peak.fetch_max(now, Ordering::Relaxed);
        let all = PROCESS_IN_FLIGHT.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PROCESS_PEAK.fetch_max(all, Ordering::Relaxed);
        Reservation {
            budget: self.clone(),
            bytes,
            _permit: permit,
        }
    }
}

/// Splits messages into batches of at most `max_messages` and `max_bytes` listed bytes,
/// and never more than the budget: a batch the budget cannot hold would wait forever. A
/// message larger than either is a batch of its own.
pub fn batches(
    messages: Vec<SourceMessage>,
    max_messages: usize,
    max_bytes: u64,
    budget: &ByteBudget,
) -> Vec<Vec<SourceMessage>> {
    let max_bytes = max_bytes.min(budget.capacity());
    let max_messages = max_messages.max(1);
    let mut out: Vec<Vec<SourceMessage>> = Vec::new();
    let mut current: Vec<SourceMessage> = Vec::new();
    let mut bytes = 0u64;
    for m in messages {
        if !current.is_empty()
            && (current.len() >= max_messages || bytes.saturating_add(m.size) > max_bytes)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes = bytes.saturating_add(m.size);
        current.push(m);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Bytes reserved from a [`ByteBudget`]; given back when dropped.
pub struct Reservation {
    budget: ByteBudget,
    bytes: u64,
    /// `None` only if the semaphore were closed, which it never is.
    _permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reservation({} bytes)", self.bytes)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget
            .inner
            .in_flight
            .fetch_sub(self.bytes, Ordering::Relaxed);
        PROCESS_IN_FLIGHT.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn no_batch_is_larger_than_the_budget_unless_it_is_one_message() {
        let budget = ByteBudget::new(1 << 20);
        let msg = |uid, size| SourceMessage {
            uid,
            flags: Vec::new(),
            internal_date: String::new(),
            size,
        };
        let sizes = [400 << 10, 400 << 10, 400 << 10, 3 << 20, 10, 10];
        let messages = sizes.iter().zip(1..).map(|(&s, u)| msg(u, s)).collect();
        let got: Vec<Vec<u32>> = batches(messages, 100, 16 << 20, &budget)
            .into_iter()
            .map(|b| b.into_iter().map(|m| m.uid).collect())
            .collect();
        assert_eq!(got, vec![vec![1, 2], vec![3], vec![4], vec![5, 6]]);
    }

    #[tokio::test]
    async fn reservations_wait_for_room_and_give_it_back() {
        let budget = ByteBudget::new(1 << 20);
        let a = budget.reserve(600 << 10).await;
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(600 << 10).await.bytes() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "over the budget: it must wait");
        assert_eq!(budget.in_flight(), 600 << 10);
        drop(a);
        assert_eq!(waiting.await.unwrap(), 600 << 10);
        assert_eq!(budget.peak(), 600 << 10);
        assert_eq!(budget.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_waits_to_be_alone_and_then_goes() {
        let budget = ByteBudget::new(1 << 20);
        let small = budget.reserve(10 << 10).await;
        let big = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(3 << 20).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!big.is_finished());
        // Fair: a small one asking after the large one does not overtake it.
        let later = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(10 << 10).await.bytes() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!later.is_finished());
        drop(small);
        let big = big.await.unwrap();
        assert_eq!(budget.in_flight(), 3 << 20);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!later.is_finished(), "nothing beside the large one");
        drop(big);
        assert_eq!(later.await.unwrap(), 10 << 10);
        assert_eq!(budget.peak(), 3 << 20);
    }
}
