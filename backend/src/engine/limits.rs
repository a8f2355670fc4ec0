//! How much a server may make the engine hold in memory or wait for. A server is never
//! trusted with a length or a count: each has a cap here, and going past one ends the
//! command with an error that says what the server did.

use std::time::Duration;

/// Caps on what one connection accepts from its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest literal before login: a greeting or capability reply needs none at all.
    pub pre_auth_literal: u64,
    /// Largest literal in a response that is not a message body (folder names, headers).
    pub response_literal: u64,
    /// Largest message body accepted; larger messages are skipped and reported.
    pub max_message: u64,
    /// Most untagged responses to one command whose responses are handed on one by one
    /// (a UID FETCH listing sends one per message).
    pub untagged_per_command: u64,
    /// Most bytes read for such a command, message bodies not counted.
    pub bytes_per_command: u64,
    /// Most untagged responses to a command whose responses are all kept until its end
    /// (LIST, SELECT, APPEND...): these cost memory, so the caps are lower.
    pub kept_responses: u64,
    /// Most bytes read for such a command.
    pub kept_bytes: u64,
    /// Longest one command may take, however steadily the server drips; `None` means
    /// ten times the per-step timeout. Body fetches get extra time for their size.
    pub command_deadline: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pre_auth_literal: 64 << 10,
            response_literal: 8 << 20,
            max_message: 512 << 20,
            untagged_per_command: 2_000_000,
            bytes_per_command: 512 << 20,
            kept_responses: 100_000,
            kept_bytes: 32 << 20,
            command_deadline: None,
        }
    }
}

impl Limits {
    /// The largest body accepted for a message whose RFC822.SIZE is `declared`: servers
    /// count line ends differently (LF stored, CRLF sent), so twice the size plus a little
    /// is still honest; more than that is not the message that was listed.
    pub fn body_allowance(&self, declared: u64) -> u64 {
        declared
            .saturating_mul(2)
            .saturating_add(64 << 10)
            .min(self.max_message)
    }

    /// The slowest transfer rate a body fetch is given time for, in bytes per second.
    pub const SLOWEST_BODY_RATE: u64 = 64 << 10;
}

/// What one body fetch may bring: the largest single body and all bodies together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BodyBudget {
    pub largest: u64,
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_allowance_follows_the_declared_size_up_to_the_maximum() {
        let limits = Limits::default();
        assert_eq!(limits.body_allowance(1000), 2000 + (64 << 10));
        assert_eq!(limits.body_allowance(u64::MAX), 512 << 20);
    }
}
