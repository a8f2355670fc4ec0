//! One place that reads a server's refusal (tagged NO or BAD): its status, response code
//! and words, and the kind of command refused, decide whether it concerns one message,
//! is a passing condition worth waiting out, or stops the whole job. The providers'
//! real wordings are in the tests (see shared PROVIDERS.md and QUIRKS.md).

use super::super::auth::login::says_not_connected;
use crate::engine::imap::wire::Status;
use std::time::Duration;

/// The kind of command that was refused: the same words mean different things to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Fetch,
    Append,
    Login,
    Select,
    Store,
    Other,
}

/// What a refusal means for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This message cannot be taken (too large, invalid): skip it with the server's words.
    PerMessage,
    /// The server is busy or throttling: wait (at least `suggested` when it said) and send
    /// the same command again.
    Transient { suggested: Option<Duration> },
    /// The whole job cannot go on (mailbox full, authentication).
    PerJob,
    /// None of these: the caller's own rule decides (a BAD fetch form, an unknown NO).
    Unclassified,
}

/// Classifies a tagged refusal. `code` is the response code without brackets, `text` the
/// words after it.
pub fn classify(status: Status, code: Option<&str>, text: &str, kind: CommandKind) -> Refusal {
    if status == Status::Ok {
        return Refusal::Unclassified;
    }
    let code = code.map(str::to_ascii_uppercase);
    let code = code.as_deref();
    let words = text.to_ascii_lowercase();
    let suggested = suggested_wait(&words);
    let transient = Refusal::Transient { suggested };

    // Gmail's bandwidth/command limit reuses OVERQUOTA: it passes, the mailbox is not full.
    if code == Some("OVERQUOTA") {
        return if mentions_rate(&words) {
            transient
        } else {
            Refusal::PerJob
        };
    }
    if matches!(code, Some("UNAVAILABLE" | "INUSE")) || mentions_busy(&words) {
        return transient;
    }
    if code == Some("LIMIT") {
        return if mentions_size(&words) {
            Refusal::PerMessage
        } else if mentions_rate(&words) || kind != CommandKind::Append {
            transient
        } else {
            Refusal::PerMessage
        };
    }
    if matches!(
        code,
        Some("AUTHENTICATIONFAILED" | "AUTHORIZATIONFAILED" | "EXPIRED" | "PRIVACYREQUIRED")
    ) || says_not_connected(&words)
    {
        return Refusal::PerJob;
    }
    if code == Some("TOOBIG") || mentions_size(&words) {
        return Refusal::PerMessage;
    }
    if words.contains("quota")
        || words.contains("mailbox is full")
        || words.contains("mailbox full")
    {
        return Refusal::PerJob;
    }
    if kind == CommandKind::Login {
        return Refusal::PerJob;
    }
    if matches!(kind, CommandKind::Append | CommandKind::Store) && words.contains("invalid") {
        return Refusal::PerMessage;
    }
    Refusal::Unclassified
}

/// The server asks to slow down or is busy for now.
fn mentions_busy(words: &str) -> bool {
    [
        "throttl",
        "server unavailable",
        "temporarily unavailable",
        "service unavailable",
        "try again",
        "temporary failure",
        "too many",
        "suggested backoff",
        "rate limit",
        "busy",
    ]
    .iter()
    .any(|w| words.contains(w))
}

/// Limits on how often or how much, not on one message's size.
fn mentions_rate(words: &str) -> bool {
    mentions_busy(words)
        || [
            "bandwidth",
            "command limit",
            "commands",
            "per hour",
            "per day",
            "per minute",
        ]
        .iter()
        .any(|w| words.contains(w))
}

fn mentions_size(words: &str) -> bool {
    [
        "too large",
        "too big",
        "message size",
        "mail size",
        "size exceeds",
        "exceeds the maximum",
        "message is larger",
    ]
    .iter()
    .any(|w| words.contains(w))
}

/// Microsoft's `Suggested Backoff Time: 299961 milliseconds`, or `try again in N seconds`.
fn suggested_wait(words: &str) -> Option<Duration> {
    ["backoff time", "try again in"].iter().find_map(|lead| {
        let at = words.find(lead)?;
        Some(duration_named(&words[at + lead.len()..]))
    })?
}

/// The first number in `rest` (after `:` or spaces) and the unit word after it
/// (milliseconds when unnamed, as Microsoft's wording is).
fn duration_named(rest: &str) -> Option<Duration> {
    let rest = rest.trim_start_matches(|c: char| c == ':' || c.is_whitespace());
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let unit = rest[digits.len()..].trim_start();
    Some(if unit.starts_with("ms") || unit.starts_with("milli") {
        Duration::from_millis(n)
    } else if unit.starts_with("min") {
        Duration::from_secs(n.saturating_mul(60))
    } else if unit.starts_with('s') {
        Duration::from_secs(n)
    } else {
        Duration::from_millis(n)
    })
}

#[cfg(test)]
mod tests {
    use super::CommandKind::*;
    use super::*;

    fn no(code: Option<&str>, text: &str, kind: CommandKind) -> Refusal {
        classify(Status::No, code, text, kind)
    }

    fn waits(r: Refusal) -> Option<Duration> {
        match r {
            Refusal::Transient { suggested } => suggested,
            other => panic!("not transient: {other:?}"),
        }
    }

