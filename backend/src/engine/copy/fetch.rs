//! Getting the exact bytes of messages from the source: `BODY.PEEK[]` first, then the
//! fallback forms when a server refuses one (remembered per server), then isolation of a
//! message that kills the connection or fails every form.
//!
//! `BINARY.PEEK[]` is the last resort and is only believed when it returns exactly the
//! listed `RFC822.SIZE`: servers answer it with the parts' content-transfer-encoding
//! undone (a base64 attachment comes back a quarter smaller), bytes that must never be
//! stored as the message.

use super::flags;
use crate::engine::error::{EngineError, Result};
use crate::engine::imap::conn::Conn;
use crate::engine::imap::wire::{uid_set, Status};
use crate::engine::limits::{BodyBudget, Limits};
use crate::engine::retry::{classify, CommandKind, Refusal};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// One way to ask for a whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchForm {
    BodyPeek,
    Rfc822Peek,
    /// Sets \Seen unless the folder is open read-only: the source is always EXAMINEd, and
    /// \Seen is checked and restored afterwards for servers that set it anyway.
    Body,
    Rfc822,
    /// Decodes the parts' content-transfer-encoding: tried last, and its answer kept only
    /// when it is exactly as long as the listed size (nothing was decoded).
    BinaryPeek,
}

impl FetchForm {
    pub const ALL: [FetchForm; 5] = [
        FetchForm::BodyPeek,
        FetchForm::Rfc822Peek,
        FetchForm::Body,
        FetchForm::Rfc822,
        FetchForm::BinaryPeek,
    ];

    pub fn item(self) -> &'static str {
        match self {
            FetchForm::BodyPeek => "BODY.PEEK[]",
            FetchForm::Rfc822Peek => "RFC822.PEEK",
            FetchForm::BinaryPeek => "BINARY.PEEK[]",
            FetchForm::Body => "BODY[]",
            FetchForm::Rfc822 => "RFC822",
        }
    }

    pub fn may_set_seen(self) -> bool {
        matches!(self, FetchForm::Body | FetchForm::Rfc822)
    }

    /// Why `bytes`, this form's answer for a message listed as `listed` bytes, are not
    /// the message itself (`None`: they are to be kept).
    pub fn not_exact(self, bytes: &[u8], listed: u64) -> Option<String> {
        let got = bytes.len() as u64;
        (self == FetchForm::BinaryPeek && got != listed).then(|| {
            format!(
                "{} returned {got} bytes for a message of {listed} bytes (its parts decoded, not the message as stored); not used",
                self.item()
            )
        })
    }
}

/// What the engine learnt about a source server: forms it does not understand (BAD).
#[derive(Debug, Clone, Default)]
pub struct ServerProfile {
    inner: Arc<Mutex<HashSet<FetchForm>>>,
}

impl ServerProfile {
    fn usable(&self, binary: bool) -> Vec<FetchForm> {
        let bad = self.inner.lock().map(|g| g.clone()).unwrap_or_default();
        FetchForm::ALL
            .into_iter()
            .filter(|f| !bad.contains(f) && (binary || *f != FetchForm::BinaryPeek))
            .collect()
    }

    fn mark_bad(&self, form: FetchForm) {
        if let Ok(mut g) = self.inner.lock() {
            if g.insert(form) {
                tracing::info!(
                    form = form.item(),
                    "the source server refuses this fetch form; not using it again"
                );
            }
        }
    }

    pub fn refused_forms(&self) -> Vec<&'static str> {
        let bad = self.inner.lock().map(|g| g.clone()).unwrap_or_default();
        FetchForm::ALL
            .into_iter()
            .filter(|f| bad.contains(f))
            .map(FetchForm::item)
            .collect()
    }
}

/// A source message as listed before copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMessage {
    pub uid: u32,
    pub flags: Vec<String>,
    pub internal_date: String,
    pub size: u64,
}

/// A message fetched and ready to append: its bytes are a slice of the buffer the
/// response was read into, shared (never copied) up to the APPEND's literal.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub meta: SourceMessage,
    pub bytes: Bytes,
}

/// A message that could not be fetched, and the server's words.
#[derive(Debug, Clone)]
pub struct FetchFailure {
    pub meta: SourceMessage,
    pub reason: String,
    pub attempts: u32,
}

#[derive(Debug, Default)]
pub struct FetchOutcome {
    pub fetched: Vec<Fetched>,
    pub failed: Vec<FetchFailure>,
}

