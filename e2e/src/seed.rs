//! Deterministic mailboxes with every oddity a migration meets.
//!
//! [`seed_mailbox`] fills an account from a seed: the same seed gives the same folders,
//! bytes, flags and INTERNALDATEs, so a test can seed a source and compare the target after a
//! copy, or seed two accounts and expect them identical. Messages are APPENDed pipelined with
//! LITERAL+, so 10,000 messages take seconds, not minutes.
//!
//! Always present (when `messages` >= 9): a message over 1 MB with a base64 attachment, one
//! without Message-ID, an unterminated multipart, bad base64, raw 8-bit header bytes, bare LF
//! line endings, a line over 998 characters, an exact duplicate in the same folder and one in
//! another folder. Subjects start with a tag naming the oddity (`[no-message-id]`,
//! `[bare-lf]`, ...) so tests can find them.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::dovecot::{Dovecot, DovecotOptions};
use crate::imap_client::{base64_encode, connect, encode_mutf7, Account, AppendItem};

/// What to seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    /// Same seed, same mailbox.
    pub seed: u64,
    /// Total number of messages (duplicates included).
    pub messages: usize,
}

impl SeedSpec {
    pub fn new(seed: u64, messages: usize) -> SeedSpec {
        SeedSpec { seed, messages }
    }
}

/// What one folder received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderReport {
    /// Logical name: `/`-separated, UTF-8, without namespace prefix (as in [`crate::compare`]).
    pub name: String,
    /// Name on the server (prefix, separator, modified UTF-7).
    pub server_name: String,
    pub messages: usize,
    pub bytes: u64,
}

/// What was seeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// Every folder created (also those that got no message), in creation order.
    pub folders: Vec<FolderReport>,
    /// Folders that exist only as parents (never created, so `\Noselect` on Dovecot Maildir++).
    pub noselect_parents: Vec<String>,
    /// Count of messages per oddity tag (`big`, `no-message-id`, `bare-lf`, ...).
    pub oddities: BTreeMap<String, usize>,
}

impl SeedReport {
    /// Total messages appended.
    pub fn total_messages(&self) -> usize {
        self.folders.iter().map(|f| f.messages).sum()
    }
}

/// Logical folders created by the seeder. `Archive` is never created itself.
const FOLDERS: &[&str] = &[
    "INBOX",
    "Sent",
    "Drafts",
    "Trash",
    "Junk",
    "Archive/2019",
    "Archive/2020",
    "Projects",
    "Projects/Project-X",
    "Entwürfe",
    "Gesendete Objekte",
    "Éléments envoyés",
    "Corbeille",
    "归档",
];
const NOSELECT_PARENTS: &[&str] = &["Archive"];
/// Relative weights of FOLDERS for ordinary messages.
const WEIGHTS: &[u64] = &[35, 10, 3, 3, 3, 12, 10, 2, 5, 3, 5, 4, 2, 3];

/// SplitMix64: tiny, fast, and good enough to make varied test data reproducibly.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Attachment,
    Big,
    NoMessageId,
    UnterminatedMultipart,
    BadBase64,
    Raw8BitHeader,
    BareLf,
    LongLine,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::Attachment => "attachment",
            Kind::Big => "big",
            Kind::NoMessageId => "no-message-id",
            Kind::UnterminatedMultipart => "unterminated-multipart",
            Kind::BadBase64 => "bad-base64",
            Kind::Raw8BitHeader => "raw-8bit-header",
            Kind::BareLf => "bare-lf",
            Kind::LongLine => "long-line",
        }
    }
}

/// One generated message.
#[derive(Debug, Clone)]
struct Msg {
    folder: usize,
    flags: Vec<String>,
    date: String,
    bytes: Vec<u8>,
    tag: &'static str,
}

const WORDS: &[&str] = &[
    "migration",
    "mailbox",
    "quarterly",
    "report",
    "meeting",
    "invoice",
    "the",
    "and",
    "of",
    "project",
    "schedule",
    "Grüße",
    "naïve",
    "café",
    "日本語",
    "review",
    "budget",
    "server",
    "please",
    "attached",
    "thanks",
    "regards",
    "tomorrow",
    "deadline",
    "customer",
    "draft",
];
const PEOPLE: &[&str] = &[
    "Alice Example <alice@example.org>",
    "Bob Builder <bob@example.net>",
    "Chloé Martin <chloe@example.fr>",
    "Dieter Müller <dieter@example.de>",
    "\"Ops, Team\" <ops@example.com>",
];
const ZONES: &[i64] = &[0, 60, 120, -300, -420, 330, 540, 600, -180, 345, 780];
const MONTHS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: &[&str] = &["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Days since 1970-01-01 to (year, month 1-12, day), Howard Hinnant's algorithm.
fn civil(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m as usize, d)
}