    #[test]
    fn microsoft_throttling_is_transient_with_its_suggested_wait() {
        let text = "Request is throttled. Suggested Backoff Time: 299961 milliseconds";
        for kind in [Fetch, Append, Login, Select, Other] {
            assert_eq!(
                waits(no(None, text, kind)),
                Some(Duration::from_millis(299_961))
            );
            let bad = classify(Status::Bad, None, text, kind);
            assert_eq!(waits(bad), Some(Duration::from_millis(299_961)));
        }
        assert_eq!(
            waits(no(
                None,
                "Request is throttled. Suggested Backoff Time: 1500 milliseconds",
                Fetch
            )),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn server_unavailable_and_busy_codes_are_transient_without_a_wait() {
        // The "15" of Exchange's wording is not a number of seconds.
        assert_eq!(waits(no(None, "Server Unavailable. 15", Fetch)), None);
        assert_eq!(waits(no(Some("UNAVAILABLE"), "Try later", Login)), None);
        assert_eq!(waits(no(Some("INUSE"), "Mailbox in use", Select)), None);
        assert_eq!(
            waits(no(None, "Too many concurrent connections", Login)),
            None
        );
        assert_eq!(
            waits(no(
                None,
                "Temporary failure, try again in 30 seconds",
                Append
            )),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn gmail_bandwidth_overquota_is_not_a_full_mailbox() {
        let gmail = "Account exceeded command or bandwidth limits";
        assert!(matches!(
            no(Some("OVERQUOTA"), gmail, Append),
            Refusal::Transient { .. }
        ));
        assert!(matches!(
            no(Some("OVERQUOTA"), gmail, Fetch),
            Refusal::Transient { .. }
        ));
        // Dovecot's and Exchange's full mailbox: the job stops.
        assert_eq!(
            no(
                Some("OVERQUOTA"),
                "Quota exceeded (mailbox for user is full)",
                Append
            ),
            Refusal::PerJob
        );
        assert_eq!(no(None, "Mailbox is full", Append), Refusal::PerJob);
        assert_eq!(no(None, "Quota exceeded", Append), Refusal::PerJob);
    }

    #[test]
    fn size_limits_concern_one_message() {
        assert_eq!(
            no(
                Some("LIMIT"),
                "Mail size is too large (max 500000 bytes)",
                Append
            ),
            Refusal::PerMessage
        );
        assert_eq!(
            no(Some("TOOBIG"), "Message too big", Append),
            Refusal::PerMessage
        );
        assert_eq!(
            no(None, "APPEND failed: message too large", Append),
            Refusal::PerMessage
        );
        assert_eq!(
            no(None, "Invalid message: bare NUL", Append),
            Refusal::PerMessage
        );
        // A LIMIT about the rate is not about this message.
        assert!(matches!(
            no(Some("LIMIT"), "Too many commands per minute", Append),
            Refusal::Transient { .. }
        ));
        assert!(matches!(
            no(Some("LIMIT"), "Connection limit reached", Login),
            Refusal::Transient { .. }
        ));
    }

    #[test]
    fn authentication_refusals_stop_the_job() {
        assert_eq!(
            no(
                Some("AUTHENTICATIONFAILED"),
                "Authentication failed.",
                Login
            ),
            Refusal::PerJob
        );
        assert_eq!(no(None, "LOGIN failed.", Login), Refusal::PerJob);
        // "invalid credentials" is a login matter, not an invalid message.
        assert_eq!(no(None, "Invalid credentials", Login), Refusal::PerJob);
        assert_eq!(
            classify(
                Status::Bad,
                None,
                "User is authenticated but not connected.",
                Select
            ),
            Refusal::PerJob
        );
    }

    #[test]
    fn near_misses_stay_unclassified() {
        // A server that does not know a fetch form: the form is bad, not the server busy.
        assert_eq!(
            classify(
                Status::Bad,
                None,
                "Error in IMAP command FETCH: Unknown attribute BODY.PEEK[]",
                Fetch
            ),
            Refusal::Unclassified
        );
        assert_eq!(no(None, "Invalid messageset", Fetch), Refusal::Unclassified);
        assert_eq!(
            no(Some("TRYCREATE"), "Mailbox doesn't exist: Sent", Append),
            Refusal::Unclassified
        );
        assert_eq!(
            no(Some("CANNOT"), "Keyword not allowed: $Junk", Append),
            Refusal::Unclassified
        );
        // "Backoff" without a number: transient, but no suggested wait is made up.
        assert_eq!(
            waits(no(
                None,
                "Request is throttled. Suggested Backoff Time: soon",
                Fetch
            )),
            None
        );
        // A subject-like mention of "size" is not a size limit.
        assert_eq!(
            no(None, "Unknown command SIZE", Other),
            Refusal::Unclassified
        );
        assert_eq!(
            classify(Status::Ok, None, "throttled", Fetch),
            Refusal::Unclassified
        );
    }

    #[test]
    fn a_huge_suggested_number_is_not_believed() {
        assert_eq!(
            waits(no(
                None,
                "Suggested Backoff Time: 99999999999999999 milliseconds",
                Fetch
            )),
            None
        );
        assert_eq!(
            waits(no(None, "Suggested Backoff Time: 2 minutes", Fetch)),
            Some(Duration::from_secs(120))
        );
    }
}