/// Fetches a batch: the whole batch per form, falling back form by form for what is
/// missing; on a dropped connection, each remaining message is tried alone.
pub async fn fetch_batch(
    src: &mut Conn,
    profile: &ServerProfile,
    batch: &[SourceMessage],
    max_attempts: u32,
) -> Result<FetchOutcome> {
    let mut outcome = FetchOutcome::default();
    match fetch_with_forms(src, profile, batch, &mut outcome.fetched).await {
        Ok(failures) => {
            outcome.failed = failures;
            Ok(outcome)
        }
        Err(e) if e.is_connection_failure() => {
            src.note_error(&e);
            tracing::warn!(error = %e, "connection lost during a batch fetch; fetching the rest one by one");
            let have: HashSet<u32> = outcome.fetched.iter().map(|f| f.meta.uid).collect();
            for meta in batch.iter().filter(|m| !have.contains(&m.uid)) {
                let mut attempts = 0;
                loop {
                    // Reconnecting is not an attempt at this message: only a fetch that
                    // dies while asking for it alone counts against it.
                    src.session().await?;
                    attempts += 1;
                    let mut got = Vec::new();
                    match fetch_with_forms(src, profile, std::slice::from_ref(meta), &mut got).await
                    {
                        Ok(mut failures) => {
                            outcome.fetched.append(&mut got);
                            for f in &mut failures {
                                f.attempts = attempts;
                            }
                            outcome.failed.append(&mut failures);
                            break;
                        }
                        // Fetched alone, its body was announced far above its listed size
                        // (or the maximum message size): that will not change on a retry.
                        Err(e @ EngineError::LiteralTooLarge { .. }) => {
                            src.note_error(&e);
                            outcome.failed.push(FetchFailure {
                                meta: meta.clone(),
                                reason: format!(
                                    "{e} (the message is listed as {} bytes)",
                                    meta.size
                                ),
                                attempts,
                            });
                            break;
                        }
                        Err(e) if e.is_connection_failure() => {
                            src.note_error(&e);
                            if attempts >= max_attempts {
                                outcome.failed.push(FetchFailure {
                                    meta: meta.clone(),
                                    reason: format!(
                                        "the source server dropped the connection each time this message was fetched ({attempts} tries): {e}"
                                    ),
                                    attempts,
                                });
                                break;
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(outcome)
        }
        Err(e) => Err(e),
    }
}

/// What a body fetch of messages listed at `sizes` may bring: the largest allowance and
/// all of them together.
pub(super) fn body_budget(limits: &Limits, sizes: impl IntoIterator<Item = u64>) -> BodyBudget {
    sizes
        .into_iter()
        .map(|size| limits.body_allowance(size))
        .fold(BodyBudget::default(), |b, a| BodyBudget {
            largest: b.largest.max(a),
            total: b.total.saturating_add(a),
        })
}

async fn fetch_with_forms(
    src: &mut Conn,
    profile: &ServerProfile,
    batch: &[SourceMessage],
    fetched: &mut Vec<Fetched>,
) -> Result<Vec<FetchFailure>> {
    let binary = src.session().await?.capabilities().binary();
    let body = body_budget(src.limits(), batch.iter().map(|m| m.size));
    let by_uid: HashMap<u32, &SourceMessage> = batch.iter().map(|m| (m.uid, m)).collect();
    let mut missing: Vec<u32> = batch.iter().map(|m| m.uid).collect();
    let mut last_words: HashMap<u32, String> = HashMap::new();
    let forms = profile.usable(binary);
    let mut next_form = 0;
    let mut patience = src.patience();
    while let Some(&form) = forms.get(next_form) {
        if missing.is_empty() {
            break;
        }
        let session = src.session().await?;
        let set = uid_set(&missing);
        let mut got: Vec<(u32, Bytes)> = Vec::new();
        let mut nil: HashSet<u32> = HashSet::new();
        let done = session
            .uid_fetch_bodies(&set, &format!("UID {}", form.item()), Some(body), |item| {
                if let Some(uid) = item.uid {
                    match item.body {
                        Some(body) => got.push((uid, body)),
                        None if item.body_nil => {
                            nil.insert(uid);
                        }
                        None => {}
                    }
                }
            })
            .await;
        // Keep what arrived even if the connection then died.
        let mut new_uids = HashSet::new();
        for (uid, body) in got {
            if let Some(meta) = by_uid.get(&uid) {
                if let Some(why) = form.not_exact(&body, meta.size) {
                    tracing::warn!(uid, reason = %why, "fetch answer refused");
                    last_words.insert(uid, why);
                    continue;
                }
                if new_uids.insert(uid) && missing.contains(&uid) {
                    fetched.push(Fetched {
                        meta: (*meta).clone(),
                        bytes: body,
                    });
                }
            }
        }
        missing.retain(|u| !new_uids.contains(u));
        let done = done?;
        if form.may_set_seen() && !new_uids.is_empty() {
            restore_seen(src, batch, &new_uids).await?;
        }
        for uid in &nil {
            last_words.insert(*uid, format!("{} returned NIL", form.item()));
        }
        let refusal = classify(
            done.status,
            done.code.as_deref(),
            &done.text,
            CommandKind::Fetch,
        );
        if let (Refusal::Transient { suggested }, false) = (refusal, missing.is_empty()) {
            // Throttled or busy (NO or BAD alike): the form is fine. Wait, then send the
            // same command again on this connection.
            src.wait_out(&mut patience, &done.words(), suggested)
                .await?;
            continue;
        }
        next_form += 1;
        match done.status {
            Status::Ok => {}
            Status::Bad => {
                if new_uids.is_empty() {
                    profile.mark_bad(form);
                }
                for uid in &missing {
                    last_words.insert(*uid, format!("{} answered {}", form.item(), done.words()));
                }
            }
            _ => {
                for uid in &missing {
                    last_words.insert(*uid, format!("{} answered {}", form.item(), done.words()));
                }
            }
        }
        for uid in &missing {
            last_words
                .entry(*uid)
                .or_insert_with(|| format!("{} returned no body", form.item()));
        }
    }
    Ok(missing
        .into_iter()
        .filter_map(|uid| {
            let meta = by_uid.get(&uid)?;
            Some(FetchFailure {
                meta: (*meta).clone(),
                reason: last_words
                    .remove(&uid)
                    .unwrap_or_else(|| "no fetch form returned the message".to_owned()),
                attempts: 1,
            })
        })
        .collect())
}

/// After a fetch form that may set \Seen: put \Seen back where the source did not have it.
async fn restore_seen(src: &mut Conn, batch: &[SourceMessage], uids: &HashSet<u32>) -> Result<()> {
    let unseen: Vec<u32> = batch
        .iter()
        .filter(|m| uids.contains(&m.uid) && !flags::has_seen(&m.flags))
        .map(|m| m.uid)
        .collect();
    if unseen.is_empty() {
        return Ok(());
    }
    let session = src.session().await?;
    let mut now_seen = Vec::new();
    let done = session
        .uid_fetch(&uid_set(&unseen), "UID FLAGS", |item| {
            if let (Some(uid), Some(f)) = (item.uid, item.flags) {
                if flags::has_seen(&f) {
                    now_seen.push(uid);
                }
            }
        })
        .await?;
    if done.status != Status::Ok || now_seen.is_empty() {
        return Ok(());
    }
    // The server set \Seen despite EXAMINE: open read-write briefly and take it back.
    if src.selected_folder().is_none() {
        return Ok(());
    }
    tracing::info!(
        messages = now_seen.len(),
        "restoring \\Seen on the source after a non-PEEK fetch"
    );
    src.reopen(false).await?;
    let session = src.session().await?;
    let done = session
        .uid_store(&uid_set(&now_seen), "-FLAGS", &["\\Seen".to_owned()])
        .await?;
    if done.status != Status::Ok {
        tracing::warn!(words = %done.words(), "could not restore \\Seen on the source");
    }
    src.reopen(true).await?;
    Ok(())
}

/// The Subject of a message, best effort, for reports about skipped messages.
pub async fn subject_of(src: &mut Conn, uid: u32) -> Option<String> {
    let session = src.session().await.ok()?;
    let mut header = None;
    let done = session
        .uid_fetch(
            &uid.to_string(),
            "UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
            |item| {
                header = item.header;
            },
        )
        .await;
    match done {
        Ok(d) if d.status == Status::Ok => {}
        Ok(_) => return None,
        Err(e) => {
            src.note_error(&e);
            return None;
        }
    }
    let text = String::from_utf8_lossy(&header?).into_owned();
    let unfolded = text.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("subject")
                .then(|| value.trim().to_owned())
        })
        .map(|s| s.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_is_the_last_resort_and_only_believed_at_the_listed_size() {
        assert_eq!(FetchForm::ALL.last(), Some(&FetchForm::BinaryPeek));
        let decoded = b"shorter than listed";
        assert!(FetchForm::BinaryPeek
            .not_exact(decoded, decoded.len() as u64 + 40)
            .is_some_and(|why| why.contains("decoded")));
        assert_eq!(
            FetchForm::BinaryPeek.not_exact(decoded, decoded.len() as u64),
            None
        );
        // The BODY and RFC822 forms are the message as stored whatever the listing says
        // (some servers' RFC822.SIZE is an estimate).
        assert_eq!(FetchForm::BodyPeek.not_exact(decoded, 1), None);
        let profile = ServerProfile::default();
        profile.mark_bad(FetchForm::BodyPeek);
        profile.mark_bad(FetchForm::Rfc822Peek);
        assert_eq!(
            profile.usable(true),
            vec![FetchForm::Body, FetchForm::Rfc822, FetchForm::BinaryPeek]
        );
    }
}
