//! Putting messages on the target: APPEND (or MULTIAPPEND for a whole batch) with flags and
//! INTERNALDATE, reading APPENDUID; without UIDPLUS, or after a lost reply, finding the new
//! messages by UIDNEXT, size and content hash (never by Message-ID).

use super::fetch::body_budget;
use crate::engine::error::{EngineError, Result};
use crate::engine::imap::session::Session;
use crate::engine::imap::wire::{
    parse_uid_set, uid_set, CommandBuilder, Status, StatusLine, Value,
};
use crate::engine::retry::{classify, CommandKind, Refusal};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// The content hash kept in the UID map: SHA-256 of the exact bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A message ready to go to the target.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub source_uid: u32,
    pub flags: Vec<String>,
    pub internal_date: &'a str,
    /// The fetched buffer itself: the APPEND's literal shares it, nothing is copied.
    pub bytes: &'a Bytes,
    pub hash: String,
}

/// What the target said to one APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendReply {
    /// Stored; the target UIDVALIDITY and UIDs when the server said (APPENDUID).
    Stored(Option<(u32, Vec<u32>)>),
    /// The folder is missing (TRYCREATE).
    TryCreate(String),
    /// Refused for this message (too large, invalid...): the server's words.
    Refused(String),
    /// Refused for now (throttled, busy): send the same messages again after the wait,
    /// at least `suggested` when the server said.
    Throttled {
        words: String,
        suggested: Option<std::time::Duration>,
    },
}

/// Sends one APPEND (one message) or one MULTIAPPEND (several).
pub async fn append(
    session: &mut Session,
    mailbox: &str,
    messages: &[Outgoing<'_>],
) -> Result<AppendReply> {
    let mut reply = session.run(append_command(mailbox, messages)).await?;
    if session.refused_nonsync_literal(&reply.done) {
        // LITERAL+ advertised but a large `{n+}` refused (Cyrus with `literalminus`): the
        // same command again, each large literal now waiting for the server's `+`.
        reply = session.run(append_command(mailbox, messages)).await?;
    }
    interpret(session, &reply.done, messages.len())
}

fn append_command(
    mailbox: &str,
    messages: &[Outgoing<'_>],
) -> Vec<crate::engine::imap::wire::Part> {
    let mut cmd = CommandBuilder::new("APPEND").string(mailbox.as_bytes());
    for m in messages {
        cmd = cmd.raw(" (").raw(&m.flags.join(" ")).raw(")");
        // An empty date: the server refused this one, so it stamps its own.
        if !m.internal_date.trim().is_empty() {
            cmd = cmd.string(date_time_arg(m.internal_date).as_bytes());
        }
        cmd = cmd.raw(" ").literal_bytes(m.bytes.clone());
    }
    cmd.build()
}

/// INTERNALDATE as APPEND's `date-time` wants it (RFC 3501): a one-digit day keeps its
/// leading space (`" 1-Feb-2020 ..."`); strict servers refuse `"1-Feb-2020 ..."`.
fn date_time_arg(internal_date: &str) -> String {
    let date = internal_date.trim();
    let one_digit_day = date.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && date.as_bytes().get(1) == Some(&b'-');
    if one_digit_day {
        format!(" {date}")
    } else {
        date.to_owned()
    }
}

/// `sent` is how many messages the command carried: an APPENDUID naming more UIDs than
/// that is not believed (and not expanded).
fn interpret(session: &Session, done: &StatusLine, sent: usize) -> Result<AppendReply> {
    match done.status {
        Status::Ok => {
            if done.code.as_deref() == Some("APPENDUID") {
                let validity = done
                    .code_args
                    .first()
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok());
                let uids = done
                    .code_args
                    .get(1)
                    .and_then(Value::as_text)
                    .and_then(|s| parse_uid_set(&s, sent));
                if let (Some(v), Some(u)) = (validity, uids) {
                    return Ok(AppendReply::Stored(Some((v, u))));
                }
            }
            Ok(AppendReply::Stored(None))
        }
        _ => {
            let code = done.code.as_deref().unwrap_or("");
            let words = done.words();
            match classify(
                done.status,
                done.code.as_deref(),
                &done.text,
                CommandKind::Append,
            ) {
                Refusal::Transient { suggested } => {
                    return Ok(AppendReply::Throttled { words, suggested })
                }
                Refusal::PerJob => {
                    if code == "OVERQUOTA" || words.to_ascii_lowercase().contains("quota") {
                        return Err(EngineError::OverQuota {
                            words: format!("{} says: {}", session.host(), words),
                        });
                    }
                    return Err(session.refused("APPEND", done));
                }
                Refusal::PerMessage | Refusal::Unclassified => {}
            }
            if code == "TRYCREATE" {
                return Ok(AppendReply::TryCreate(words));
            }
            Ok(AppendReply::Refused(words))
        }
    }
}

/// Something to find on the target after an APPEND whose UID we do not know.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub source_uid: u32,
    pub size: u64,
    pub hash: String,
}

