//! What to do when a server refuses a command: `refusal` classifies the refusal (this
//! message, try again later, or the whole job), `backoff` says how long to wait, and
//! `patience` bounds how long one command is retried before the run pauses; `wait`
//! does the waiting and tells the listeners.

pub mod backoff;
pub mod patience;
pub mod refusal;
pub mod wait;

pub use backoff::RetryPolicy;
pub use patience::Patience;
pub use refusal::{classify, CommandKind, Refusal};
pub use wait::Waiter;