/// (IMAP INTERNALDATE, RFC 5322 Date) for a UTC instant shown in a zone `offset` minutes east.
fn dates(epoch: i64, offset: i64) -> (String, String) {
    let local = epoch + offset * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sign = if offset < 0 { '-' } else { '+' };
    let zone = format!("{sign}{:02}{:02}", offset.abs() / 60, offset.abs() % 60);
    let month = MONTHS[m - 1];
    let weekday = DAYS[days.rem_euclid(7) as usize];
    (
        format!("{d:02}-{month}-{y:04} {hh:02}:{mm:02}:{ss:02} {zone}"),
        format!("{weekday}, {d:02} {month} {y:04} {hh:02}:{mm:02}:{ss:02} {zone}"),
    )
}

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| *rng.pick(WORDS))
        .collect::<Vec<&str>>()
        .join(" ")
}

/// Plain text of about `size` bytes in lines of at most ~76 characters, CRLF-terminated.
fn text(rng: &mut Rng, size: usize) -> String {
    let mut out = String::with_capacity(size + 80);
    while out.len() < size {
        let mut line = String::new();
        while line.len() < 60 {
            if !line.is_empty() {
                line.push(' ');
            }
            let word = WORDS[rng.below(WORDS.len() as u64) as usize];
            line.push_str(word);
        }
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

fn base64_lines(data: &[u8]) -> String {
    let b64 = base64_encode(data);
    let mut out = String::with_capacity(b64.len() + b64.len() / 38);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(n);
    v
}

fn generate(seed: u64, index: usize, total: usize) -> Msg {
    // Specials at fixed positions; duplicates regenerate the original.
    match index {
        7 => return generate(seed, 2, total), // same folder, same bytes, flags and date
        8 => {
            let mut m = generate(seed, 3, total);
            m.folder = 6; // Archive/2020: the same message in another folder
            return m;
        }
        _ => {}
    }
    let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    let kind = match index {
        0 => Kind::Big,
        1 => Kind::NoMessageId,
        2 => Kind::UnterminatedMultipart,
        3 => Kind::BadBase64,
        4 => Kind::Raw8BitHeader,
        5 => Kind::BareLf,
        6 => Kind::LongLine,
        _ => {
            // About one big message per 400, 5% with 20-100 KB attachments; the rest 2-20 KB text.
            let bigs = 1 + total / 400;
            if rng.below(total.max(1) as u64) < bigs as u64 {
                Kind::Big
            } else if rng.chance(5) {
                Kind::Attachment
            } else {
                Kind::Normal
            }
        }
    };
    let folder = match kind {
        Kind::NoMessageId => 2, // Drafts
        _ if index < 9 => 0,
        _ => {
            let sum: u64 = WEIGHTS.iter().sum();
            let mut r = rng.below(sum);
            let mut f = 0;
            for (i, w) in WEIGHTS.iter().enumerate() {
                if r < *w {
                    f = i;
                    break;
                }
                r -= w;
            }
            f
        }
    };
    let epoch = rng.range(1_104_537_600, 1_767_139_200) as i64; // 2005..2025
    let offset = *rng.pick(ZONES);
    let (internal_date, date_header) = dates(epoch, offset);

    let mut flags = Vec::new();
    for (flag, pct) in [
        ("\\Seen", 70),
        ("\\Answered", 15),
        ("\\Flagged", 10),
        ("\\Deleted", 3),
        ("$Forwarded", 5),
        ("$Label1", 5),
        ("Project-X", 3),
    ] {
        if rng.chance(pct) {
            flags.push(flag.to_string());
        }
    }
    if folder == 2 {
        flags.push("\\Draft".to_string());
    }
    // Every flag and keyword appears at least once.
    let forced = [
        "\\Seen",
        "\\Answered",
        "\\Flagged",
        "\\Deleted",
        "\\Draft",
        "$Forwarded",
        "$Label1",
        "Project-X",
    ];
    for (j, f) in forced.iter().enumerate() {
        let forced_here =
            index == 9 + j || (total < 17 && index == j % total.max(1) && index != 7 && index != 8);
        if forced_here && !flags.iter().any(|x| x == f) {
            flags.push(f.to_string());
        }
    }

    let from = *rng.pick(PEOPLE);
    let to = *rng.pick(PEOPLE);
    let subject = format!("[{}] {} #{index}", kind.tag(), words(&mut rng, 4));
    let mut h = String::new();
    h.push_str(&format!("Return-Path: <bounce-{index}@example.org>\r\n"));
    if kind != Kind::NoMessageId {
        h.push_str(&format!(
            "Message-ID: <{:016x}.{index}@seed.mailferry.test>\r\n",
            rng.next()
        ));
    }
    h.push_str(&format!(
        "Date: {date_header}\r\nFrom: {from}\r\nTo: {to}\r\n"
    ));
    let mut bytes: Vec<u8> = Vec::new();
    match kind {
        Kind::Raw8BitHeader => {
            bytes.extend_from_slice(h.as_bytes());
            // UTF-8 and a lone Latin-1 byte, unencoded, in headers.
            bytes.extend_from_slice(format!("Subject: {subject} Grüße ").as_bytes());
            bytes.extend_from_slice(b"caf\xe9\r\nX-Note: r\xc3\xa9sum\xe9\r\n");
            bytes.extend_from_slice(
                b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
            );
            let size = rng.range(2_000, 8_000) as usize;
            bytes.extend_from_slice(text(&mut rng, size).as_bytes());
        }
        _ => {
            h.push_str(&format!("Subject: {subject}\r\nMIME-Version: 1.0\r\n"));
            let boundary = format!("=_mf_{:08x}", rng.next() as u32);
            let body = match kind {
                Kind::Normal | Kind::NoMessageId | Kind::BareLf => {
                    let size = rng.range(2_000, 20_000) as usize;
                    format!(
                        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
                        text(&mut rng, size)
                    )
                }
                Kind::LongLine => {
                    let long: String = (0..5_000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
                    format!(
                        "Content-Type: text/plain; charset=us-ascii\r\n\r\n{}{long}\r\n{}",
                        text(&mut rng, 500),
                        text(&mut rng, 500)
                    )
                }
                Kind::Attachment | Kind::Big => {
                    let size = if kind == Kind::Big {
                        rng.range(1_100_000, 3_000_000)
                    } else {
                        rng.range(20_000, 100_000)
                    } as usize;
                    let data = random_bytes(&mut rng, size * 3 / 4);
                    format!(
                        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}--{boundary}\r\nContent-Type: application/octet-stream; name=\"data-{index}.bin\"\r\nContent-Disposition: attachment; filename=\"data-{index}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--{boundary}--\r\n",
                        text(&mut rng, 1_000),
                        base64_lines(&data)
                    )
                }
                Kind::UnterminatedMultipart => format!(
                    "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n{}--{boundary}\r\nContent-Type: text/plain\r\n\r\n{}",
                    text(&mut rng, 2_000),
                    text(&mut rng, 2_000)
                ),
                Kind::BadBase64 => format!(
                    "Content-Type: application/pdf; name=\"broken.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJ!!!not*base64***\r\nQUJD=RA==x\r\n{}",
                    base64_lines(&random_bytes(&mut rng, 3_000)).replace('A', "~")
                ),
                Kind::Raw8BitHeader => String::new(),
            };
            bytes.extend_from_slice(h.as_bytes());
            bytes.extend_from_slice(body.as_bytes());
        }
    }
    if kind == Kind::BareLf {
        bytes.retain(|&b| b != b'\r');
    }
    Msg {
        folder,
        flags,
        date: internal_date,
        bytes,
        tag: kind.tag(),
    }
}

/// Maps a logical `/`-separated UTF-8 name to the server's name.
fn server_name(logical: &str, prefix: &str, sep: char) -> String {
    if logical.eq_ignore_ascii_case("INBOX") {
        return "INBOX".to_string();
    }
    let parts: Vec<String> = logical.split('/').map(encode_mutf7).collect();
    format!("{prefix}{}", parts.join(&sep.to_string()))
}

/// Fills `account` from `spec` (see the module docs). Creates the folders, then APPENDs
/// every message pipelined; any refused APPEND fails the whole call with the server's words.
pub async fn seed_mailbox(account: &Account, spec: &SeedSpec) -> Result<SeedReport> {
    let mut conn = connect(account).await?;
    let (prefix, sep) = conn.personal_namespace().await?;
    let names: Vec<String> = FOLDERS
        .iter()
        .map(|f| server_name(f, &prefix, sep))
        .collect();
    for name in names.iter().skip(1) {
        conn.create(name).await?;
    }
    let mut folders: Vec<FolderReport> = FOLDERS
        .iter()
        .zip(&names)
        .map(|(logical, server)| FolderReport {
            name: logical.to_string(),
            server_name: server.clone(),
            messages: 0,
            bytes: 0,
        })
        .collect();
    let mut oddities: BTreeMap<String, usize> = BTreeMap::new();
    let batch = 1000;
    let mut start = 0;
    while start < spec.messages {
        let end = (start + batch).min(spec.messages);
        let mut msgs: Vec<(usize, Msg)> = (start..end)
            .map(|i| (i, generate(spec.seed, i, spec.messages)))
            .collect();
        // Grouped by folder so that MULTIAPPEND can store many messages per command (one
        // APPEND per message costs Dovecot several times the CPU).
        msgs.sort_by_key(|(i, m)| (m.folder, *i));
        let items: Vec<AppendItem<'_>> = msgs
            .iter()
            .map(|(_, m)| AppendItem {
                mailbox: &names[m.folder],
                flags: &m.flags,
                internal_date: Some(&m.date),
                bytes: &m.bytes,
            })
            .collect();
        let results = conn.append_pipelined(&items).await?;
        for ((i, m), r) in msgs.iter().zip(results) {
            if let Err(why) = r {
                bail!(
                    "APPEND of seeded message {i} ({}, {} bytes) to {} refused: {why}",
                    m.tag,
                    m.bytes.len(),
                    names[m.folder]
                );
            }
            folders[m.folder].messages += 1;
            folders[m.folder].bytes += m.bytes.len() as u64;
            *oddities.entry(m.tag.to_string()).or_default() += 1;
        }
        start = end;
    }
    if spec.messages > 8 {
        *oddities.entry("duplicate-same-folder".into()).or_default() += 1;
        *oddities.entry("duplicate-other-folder".into()).or_default() += 1;
    }
    conn.logout().await;
    Ok(SeedReport {
        folders,
        noselect_parents: NOSELECT_PARENTS.iter().map(|s| s.to_string()).collect(),
        oddities,
    })
}

/// A source and a target Dovecot (default options), each with `user`, and the user's
/// source mailbox filled from `spec`.
pub async fn seeded_servers(
    user: &str,
    source_password: &str,
    target_password: &str,
    spec: &SeedSpec,
) -> Result<(Dovecot, Dovecot)> {
    let source = Dovecot::start(DovecotOptions::default())?;
    let target = Dovecot::start(DovecotOptions::default())?;
    source.add_user(user, source_password)?;
    target.add_user(user, target_password)?;
    seed_mailbox(&source.account_tls(user, source_password), spec).await?;
    Ok((source, target))
}

/// A plain text message of about `size` bytes (headers, then CRLF lines), unique by `n`:
/// for tests that need messages of chosen sizes.
pub fn sized_message(n: usize, size: usize) -> Vec<u8> {
    let mut out = format!(
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: sized {n}\r\n\
         Message-ID: <sized-{n}@example.org>\r\nDate: Tue, 15 Jun 2021 12:00:00 +0200\r\n\r\n"
    )
    .into_bytes();
    out.reserve(size + 100);
    let mut line = 0usize;
    while out.len() < size {
        out.extend_from_slice(
            format!("{n:06} line {line:08} of a message of a chosen size.\r\n").as_bytes(),
        );
        line += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_formatted_in_their_zone() {
        // 2019-03-05 09:00:00 UTC shown at +0100.
        let (imap, header) = dates(1_551_776_400, 60);
        assert_eq!(imap, "05-Mar-2019 10:00:00 +0100");
        assert_eq!(header, "Tue, 05 Mar 2019 10:00:00 +0100");
        let (imap, _) = dates(0, -300);
        assert_eq!(imap, "31-Dec-1969 19:00:00 -0500");
    }

    #[test]
    fn same_seed_same_message() {
        let a = generate(7, 42, 100);
        let b = generate(7, 42, 100);
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.flags, b.flags);
        assert_eq!(a.date, b.date);
        assert_ne!(generate(8, 42, 100).bytes, a.bytes);
    }
}