/// Looks at the messages with UID >= `floor` in the selected target folder and matches
/// them to `wanted` by size, then content hash; `taken` UIDs belong to other messages.
/// Returns (source UID, target UID if found) for each wanted message.
pub async fn find_appended(
    session: &mut Session,
    floor: u32,
    wanted: &[Wanted],
    taken: &HashSet<u32>,
) -> Result<Vec<(u32, Option<u32>)>> {
    let mut present: Vec<(u32, u64)> = Vec::new();
    let done = session
        .uid_fetch(&format!("{}:*", floor.max(1)), "UID RFC822.SIZE", |item| {
            if let (Some(uid), Some(size)) = (item.uid, item.size) {
                present.push((uid, size));
            }
        })
        .await?;
    if done.status != Status::Ok {
        return Err(session.refused("UID FETCH (finding appended messages)", &done));
    }
    let max_uid = present.iter().map(|p| p.0).max().unwrap_or(0);
    let sizes: HashSet<u64> = wanted.iter().map(|w| w.size).collect();
    let candidates: Vec<u32> = present
        .iter()
        .filter(|(uid, size)| *uid >= floor && !taken.contains(uid) && sizes.contains(size))
        .map(|(uid, _)| *uid)
        .collect();
    tracing::debug!(
        floor,
        present = present.len(),
        max_uid,
        wanted = wanted.len(),
        candidates = candidates.len(),
        "looking for appended messages on the target"
    );
    let mut hashes: Vec<(u32, String)> = Vec::new();
    if !candidates.is_empty() {
        // Bodies as large as the messages looked for (a 35 MB message is no hostile reply).
        let chosen: HashSet<u32> = candidates.iter().copied().collect();
        let budget = body_budget(
            session.limits(),
            present
                .iter()
                .filter(|(uid, _)| chosen.contains(uid))
                .map(|(_, size)| *size),
        );
        let done = session
            .uid_fetch_bodies(
                &uid_set(&candidates),
                "UID BODY.PEEK[]",
                Some(budget),
                |item| {
                    if let (Some(uid), Some(body)) = (item.uid, item.body) {
                        hashes.push((uid, content_hash(&body)));
                    }
                },
            )
            .await?;
        if done.status != Status::Ok {
            return Err(session.refused("UID FETCH (matching appended messages)", &done));
        }
    }
    hashes.sort();
    let mut used: HashSet<u32> = HashSet::new();
    let result = wanted
        .iter()
        .map(|w| {
            let found = hashes
                .iter()
                .find(|(uid, h)| *h == w.hash && !used.contains(uid))
                .map(|(uid, _)| *uid);
            if let Some(uid) = found {
                used.insert(uid);
            }
            (w.source_uid, found)
        })
        .collect();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_digit_day_keeps_its_leading_space() {
        assert_eq!(
            date_time_arg(" 1-Feb-2020 10:00:00 +0100"),
            " 1-Feb-2020 10:00:00 +0100"
        );
        assert_eq!(
            date_time_arg("1-Feb-2020 10:00:00 +0100"),
            " 1-Feb-2020 10:00:00 +0100"
        );
        assert_eq!(
            date_time_arg("17-Jul-1996 02:44:25 -0700 "),
            "17-Jul-1996 02:44:25 -0700"
        );
        let cmd = CommandBuilder::new("APPEND")
            .string(date_time_arg(" 3-Mar-2021 01:02:03 +0000").as_bytes())
            .build();
        let wire: Vec<u8> = cmd
            .into_iter()
            .flat_map(|part| match part {
                crate::engine::imap::wire::Part::Text(bytes) => bytes,
                crate::engine::imap::wire::Part::Literal(bytes) => bytes.to_vec(),
            })
            .collect();
        assert!(
            String::from_utf8_lossy(&wire).contains("\" 3-Mar-2021 01:02:03 +0000\""),
            "{}",
            String::from_utf8_lossy(&wire)
        );
    }

    /// Everything the client writes, for a test to read afterwards.
    #[derive(Clone, Default)]
    struct Written(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl tokio::io::AsyncWrite for Written {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.0.lock().unwrap().extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_refused_large_non_synchronising_literal_is_sent_again_synchronising() {
        // The greeting advertises LITERAL+; the server refuses the `{5000+}` (as Cyrus 3.6
        // with literalminus), then takes the same message announced as `{5000}`.
        let script = b"* OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] ready\r\n\
m1 NO [TOOBIG] Literal too large\r\n\
+ go ahead\r\n\
m2 OK [APPENDUID 7 9] Append completed\r\n\
+ go ahead\r\n\
m3 OK [APPENDUID 7 10] Append completed\r\n";
        let written = Written::default();
        let stream = tokio::io::join(std::io::Cursor::new(script.to_vec()), written.clone());
        let mut s = Session::over_stream(stream, true, crate::engine::Limits::default());
        s.greet_for_test("toobig-unit-test:143").await.unwrap();
        assert!(s.large_literals_nonsync());
        let body = Bytes::from(vec![b'x'; 5000]);
        let m = Outgoing {
            source_uid: 1,
            flags: vec!["\\Seen".into()],
            internal_date: " 5-Mar-2024 10:00:00 +0100",
            bytes: &body,
            hash: content_hash(&body),
        };
        let reply = append(&mut s, "INBOX", std::slice::from_ref(&m))
            .await
            .unwrap();
        assert_eq!(reply, AppendReply::Stored(Some((7, vec![9]))));
        // Remembered: the next APPEND waits for `+` at once.
        assert!(!s.large_literals_nonsync());
        let reply = append(&mut s, "INBOX", &[m]).await.unwrap();
        assert_eq!(reply, AppendReply::Stored(Some((7, vec![10]))));
        let sent = String::from_utf8_lossy(&written.0.lock().unwrap()).into_owned();
        let heads: Vec<&str> = sent.split("\r\n").filter(|l| l.starts_with('m')).collect();
        assert_eq!(
            heads,
            vec![
                "m1 APPEND \"INBOX\" (\\Seen) \" 5-Mar-2024 10:00:00 +0100\" {5000+}",
                "m2 APPEND \"INBOX\" (\\Seen) \" 5-Mar-2024 10:00:00 +0100\" {5000}",
                "m3 APPEND \"INBOX\" (\\Seen) \" 5-Mar-2024 10:00:00 +0100\" {5000}",
            ]
        );
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
