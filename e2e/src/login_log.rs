//! Reads IMAP sessions out of a private Dovecot's log, to check from the server's side how
//! many mailboxes a migration tool had open at once.
//!
//! Dovecot logs `imap-login: Info: Login: user=<U>, ..., session=<S>` when a session
//! starts and `imap(U)<pid><S>: Info: Logged out ...` (or `Disconnected ...`) when it
//! ends. Its log process writes lines in the order it receives them, so the line order
//! is the order of events.

use std::collections::{BTreeMap, HashMap};

/// One IMAP session: who, and between which log lines (`end` is `None` while open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub id: String,
    pub start: usize,
    pub end: Option<usize>,
}

fn between<'a>(line: &'a str, open: &str, close: char) -> Option<&'a str> {
    let from = line.find(open)? + open.len();
    let len = line[from..].find(close)?;
    Some(&line[from..from + len])
}

/// Every session in `log`, in the order they started.
pub fn sessions(log: &str) -> Vec<Session> {
    let mut found: Vec<Session> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for (n, line) in log.lines().enumerate() {
        if line.contains("imap-login: ") && line.contains(" Login: user=<") {
            if let (Some(user), Some(id)) = (
                between(line, "Login: user=<", '>'),
                between(line, "session=<", '>'),
            ) {
                open.insert(id.to_owned(), found.len());
                found.push(Session {
                    user: user.to_owned(),
                    id: id.to_owned(),
                    start: n,
                    end: None,
                });
            }
            continue;
        }
        let ended = line.contains("Logged out")
            || line.contains("Disconnected")
            || line.contains("Connection closed");
        if !ended {
            continue;
        }
        // `imap(user)<pid><session>: ...`
        if let Some(rest) = line.find("imap(").map(|i| &line[i..]) {
            let id = rest
                .split('<')
                .nth(2)
                .and_then(|s| s.split('>').next())
                .unwrap_or("");
            if let Some(index) = open.remove(id) {
                found[index].end = Some(n);
            }
        }
    }
    found
}

/// The largest number of distinct users with a session open at the same moment, and the
/// largest number of sessions one user had open at once.
pub fn peak_concurrency(sessions: &[Session]) -> (usize, usize) {
    // Events by line: +1 at the start, -1 after the end.
    let mut changes: BTreeMap<usize, Vec<(&str, i64)>> = BTreeMap::new();
    for s in sessions {
        changes.entry(s.start).or_default().push((&s.user, 1));
        if let Some(end) = s.end {
            changes.entry(end).or_default().push((&s.user, -1));
        }
    }
    let mut per_user: HashMap<&str, i64> = HashMap::new();
    let (mut peak_users, mut peak_sessions) = (0, 0);
    for (_, events) in changes {
        for (user, delta) in events {
            let n = per_user.entry(user).or_default();
            *n += delta;
            peak_sessions = peak_sessions.max(*n as usize);
        }
        per_user.retain(|_, n| *n > 0);
        peak_users = peak_users.max(per_user.len());
    }
    (peak_users, peak_sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Nov 23 10:00:00 imap-login: Info: Login: user=<a>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=10, TLS, session=<s1>
Nov 23 10:00:00 imap-login: Info: Login: user=<b>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=11, TLS, session=<s2>
Nov 23 10:00:00 imap-login: Info: Login: user=<a>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=12, TLS, session=<s3>
Nov 23 10:00:01 imap(a)<10><s1>: Info: Logged out in=10 out=20
Nov 23 10:00:01 imap(b)<11><s2>: Info: Disconnected: Connection closed (UID FETCH finished 0.1 secs ago) in=1 out=2
Nov 23 10:00:01 imap-login: Info: Login: user=<c>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=13, TLS, session=<s4>
Nov 23 10:00:02 imap(a)<12><s3>: Info: Logged out in=10 out=20
";

    #[test]
    fn sessions_and_peaks_are_read_from_the_log() {
        let s = sessions(LOG);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].user, "a");
        assert_eq!(s[0].end, Some(3));
        assert_eq!(s[3].user, "c");
        assert_eq!(s[3].end, None);
        // a and b together (a twice), then a and c.
        assert_eq!(peak_concurrency(&s), (2, 2));
    }
}
