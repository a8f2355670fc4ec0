//! A fault-injecting IMAP proxy on loopback, put between a client under test and a real
//! Dovecot, to reproduce what hostile or old servers do (see shared QUIRKS.md):
//!
//! - answer `BAD` to chosen fetch forms (a server that does not know `BODY.PEEK[]`);
//! - drop the connection when a given message's body is fetched (a poison message);
//! - hide capabilities (e.g. `UIDPLUS`, then `APPENDUID` codes are removed too);
//! - drop the connection every N commands, after the command reached the server but
//!   before its reply reached the client (the lost-OK case that makes duplicates);
//! - refuse APPENDs larger than a size, with the server-style words;
//! - answer chosen commands (body fetches, APPENDs, logins, any command, an APPEND holding
//!   a marker or naming a flag) with a given tagged NO/BAD, for the first N or every Nth
//!   occurrence, without passing them on (throttling, "Server Unavailable", `[UNAVAILABLE]`);
//! - limit the bandwidth (bytes per second, each direction of each connection);
//! - stop forwarding on a connection after some bytes from its client (a dead link);
//! - keep a timestamped log of the commands of each connection (with the folder selected
//!   then), so a test can tell how long the client waited before it sent a refused command
//!   again, or which folders it fetched from;
//! - show mailboxes under other bytes than the server's names (an old server's raw 8-bit
//!   names), and give the server its own name back in commands that use those bytes.
//!
//! The proxy understands just enough IMAP to do this: lines, and literals passed through
//! untouched in both directions.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// What to break. `Default` breaks nothing (a transparent proxy).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fetch items answered with `BAD` (matched case-insensitively in FETCH commands),
    /// e.g. `"BODY.PEEK[]"`.
    pub bad_fetch_forms: Vec<String>,
    /// (folder, UID): fetching this message's body closes the connection.
    pub poison: Vec<(String, u32)>,
    /// Capabilities removed from every CAPABILITY list the client sees.
    pub hide_capabilities: Vec<String>,
    /// Capabilities added to every CAPABILITY list the client sees (e.g. `X-GM-EXT-1`,
    /// to make a Dovecot look like Gmail); the server itself is not told.
    pub add_capabilities: Vec<String>,
    /// Every Nth command (counted over all connections) is passed to the server, then the
    /// connection is closed before the client gets the reply.
    pub drop_every: Option<u64>,
    /// APPENDs of messages larger than this are refused with `NO [LIMIT]`. Also hides
    /// LITERAL+ and MULTIAPPEND so that every message is announced before it is sent.
    pub append_max_size: Option<usize>,
    /// A pause after each command is passed on: a slow server, so that a copy of a few
    /// thousand messages lasts long enough for what a test wants to happen meanwhile.
    pub command_delay: Option<Duration>,
    /// Commands answered by the proxy itself with a tagged refusal (never passed on).
    pub refuse: Vec<Refuse>,
    /// Bytes per second, in each direction of each connection (a slow link).
    pub bandwidth: Option<u64>,
    /// After this many bytes from its client, a connection forwards nothing more either
    /// way (but stays open): its link is dead. New connections work until they too have
    /// sent that much.
    pub stall_after_bytes: Option<u64>,
    /// Body FETCHes are not passed on: the proxy answers each with an untagged
    /// `* OK still working` line this often, forever, and never with the tagged reply (a
    /// server that keeps the connection alive without making progress).
    pub busy_body_fetch: Option<Duration>,
    /// With `busy_body_fetch`: only the first this many body FETCHes (counted over all
    /// connections) are kept busy (`None`: all).
    pub busy_body_fetches: Option<u64>,
    /// Listing responses (FETCH responses that carry RFC822.SIZE) each sent as two: the
    /// flags alone, without the UID, then the UID with the date and the size.
    pub split_listing: bool,
    /// (UID, n): the first n listing responses for this UID (in any folder) come without
    /// their INTERNALDATE; `u64::MAX`: every one.
    pub strip_listing_date: Vec<(u32, u64)>,
    /// Capabilities removed from what the client sees before it has logged in (the
    /// greeting's code, CAPABILITY answers); the login's tagged OK then loses its
    /// CAPABILITY code: a server that shows them only to a client asking after login.
    pub hide_before_login: Vec<String>,
    /// Every RFC822.SIZE of a listing response is reported this many bytes larger (a
    /// server whose sizes are estimates, as Exchange's); the bodies are unchanged.
    pub inflate_listing_sizes: u64,
    /// One dropped connection in the middle of a folder's copy, and new connections held
    /// back until the test has changed the server (see [`DropHold`]).
    pub drop_and_hold: Option<Arc<DropHold>>,
    /// A line (e.g. `* 1 EXISTS`) sent to the client right before every `+` the server
    /// sends: an untagged reply that arrives while the client waits to send a literal.
    pub untagged_before_continue: Option<String>,
    /// APPENDs that announce a non-synchronising literal (`{n+}`) of more than this many
    /// bytes are refused whole with `NO [TOOBIG]` (as Cyrus 3.6 with `literalminus`,
    /// which advertises LITERAL+); synchronising literals of any size pass.
    pub refuse_nonsync_literals_over: Option<usize>,
    /// With `refuse_nonsync_literals_over`: refuse with `* BYE [TOOBIG]` and close the
    /// connection instead of a tagged NO.
    pub refuse_nonsync_with_bye: bool,
    /// Each appended message reaches the server rewritten (a header line added, its first
    /// body line changed: another size and hash, the same Message-ID, date and Subject),
    /// as a converting server (Exchange) stores it; also hides UIDPLUS.
    pub rewrite_appended: bool,
    /// Flags taken out of every APPEND's flag lists before the server sees them (as
    /// Exchange forgets `\Flagged` given at APPEND); a later STORE of them works.
    pub drop_append_flags: Vec<String>,
    /// Flags taken out of every APPEND and STORE: the target never keeps them.
    pub never_keep_flags: Vec<String>,
    /// Where every line of every APPEND (the text between its literals, each literal's
    /// announcement at its end) is recorded, as the proxy got it.
    pub append_lines: Option<Arc<std::sync::Mutex<Vec<String>>>>,
    /// INTERNALDATEs the server sends with a one-digit day (`"05-Mar-2024 ..."`) reach
    /// the client space-padded (`" 5-Mar-2024 ..."`), as other servers write them.
    pub space_padded_days: bool,
    /// Mailboxes the client sees under other bytes (see [`MailboxAlias`]).
    pub aliases: Vec<MailboxAlias>,
}

/// A mailbox shown to the client as an old server would list it: `client` (e.g. the raw
/// Latin-1 bytes `Caf\xe9`) instead of the server's `server` (`Caf&AOk-`) in LIST, LSUB
/// and STATUS replies; a SELECT, EXAMINE, STATUS or SUBSCRIBE naming exactly the
/// `client` bytes (as a literal, a quoted string or an atom) reaches the server with its
/// own name. Any other bytes (e.g. a lossy `Caf\u{FFFD}`) pass unchanged, and the server
/// refuses them.
#[derive(Debug, Clone)]
pub struct MailboxAlias {
    pub server: Vec<u8>,
    pub client: Vec<u8>,
    pub form: AliasForm,
}

/// How the client gets an aliased name in replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasForm {
    /// Bare bytes (an 8-bit atom, as some old servers send).
    Atom,
    /// A quoted string holding the bytes (8-bit in a quoted string).
    Quoted,
    /// A literal `{n}`.
    Literal,
}

impl MailboxAlias {
    fn token(&self) -> Vec<u8> {
        match self.form {
            AliasForm::Atom => self.client.clone(),
            AliasForm::Quoted => quoted(&self.client),
            AliasForm::Literal => {
                let mut out = format!("{{{}}}\r\n", self.client.len()).into_bytes();
                out.extend_from_slice(&self.client);
                out
            }
        }
    }
}

fn quoted(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// A server's LIST, LSUB or STATUS line with aliased names in their client form.
fn alias_reply(line: &[u8], aliases: &[MailboxAlias]) -> Vec<u8> {
    let upper = line.to_ascii_uppercase();
    if aliases.is_empty()
        || !(upper.starts_with(b"* LIST ")
            || upper.starts_with(b"* LSUB ")
            || upper.starts_with(b"* STATUS "))
    {
        return line.to_vec();
    }
    for alias in aliases {
        for server in [alias.server.clone(), quoted(&alias.server)] {
            for end in [&b"\r\n"[..], b" ("] {
                let mut needle = vec![b' '];
                needle.extend_from_slice(&server);
                needle.extend_from_slice(end);
                if let Some(at) = find(line, &needle) {
                    let mut out = line[..at + 1].to_vec();
                    out.extend_from_slice(&alias.token());
                    out.extend_from_slice(&line[at + 1 + server.len()..]);
                    return out;
                }
            }
        }
    }
    line.to_vec()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether a command of this verb names a mailbox an alias may stand for.
fn names_mailbox(verb: &str) -> bool {
    matches!(verb, "SELECT" | "EXAMINE" | "STATUS" | "SUBSCRIBE")
}

/// A test hook: the `after`-th body FETCH in `folder` (counted over all connections)
/// closes its connection instead of being passed on; connections that come after it wait
/// until [`DropHold::resume`], so the test can change the server between the drop and
/// the reconnect ([`DropHold::dropped`] says when).
#[derive(Debug)]
pub struct DropHold {
    folder: String,
    after: u64,
    seen: AtomicU64,
    fired: std::sync::atomic::AtomicBool,
    released: std::sync::atomic::AtomicBool,
    dropped_signal: tokio::sync::Notify,
    resume_signal: tokio::sync::Notify,
}

impl DropHold {
    pub fn new(folder: &str, after: u64) -> Arc<DropHold> {
        Arc::new(DropHold {
            folder: folder.to_owned(),
            after,
            seen: AtomicU64::new(0),
            fired: Default::default(),
            released: Default::default(),
            dropped_signal: tokio::sync::Notify::new(),
            resume_signal: tokio::sync::Notify::new(),
        })
    }

    /// Waits until the connection was dropped.
    pub async fn dropped(&self) {
        self.dropped_signal.notified().await
    }

    /// Lets the held connections through.
    pub fn resume(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.resume_signal.notify_waiters();
    }

    /// Whether this body fetch in `folder` is the one to drop.
    fn fires(&self, folder: &str) -> bool {
        if !folder.eq_ignore_ascii_case(&self.folder) || self.fired.load(Ordering::SeqCst) {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.after {
            self.fired.store(true, Ordering::SeqCst);
            self.dropped_signal.notify_one();
            return true;
        }
        false
    }

    async fn hold(&self) {
        while self.fired.load(Ordering::SeqCst) && !self.released.load(Ordering::SeqCst) {
            let resumed = self.resume_signal.notified();
            if self.released.load(Ordering::SeqCst) {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), resumed).await;
        }
    }
}

impl Faults {
    /// Faults that only answer the commands of `rule` with its refusal.
    pub fn refusing(rule: Refuse) -> Faults {
        Faults {
            refuse: vec![rule],
            ..Faults::default()
        }
    }
}

/// Which commands a [`Refuse`] rule answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A FETCH of message bodies.
    FetchBody,
    /// Any APPEND (one message or several).
    Append,
    /// An APPEND whose messages hold this text (a poisoned message in a MULTIAPPEND).
    AppendContaining(String),
    /// An APPEND that gives this flag to a message.
    AppendWithFlag(String),
    /// LOGIN or AUTHENTICATE.
    Login,
    /// A CREATE of this mailbox (the name as the client sends it).
    Create(String),
    /// Any command but LOGOUT.
    Any,
}

/// Answer matching commands with `reply` (after the tag, e.g. `NO [UNAVAILABLE] Try
/// later`) on their first `first` occurrences and/or every `every`th (counted over all
/// connections; `every: Some(1)` refuses them all).
#[derive(Debug, Clone)]
pub struct Refuse {
    pub command: Refused,
    pub reply: String,
    pub first: Option<u64>,
    pub every: Option<u64>,
}

impl Refuse {
    pub fn first(command: Refused, reply: &str, n: u64) -> Refuse {
        Refuse {
            command,
            reply: reply.to_owned(),
            first: Some(n),
            every: None,
        }
    }

    pub fn every(command: Refused, reply: &str, n: u64) -> Refuse {
        Refuse {
            command,
            reply: reply.to_owned(),
            first: None,
            every: Some(n),
        }
    }

    /// Whether deciding needs the whole command, literals included.
    fn needs_whole(&self) -> bool {
        matches!(
            self.command,
            Refused::AppendContaining(_) | Refused::AppendWithFlag(_)
        )
    }

    /// Whether this rule is about a command (`text`: its lines, upper-cased; `argument`:
    /// its first argument as sent, unquoted).
    fn matches(&self, verb: &str, text: &str, argument: &str, literals: &[Vec<u8>]) -> bool {
        match &self.command {
            Refused::FetchBody => text.contains(" FETCH ") && fetches_body(text),
            Refused::Append => verb == "APPEND",
            Refused::AppendContaining(marker) => {
                verb == "APPEND"
                    && literals
                        .iter()
                        .any(|l| l.windows(marker.len()).any(|w| w == marker.as_bytes()))
            }
            Refused::AppendWithFlag(flag) => {
                let flag = flag.to_ascii_uppercase();
                verb == "APPEND" && text.split(['(', ')', ' ']).any(|w| w == flag)
            }
            Refused::Login => verb == "LOGIN" || verb == "AUTHENTICATE",
            Refused::Create(mailbox) => verb == "CREATE" && argument == mailbox,
            Refused::Any => verb != "LOGOUT",
        }
    }
}

/// One command as the proxy saw it.
#[derive(Debug, Clone)]
pub struct LoggedCommand {
    /// The connection (1, 2, ... in the order they came).
    pub connection: u64,
    pub at: std::time::Instant,
    pub tag: String,
    /// The verb (`UID FETCH`, `APPEND`, `LOGIN`), never arguments.
    pub verb: String,
    /// The folder selected on this connection when the command came (for SELECT and
    /// EXAMINE: the one they open), as the client named it; empty before any.
    pub folder: String,
    /// Whether it asked for message bodies.
    pub fetches_body: bool,
    /// For FETCH: the items asked for (`(UID BODY.PEEK[])`).
    pub items: Option<String>,
    /// For an APPEND read whole: how many messages it carried.
    pub messages: usize,
    /// The proxy answered it with this refusal instead of passing it on.
    pub refused: Option<String>,
}

/// Counters, for tests to check the faults really happened.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicU64,
    pub commands: AtomicU64,
    pub drops: AtomicU64,
    pub bad_answers: AtomicU64,
    pub poison_drops: AtomicU64,
    pub refused_appends: AtomicU64,
    /// Server lines changed on their way to the client (capabilities or codes hidden).
    pub rewritten_lines: AtomicU64,
    /// Commands answered by a [`Refuse`] rule.
    pub refusals: AtomicU64,
    /// Untagged lines put before a `+` (see [`Faults::untagged_before_continue`]).
    pub injected_untagged: AtomicU64,
    /// Commands that named an aliased mailbox by its client bytes (see [`MailboxAlias`]).
    pub aliased_commands: AtomicU64,
    /// APPENDs whose reply `drop_every` lost (the server stored them).
    pub lost_append_replies: AtomicU64,
    /// Every command, in order, with when it came (see [`ProxyStats::commands_logged`]).
    log: std::sync::Mutex<Vec<LoggedCommand>>,
}

impl ProxyStats {
    /// A copy of the command log.
    pub fn commands_logged(&self) -> Vec<LoggedCommand> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn record(&self, entry: LoggedCommand) {
        if let Ok(mut l) = self.log.lock() {
            l.push(entry);
        }
    }
}

/// What all connections of one proxy share.
#[derive(Debug, Default)]
struct Shared {
    /// Occurrences counted per [`Refuse`] rule.
    counts: Vec<AtomicU64>,
    /// Listing responses stripped so far, per UID.
    stripped: std::sync::Mutex<std::collections::HashMap<u32, u64>>,
    /// Body FETCHes seen while `busy_body_fetch` is set.
    busy_fetches: AtomicU64,
}

/// One connection's link: bytes from its client so far, and whether it died.
#[derive(Debug, Default)]
struct Link {
    client_bytes: AtomicU64,
    dead: std::sync::atomic::AtomicBool,
    /// The tag of the client's LOGIN or AUTHENTICATE, once sent.
    login_tag: std::sync::Mutex<Option<String>>,
}

/// Paces one direction of one connection to a number of bytes per second.
#[derive(Debug)]
struct Pacer {
    rate: Option<u64>,
    start: tokio::time::Instant,
    sent: u64,
}

impl Pacer {
    fn new(rate: Option<u64>) -> Self {
        Pacer {
            rate,
            start: tokio::time::Instant::now(),
            sent: 0,
        }
    }

    /// Writes `data` no faster than the rate (in small pieces, so the other side sees
    /// a steady trickle and TCP pushes back on the sender).
    async fn write<W: AsyncWriteExt + Unpin>(&mut self, w: &mut W, data: &[u8]) -> Result<()> {
        let Some(rate) = self.rate.filter(|r| *r > 0) else {
            w.write_all(data).await?;
            return Ok(());
        };
        for piece in data.chunks((rate as usize / 20).clamp(512, 64 << 10)) {
            w.write_all(piece).await?;
            self.sent += piece.len() as u64;
            let due = self.start + Duration::from_secs_f64(self.sent as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
        }
        Ok(())
    }
}

/// A running proxy; it stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    stats: Arc<ProxyStats>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards to 127.0.0.1:`upstream_port`.
    pub async fn start(upstream_port: u16, faults: Faults) -> Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = listener.local_addr()?.port();
        let stats = Arc::new(ProxyStats::default());
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, upstream_port));
        let mut faults = faults;
        if faults.append_max_size.is_some() {
            faults.hide_capabilities.push("LITERAL+".into());
            faults.hide_capabilities.push("MULTIAPPEND".into());
        }
        if faults.rewrite_appended {
            faults.hide_capabilities.push("UIDPLUS".into());
        }
        let shared = Arc::new(Shared {
            counts: faults.refuse.iter().map(|_| AtomicU64::new(0)).collect(),
            stripped: Default::default(),
            busy_fetches: AtomicU64::new(0),
        });
        let faults = Arc::new(faults);
        let accept_stats = stats.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let id = accept_stats.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let faults = faults.clone();
                let stats = accept_stats.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Some(hold) = &faults.drop_and_hold {
                        hold.hold().await;
                    }
                    let _ = relay(client, upstream, faults, stats, shared, id).await;
                });
            }
        });
        Ok(FaultProxy {
            port,
            stats,
            accept,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }
}

/// Reads one line (up to LF) and, if it announces a literal, the literal too.
/// Returns (line, literal) or None at end of stream.
async fn read_unit(
    reader: &mut BufReader<OwnedReadHalf>,
) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    let literal = match literal_len(&line) {
        Some(n) => {
            let mut buf = vec![0; n];
            reader.read_exact(&mut buf).await?;
            Some(buf)
        }
        None => None,
    };
    Ok(Some((line, literal)))
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let inner = text.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches(['+', '-']).parse().ok()
}

/// A synchronising literal (`{n}` without `+`): the client waits for `+` before sending it.
fn is_sync_literal(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let t = text.trim_end();
    t.ends_with('}') && !t.ends_with("+}") && !t.ends_with("-}") && literal_len(line).is_some()
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    faults: Arc<Faults>,
    stats: Arc<ProxyStats>,
    shared: Arc<Shared>,
    connection: u64,
) -> Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let client_write = Arc::new(Mutex::new(client_write));

    let s2c_writer = client_write.clone();
    let s2c_faults = faults.clone();
    let s2c_stats = stats.clone();
    let link = Arc::new(Link::default());
    let s2c_link = link.clone();
    let s2c_shared = shared.clone();
    let s2c = tokio::spawn(async move {
        let mut reader = BufReader::new(server_read);
        let mut pacer = Pacer::new(s2c_faults.bandwidth);
        let mut logged_in = false;
        loop {
            // Literals are read by read_unit only after the line: server literals are
            // always announced at a line end, so this keeps them intact.
            let Ok(Some((line, literal))) = read_unit_server(&mut reader).await else {
                break;
            };
            let mut rewritten = rewrite_server_line(&line, &s2c_faults);
            if !s2c_faults.hide_before_login.is_empty() && !logged_in {
                let tag = s2c_link
                    .login_tag
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let (out, now_in) = hide_before_login(&rewritten, tag.as_deref(), &s2c_faults);
                rewritten = out;
                logged_in = now_in;
            }
            if s2c_faults.space_padded_days {
                rewritten = pad_days(&rewritten);
            }
            if rewritten != line {
                s2c_stats.rewritten_lines.fetch_add(1, Ordering::SeqCst);
            }
            let line = match &literal {
                None => rewrite_listing(&rewritten, &s2c_faults, &s2c_shared),
                Some(_) => rewritten,
            };
            let line = match &literal {
                None => alias_reply(&line, &s2c_faults.aliases),
                Some(_) => line,
            };
            if s2c_link.dead.load(Ordering::SeqCst) {
                // Dead link: hold the connection open, pass nothing.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                break;
            }
            let mut w = s2c_writer.lock().await;
            if let Some(injected) = &s2c_faults.untagged_before_continue {
                if line.starts_with(b"+") {
                    let injected = format!("{}\r\n", injected.trim_end());
                    if pacer.write(&mut *w, injected.as_bytes()).await.is_err() {
                        break;
                    }
                    s2c_stats.injected_untagged.fetch_add(1, Ordering::SeqCst);
                }
            }
            if pacer.write(&mut *w, &line).await.is_err() {
                break;
            }
            if let Some(lit) = literal {
                if pacer.write(&mut *w, &lit).await.is_err() {
                    break;
                }
            }
        }
        let mut w = s2c_writer.lock().await;
        let _ = w.shutdown().await;
    });

    let mut reader = BufReader::new(client_read);
    let mut selected = String::new();
    let mut c2s_pacer = Pacer::new(faults.bandwidth);
    let result: Result<()> = async {
        loop {
            // One command: its first line; literals are read only after the line went on
            // (a client waits for `+` before sending a synchronising literal).
            let mut first = Vec::new();
            if reader.read_until(b'\n', &mut first).await? == 0 {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&first).into_owned();
            let mut words = text.split_whitespace();
            let tag = words.next().unwrap_or("*").to_owned();
            let verb: Vec<String> = words.take(2).map(|w| w.to_ascii_uppercase()).collect();
            let upper = text.to_ascii_uppercase();
            let argument = text
                .split_whitespace()
                .nth(2)
                .unwrap_or("")
                .trim_matches('"');

            if verb
                .first()
                .is_some_and(|v| v == "SELECT" || v == "EXAMINE")
            {
                selected = argument.to_owned();
            }
            let verb_name = match verb.as_slice() {
                [uid, second, ..] if uid == "UID" => format!("UID {second}"),
                [first, ..] => first.clone(),
                [] => String::new(),
            };
            let mut entry = LoggedCommand {
                connection,
                at: std::time::Instant::now(),
                tag: tag.clone(),
                verb: verb_name.clone(),
                folder: selected.clone(),
                fetches_body: upper.contains(" FETCH ") && fetches_body(&upper),
                items: upper
                    .find(" (")
                    .filter(|_| upper.contains(" FETCH "))
                    .map(|at| upper[at + 1..].trim_end().to_owned()),
                messages: 0,
                refused: None,
            };
            let verb0 = verb.first().cloned().unwrap_or_default();
            if verb0 == "LOGIN" || verb0 == "AUTHENTICATE" {
                *link.login_tag.lock().unwrap_or_else(|e| e.into_inner()) = Some(tag.clone());
            }
            let is_append = verb0 == "APPEND";
            let record_line = |line: &[u8]| {
                if let (true, Some(lines)) = (is_append, &faults.append_lines) {
                    if let Ok(mut l) = lines.lock() {
                        l.push(String::from_utf8_lossy(line).trim_end().to_owned());
                    }
                }
            };
            let aliasing = !faults.aliases.is_empty() && names_mailbox(&verb0);
            let whole = aliasing
                || verb0 == "APPEND"
                    && (faults.refuse.iter().any(Refuse::needs_whole)
                        || faults.refuse_nonsync_literals_over.is_some()
                        || faults.rewrite_appended);
            let forgets = forgotten_flags(&verb_name, &faults);
            // The whole command (lines and literals) when a rule must look inside it.
            let mut buffered = if whole {
                match WholeCommand::read(&mut reader, first.clone(), &client_write).await? {
                    Some(w) => Some(w),
                    None => return Ok(()),
                }
            } else {
                None
            };
            match &buffered {
                Some(w) => w.lines.iter().for_each(|l| record_line(l)),
                None => record_line(&first),
            }
            let all_text = match &buffered {
                Some(w) => w
                    .lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).to_ascii_uppercase())
                    .collect::<Vec<_>>()
                    .join(" "),
                None => upper.clone(),
            };
            let no_literals = Vec::new();
            let literals = buffered.as_ref().map_or(&no_literals, |w| &w.literals);
            entry.messages = literals.len();
            let mut refusal = None;
            // A `{n+}` refused by a server that closes on it: `* BYE` instead of the NO.
            let mut bye = false;
            if let (Some(limit), Some(w)) = (faults.refuse_nonsync_literals_over, &buffered) {
                let large_nonsync = w
                    .lines
                    .iter()
                    .any(|l| !is_sync_literal(l) && literal_len(l).is_some_and(|n| n > limit));
                if large_nonsync {
                    refusal = Some(format!("NO {TOOBIG}"));
                    bye = faults.refuse_nonsync_with_bye;
                }
            }
            for (i, rule) in faults.refuse.iter().enumerate() {
                if refusal.is_some() {
                    break;
                }
                if rule.needs_whole() && buffered.is_none() {
                    continue;
                }
                if !rule.matches(&verb0, &all_text, argument, literals) {
                    continue;
                }
                let n = shared.counts[i].fetch_add(1, Ordering::SeqCst) + 1;
                let hit = rule.first.is_some_and(|k| n <= k)
                    || rule.every.is_some_and(|e| e > 0 && n.is_multiple_of(e));
                if hit {
                    refusal = Some(rule.reply.clone());
                }
            }
            if let Some(reply) = refusal {
                // Take the rest of the command off the wire (non-synchronising literals
                // come at once); a synchronising one is never sent after a tagged answer.
                if buffered.is_none() {
                    let mut line = first.clone();
                    while let Some(n) = literal_len(&line) {
                        if is_sync_literal(&line) {
                            break;
                        }
                        let mut literal = vec![0; n];
                        reader.read_exact(&mut literal).await?;
                        line = Vec::new();
                        if reader.read_until(b'\n', &mut line).await? == 0 {
                            return Ok(());
                        }
                    }
                }
                stats.refusals.fetch_add(1, Ordering::SeqCst);
                stats.commands.fetch_add(1, Ordering::SeqCst);
                entry.refused = Some(reply.clone());
                entry.at = std::time::Instant::now();
                stats.record(entry);
                let mut w = client_write.lock().await;
                if bye {
                    w.write_all(format!("* BYE {TOOBIG}\r\n").as_bytes())
                        .await?;
                    return Ok(());
                }
                w.write_all(format!("{tag} {reply}\r\n").as_bytes()).await?;
                continue;
            }
            stats.record(entry);
            let logout = verb0 == "LOGOUT";
            if let Some(mut whole) = buffered.take() {
                if faults.rewrite_appended {
                    whole.rewrite_messages();
                }
                if aliasing && whole.unalias(&faults.aliases) {
                    stats.aliased_commands.fetch_add(1, Ordering::SeqCst);
                }
                for line in &mut whole.lines {
                    *line = without_flags(line, &forgets);
                }
                let bytes = whole.into_bytes();
                forward(&mut server_write, &mut c2s_pacer, &bytes, &link, &faults).await?;
                server_write.flush().await?;
                if passed_on(&faults, &stats, &s2c, logout, is_append).await {
                    return Ok(());
                }
                continue;
            }
            let is_fetch = upper.contains(" FETCH ");
            if is_fetch {
                if let Some(form) = faults
                    .bad_fetch_forms
                    .iter()
                    .find(|f| upper.contains(&f.to_ascii_uppercase()))
                {
                    stats.bad_answers.fetch_add(1, Ordering::SeqCst);
                    let reply = format!(
                        "{tag} BAD Error in IMAP command FETCH: Unknown attribute {form}\r\n"
                    );
                    client_write
                        .lock()
                        .await
                        .write_all(reply.as_bytes())
                        .await?;
                    stats.commands.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                if fetches_body(&upper) {
                    let busy = faults.busy_body_fetch.filter(|_| {
                        let n = shared.busy_fetches.fetch_add(1, Ordering::SeqCst) + 1;
                        faults.busy_body_fetches.is_none_or(|first| n <= first)
                    });
                    if let Some(every) = busy {
                        // Never answered: the client gets only untagged lines, until it
                        // closes the connection.
                        stats.commands.fetch_add(1, Ordering::SeqCst);
                        loop {
                            tokio::time::sleep(every).await;
                            let mut w = client_write.lock().await;
                            if w.write_all(b"* OK still working\r\n").await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    if let Some(hold) = &faults.drop_and_hold {
                        if hold.fires(&selected) {
                            stats.drops.fetch_add(1, Ordering::SeqCst);
                            s2c.abort();
                            return Ok(());
                        }
                    }
                    let uids = fetch_uids(&upper);
                    if faults.poison.iter().any(|(folder, uid)| {
                        folder.eq_ignore_ascii_case(&selected) && uids.contains(uid)
                    }) {
                        stats.poison_drops.fetch_add(1, Ordering::SeqCst);
                        s2c.abort();
                        return Ok(());
                    }
                }
            }
            if let (Some(limit), Some(n)) = (faults.append_max_size, literal_len(&first)) {
                if verb.first().is_some_and(|v| v == "APPEND")
                    && n > limit
                    && is_sync_literal(&first)
                {
                    stats.refused_appends.fetch_add(1, Ordering::SeqCst);
                    let reply =
                        format!("{tag} NO [LIMIT] Mail size is too large (max {limit} bytes)\r\n");
                    client_write
                        .lock()
                        .await
                        .write_all(reply.as_bytes())
                        .await?;
                    stats.commands.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            }

            // Forward the command, literal by literal (paced, piece by piece, so that a
            // slow link pushes back on the client).
            let mut line = first;
            loop {
                let line_out = without_flags(&line, &forgets);
                forward(&mut server_write, &mut c2s_pacer, &line_out, &link, &faults).await?;
                server_write.flush().await?;
                let Some(n) = literal_len(&line) else { break };
                let mut left = n;
                let mut piece = vec![0; 16 << 10];
                while left > 0 {
                    let take = left.min(piece.len());
                    reader.read_exact(&mut piece[..take]).await?;
                    forward(
                        &mut server_write,
                        &mut c2s_pacer,
                        &piece[..take],
                        &link,
                        &faults,
                    )
                    .await?;
                    left -= take;
                }
                line = Vec::new();
                if reader.read_until(b'\n', &mut line).await? == 0 {
                    return Ok(());
                }
                record_line(&line);
            }
            server_write.flush().await?;
            if passed_on(&faults, &stats, &s2c, logout, is_append).await {
                return Ok(());
            }
        }
    }
    .await;
    s2c.abort();
    let mut w = client_write.lock().await;
    let _ = w.shutdown().await;
    let _ = server_write.shutdown().await;
    result
}

/// After a command went on to the server: the slow server's pause, then, every Nth
/// command (LOGOUT aside), the lost reply: the server-to-client relay is stopped before
/// the reply reaches the client. Whether the connection is to be closed now.
async fn passed_on(
    faults: &Faults,
    stats: &ProxyStats,
    s2c: &tokio::task::JoinHandle<()>,
    logout: bool,
    append: bool,
) -> bool {
    if let Some(delay) = faults.command_delay {
        tokio::time::sleep(delay).await;
    }
    let n = stats.commands.fetch_add(1, Ordering::SeqCst) + 1;
    let drop_now = faults
        .drop_every
        .is_some_and(|every| every > 0 && n.is_multiple_of(every) && !logout);
    if drop_now {
        // The server got the command; the client never sees the reply.
        s2c.abort();
        stats.drops.fetch_add(1, Ordering::SeqCst);
        if append {
            stats.lost_append_replies.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    drop_now
}

/// The words of a refused `{n+}` literal (Cyrus 3.6 with `literalminus`).
const TOOBIG: &str = "[TOOBIG] Literal too large for a non-synchronizing literal";

/// A command read whole: its lines, and the literal after each line that announces one.
struct WholeCommand {
    lines: Vec<Vec<u8>>,
    literals: Vec<Vec<u8>>,
}

impl WholeCommand {
    /// Reads the rest of the command that began with `first` (answering `+` to
    /// synchronising literals itself); `None` at end of stream.
    async fn read(
        reader: &mut BufReader<OwnedReadHalf>,
        first: Vec<u8>,
        client: &Mutex<tokio::net::tcp::OwnedWriteHalf>,
    ) -> Result<Option<WholeCommand>> {
        let mut whole = WholeCommand {
            lines: vec![first],
            literals: Vec::new(),
        };
        loop {
            let last = whole.lines.last().cloned().unwrap_or_default();
            let Some(n) = literal_len(&last) else {
                return Ok(Some(whole));
            };
            if is_sync_literal(&last) {
                client.lock().await.write_all(b"+ OK\r\n").await?;
            }
            let mut literal = vec![0; n];
            reader.read_exact(&mut literal).await?;
            whole.literals.push(literal);
            let mut next = Vec::new();
            if reader.read_until(b'\n', &mut next).await? == 0 {
                return Ok(None);
            }
            whole.lines.push(next);
        }
    }

    /// Each message rewritten as a converting server would store it: a header line
    /// added and the first body line changed (its announcement follows the new size).
    fn rewrite_messages(&mut self) {
        for (i, literal) in self.literals.iter_mut().enumerate() {
            let mut out = b"X-Converted: by the rewriting proxy\r\n".to_vec();
            match literal.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(at) => {
                    out.extend_from_slice(&literal[..at + 4]);
                    out.extend_from_slice(b"[converted] ");
                    out.extend_from_slice(&literal[at + 4..]);
                }
                None => out.extend_from_slice(literal),
            }
            *literal = out;
            let line = &mut self.lines[i];
            let text = String::from_utf8_lossy(line).trim_end().to_owned();
            if let Some(open) = text.rfind('{') {
                let sync = is_sync_literal(line);
                let plus = if sync { "" } else { "+" };
                *line = format!("{}{{{}{plus}}}\r\n", &text[..open], literal.len()).into_bytes();
            }
        }
    }

    /// A mailbox named by an alias's client bytes named by the server's own name (a
    /// literal of exactly those bytes, or the quoted string or atom of them). Whether
    /// one was.
    fn unalias(&mut self, aliases: &[MailboxAlias]) -> bool {
        let mut changed = false;
        let mut i = self.literals.len();
        while i > 0 {
            i -= 1;
            let Some(alias) = aliases.iter().find(|a| a.client == self.literals[i]) else {
                continue;
            };
            let line = &self.lines[i];
            let Some(open) = line.iter().rposition(|&b| b == b'{') else {
                continue;
            };
            let mut joined = line[..open].to_vec();
            joined.extend_from_slice(&quoted(&alias.server));
            joined.extend_from_slice(&self.lines[i + 1]);
            self.lines[i] = joined;
            self.lines.remove(i + 1);
            self.literals.remove(i);
            changed = true;
        }
        for line in &mut self.lines {
            for alias in aliases {
                for (client, end) in [
                    (quoted(&alias.client), &b""[..]),
                    (alias.client.clone(), b" "),
                    (alias.client.clone(), b"\r\n"),
                ] {
                    let mut needle = vec![b' '];
                    needle.extend_from_slice(&client);
                    needle.extend_from_slice(end);
                    if let Some(at) = find(line, &needle) {
                        let mut out = line[..at + 1].to_vec();
                        out.extend_from_slice(&quoted(&alias.server));
                        out.extend_from_slice(&line[at + 1 + client.len()..]);
                        *line = out;
                        changed = true;
                    }
                }
            }
        }
        changed
    }

    /// The command as the server gets it: told not to wait for the `+`s the proxy gave.
    fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            if i < self.literals.len() && is_sync_literal(line) {
                let text = String::from_utf8_lossy(line);
                let t = text.trim_end();
                out.extend_from_slice(&t.as_bytes()[..t.len() - 1]);
                out.extend_from_slice(b"+}\r\n");
            } else {
                out.extend_from_slice(line);
            }
            if let Some(lit) = self.literals.get(i) {
                out.extend_from_slice(lit);
            }
        }
        out
    }
}

/// The flags a command of this verb loses on its way (`drop_append_flags`,
/// `never_keep_flags`).
fn forgotten_flags(verb: &str, faults: &Faults) -> Vec<String> {
    let mut out = Vec::new();
    if verb == "APPEND" {
        out.extend(faults.drop_append_flags.iter().cloned());
    }
    if verb == "APPEND" || verb == "UID STORE" || verb == "STORE" {
        out.extend(faults.never_keep_flags.iter().cloned());
    }
    out
}

/// A command line with `flags` taken out of its first parenthesised list (an APPEND's or
/// a STORE's flag list; a MULTIAPPEND's later lines start with theirs).
fn without_flags(line: &[u8], flags: &[String]) -> Vec<u8> {
    if flags.is_empty() {
        return line.to_vec();
    }
    let text = String::from_utf8_lossy(line);
    let (Some(open), Some(close)) = (text.find('('), text.find(')')) else {
        return line.to_vec();
    };
    if close < open {
        return line.to_vec();
    }
    let kept: Vec<&str> = text[open + 1..close]
        .split_whitespace()
        .filter(|f| !flags.iter().any(|d| d.eq_ignore_ascii_case(f)))
        .collect();
    format!(
        "{}({}){}",
        &text[..open],
        kept.join(" "),
        &text[close + 1..]
    )
    .into_bytes()
}

/// Passes client bytes to the server at the link's pace, until the link dies.
async fn forward<W: AsyncWriteExt + Unpin>(
    server: &mut W,
    pacer: &mut Pacer,
    data: &[u8],
    link: &Link,
    faults: &Faults,
) -> Result<()> {
    if let Some(limit) = faults.stall_after_bytes {
        let before = link
            .client_bytes
            .fetch_add(data.len() as u64, Ordering::SeqCst);
        if before + data.len() as u64 > limit {
            link.dead.store(true, Ordering::SeqCst);
        }
    }
    if link.dead.load(Ordering::SeqCst) {
        // Dead: take nothing more and pass nothing on, but keep the connection open.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        anyhow::bail!("dead link");
    }
    pacer.write(server, data).await
}

/// Server side reading: a line, and a literal it announces (read raw).
async fn read_unit_server(
    reader: &mut BufReader<OwnedReadHalf>,
) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>> {
    read_unit(reader).await
}

/// The client's view of a server line: hidden capabilities and their codes removed.
fn rewrite_server_line(line: &[u8], faults: &Faults) -> Vec<u8> {
    if faults.hide_capabilities.is_empty() && faults.add_capabilities.is_empty() {
        return line.to_vec();
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return line.to_vec();
    };
    let upper = text.to_ascii_uppercase();
    if !(upper.contains("CAPABILITY") || upper.contains("[APPENDUID") || upper.contains("[COPYUID"))
    {
        return line.to_vec();
    }
    let hidden: HashSet<String> = faults
        .hide_capabilities
        .iter()
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let mut out = text.to_owned();
    if upper.starts_with("* CAPABILITY") || upper.contains("[CAPABILITY ") {
        let mut kept: Vec<String> = Vec::new();
        for word in text.trim_end_matches(['\r', '\n']).split(' ') {
            let bare = word.trim_end_matches(']').to_ascii_uppercase();
            if hidden.contains(&bare) {
                // Keep the bracket that closed the code when the last name goes.
                if word.ends_with(']') {
                    if let Some(last) = kept.last_mut() {
                        last.push(']');
                    }
                }
            } else {
                kept.push(word.to_owned());
            }
        }
        if !faults.add_capabilities.is_empty() {
            // Before the bracket that closes a `[CAPABILITY ...]` code, else at the end.
            let at = kept
                .iter()
                .position(|w| w.ends_with(']'))
                .unwrap_or(kept.len().saturating_sub(1));
            if let Some(word) = kept.get_mut(at) {
                let closes = word.ends_with(']');
                let bare = word.trim_end_matches(']').to_owned();
                *word = format!(
                    "{bare} {}{}",
                    faults.add_capabilities.join(" "),
                    if closes { "]" } else { "" }
                );
            }
        }
        out = format!("{}\r\n", kept.join(" "));
    }
    if hidden.contains("UIDPLUS") {
        for code in ["[APPENDUID ", "[COPYUID "] {
            if let Some(start) = out.to_ascii_uppercase().find(code) {
                if let Some(len) = out[start..].find(']') {
                    out.replace_range(start..start + len + 1, "");
                }
            }
        }
    }
    out.into_bytes()
}

/// Before login: the hidden capabilities removed; the login's OK (tag `login_tag`)
/// without its CAPABILITY code. Returns the line and whether the login has succeeded.
fn hide_before_login(line: &[u8], login_tag: Option<&str>, faults: &Faults) -> (Vec<u8>, bool) {
    let text = String::from_utf8_lossy(line);
    if let Some(tag) = login_tag {
        let ok = format!("{tag} OK");
        if text
            .to_ascii_uppercase()
            .starts_with(&ok.to_ascii_uppercase())
        {
            let rest = text[ok.len()..].trim_start();
            let rest = match rest.strip_prefix('[') {
                Some(code) if code.to_ascii_uppercase().starts_with("CAPABILITY ") => code
                    .split_once(']')
                    .map_or("", |(_, after)| after)
                    .trim_start(),
                _ => rest,
            };
            return (format!("{ok} {rest}").into_bytes(), true);
        }
    }
    let hiding = Faults {
        hide_capabilities: faults.hide_before_login.clone(),
        ..Faults::default()
    };
    (rewrite_server_line(line, &hiding), false)
}

/// A listing response split in two or without its INTERNALDATE, as the faults say.
fn rewrite_listing(line: &[u8], faults: &Faults, shared: &Shared) -> Vec<u8> {
    if !faults.split_listing
        && faults.strip_listing_date.is_empty()
        && faults.inflate_listing_sizes == 0
    {
        return line.to_vec();
    }
    let Some((seq, items)) = listing_items(line) else {
        return line.to_vec();
    };
    let value = |name: &str| {
        items
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let Some(uid) = value("UID").and_then(|u| u.parse::<u32>().ok()) else {
        return line.to_vec();
    };
    let mut items = items;
    if faults.inflate_listing_sizes > 0 {
        for (name, value) in &mut items {
            if name.eq_ignore_ascii_case("RFC822.SIZE") {
                if let Ok(n) = value.parse::<u64>() {
                    *value = (n + faults.inflate_listing_sizes).to_string();
                }
            }
        }
    }
    if let Some((_, times)) = faults.strip_listing_date.iter().find(|(u, _)| *u == uid) {
        let mut stripped = shared.stripped.lock().unwrap_or_else(|e| e.into_inner());
        let done = stripped.entry(uid).or_insert(0);
        if *done < *times {
            *done += 1;
            items.retain(|(n, _)| !n.eq_ignore_ascii_case("INTERNALDATE"));
        }
    }
    let join = |keep: &dyn Fn(&str) -> bool| {
        items
            .iter()
            .filter(|(n, _)| keep(n))
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if faults.split_listing {
        let flags = join(&|n| n.eq_ignore_ascii_case("FLAGS"));
        let rest = join(&|n| !n.eq_ignore_ascii_case("FLAGS"));
        format!("* {seq} FETCH ({flags})\r\n* {seq} FETCH ({rest})\r\n").into_bytes()
    } else {
        format!("* {seq} FETCH ({})\r\n", join(&|_| true)).into_bytes()
    }
}

/// `* seq FETCH (name value ...)` with RFC822.SIZE among the items: the sequence number
/// and the items (a value is an atom, a quoted string or a list without nesting).
fn listing_items(line: &[u8]) -> Option<(u32, Vec<(String, String)>)> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let rest = text.strip_prefix("* ")?;
    let (seq, rest) = rest.split_once(' ')?;
    let seq: u32 = seq.parse().ok()?;
    let inner = rest
        .strip_prefix("FETCH (")
        .or_else(|| rest.strip_prefix("fetch ("))?
        .strip_suffix(')')?;
    if !inner.to_ascii_uppercase().contains("RFC822.SIZE") {
        return None;
    }
    let mut items = Vec::new();
    let mut chars = inner.char_indices().peekable();
    let bytes = inner.as_bytes();
    while let Some(&(start, _)) = chars.peek() {
        let name_end = inner[start..].find(' ').map(|i| start + i)?;
        let name = inner[start..name_end].to_owned();
        let vstart = name_end + 1;
        let close = match bytes.get(vstart)? {
            b'(' => inner[vstart..].find(')').map(|i| vstart + i + 1)?,
            b'"' => inner[vstart + 1..].find('"').map(|i| vstart + 1 + i + 1)?,
            _ => inner[vstart..]
                .find(' ')
                .map_or(inner.len(), |i| vstart + i),
        };
        items.push((name, inner[vstart..close].to_owned()));
        let next = (close + 1).min(inner.len());
        while chars.peek().is_some_and(|&(i, _)| i < next) {
            chars.next();
        }
    }
    Some((seq, items))
}

/// `INTERNALDATE "05-...` becomes `INTERNALDATE " 5-...` (the date-day-fixed form).
fn pad_days(line: &[u8]) -> Vec<u8> {
    const FROM: &[u8] = b"INTERNALDATE \"0";
    let mut out = line.to_vec();
    let mut at = 0;
    while let Some(pos) = out[at..].windows(FROM.len()).position(|w| w == FROM) {
        let zero = at + pos + FROM.len() - 1;
        out[zero] = b' ';
        at = zero;
    }
    out
}

fn fetches_body(upper: &str) -> bool {
    let without_size = upper.replace("RFC822.SIZE", "");
    without_size.contains("BODY[]")
        || without_size.contains("BODY.PEEK[]")
        || without_size.contains("BINARY")
        || without_size.contains("RFC822")
}

/// The UIDs a `UID FETCH set ...` command names (`*` counts as a very large UID).
fn fetch_uids(upper: &str) -> Vec<u32> {
    let Some(pos) = upper.find("UID FETCH ") else {
        return Vec::new();
    };
    let set = upper[pos + 10..].split_whitespace().next().unwrap_or("");
    let mut out = Vec::new();
    for piece in set.split(',') {
        let parse = |s: &str| {
            if s == "*" {
                Some(u32::MAX)
            } else {
                s.parse::<u32>().ok()
            }
        };
        match piece.split_once(':') {
            Some((a, b)) => {
                if let (Some(a), Some(b)) = (parse(a), parse(b)) {
                    let (lo, hi) = (a.min(b), a.max(b));
                    out.extend(lo..=hi.min(lo.saturating_add(100_000)));
                }
            }
            None => out.extend(parse(piece)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_hidden_before_login_only() {
        let faults = Faults {
            hide_before_login: vec!["UIDPLUS".into(), "LITERAL+".into()],
            ..Faults::default()
        };
        let (greeting, done) = hide_before_login(
            b"* OK [CAPABILITY IMAP4rev1 LITERAL+ ID] ready\r\n",
            None,
            &faults,
        );
        assert_eq!(greeting, b"* OK [CAPABILITY IMAP4rev1 ID] ready\r\n");
        assert!(!done);
        let (ok, done) = hide_before_login(
            b"a1 OK [CAPABILITY IMAP4rev1 UIDPLUS LITERAL+] Logged in\r\n",
            Some("a1"),
            &faults,
        );
        assert_eq!(ok, b"a1 OK Logged in\r\n");
        assert!(done);
    }

    #[test]
    fn capability_lines_lose_hidden_names() {
        let faults = Faults {
            hide_capabilities: vec!["UIDPLUS".into()],
            ..Faults::default()
        };
        let added = Faults {
            add_capabilities: vec!["X-GM-EXT-1".into()],
            ..Faults::default()
        };
        assert_eq!(
            rewrite_server_line(b"a1 OK [CAPABILITY IMAP4rev1 MOVE] Logged in\r\n", &added),
            b"a1 OK [CAPABILITY IMAP4rev1 MOVE X-GM-EXT-1] Logged in\r\n"
        );
        assert_eq!(
            rewrite_server_line(b"* CAPABILITY IMAP4rev1 MOVE\r\n", &added),
            b"* CAPABILITY IMAP4rev1 MOVE X-GM-EXT-1\r\n"
        );
        let out = rewrite_server_line(b"* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n", &faults);
        assert_eq!(out, b"* CAPABILITY IMAP4rev1 MOVE\r\n");
        let out = rewrite_server_line(b"a1 OK [APPENDUID 12 7] Append completed.\r\n", &faults);
        assert_eq!(out, b"a1 OK  Append completed.\r\n");
        let out = rewrite_server_line(
            b"a1 OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in\r\n",
            &faults,
        );
        assert_eq!(out, b"a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n");
    }

    #[test]
    fn listing_responses_are_split_and_stripped() {
        let line = b"* 4 FETCH (UID 9 FLAGS (\\Seen Work) INTERNALDATE \"01-Mar-2010 00:10:00 +0200\" RFC822.SIZE 123)\r\n";
        let split = Faults {
            split_listing: true,
            ..Faults::default()
        };
        let shared = Shared::default();
        assert_eq!(
            String::from_utf8(rewrite_listing(line, &split, &shared)).unwrap(),
            "* 4 FETCH (FLAGS (\\Seen Work))\r\n* 4 FETCH (UID 9 INTERNALDATE \"01-Mar-2010 00:10:00 +0200\" RFC822.SIZE 123)\r\n"
        );
        let strip = Faults {
            strip_listing_date: vec![(9, 1)],
            ..Faults::default()
        };
        assert_eq!(
            String::from_utf8(rewrite_listing(line, &strip, &shared)).unwrap(),
            "* 4 FETCH (UID 9 FLAGS (\\Seen Work) RFC822.SIZE 123)\r\n"
        );
        assert_eq!(rewrite_listing(line, &strip, &shared), line.to_vec());
        let other = b"* 4 FETCH (UID 9 FLAGS (\\Seen))\r\n";
        assert_eq!(rewrite_listing(other, &split, &shared), other.to_vec());
    }

    #[test]
    fn one_digit_days_are_space_padded() {
        assert_eq!(
            pad_days(
                b"* 1 FETCH (UID 4 INTERNALDATE \"05-Mar-2010 00:14:00 +0000\" RFC822.SIZE 63)\r\n"
            ),
            b"* 1 FETCH (UID 4 INTERNALDATE \" 5-Mar-2010 00:14:00 +0000\" RFC822.SIZE 63)\r\n"
        );
        let two = b"* 1 FETCH (INTERNALDATE \"15-Mar-2010 00:14:00 +0000\")\r\n";
        assert_eq!(pad_days(two), two.to_vec());
    }

    #[test]
    fn flags_are_taken_out_and_messages_rewritten() {
        let drop = vec!["\\Flagged".to_string(), "$Foo".to_string()];
        assert_eq!(
            without_flags(
                b"a1 APPEND \"INBOX\" (\\Seen \\flagged $Foo) {3+}\r\n",
                &drop
            ),
            b"a1 APPEND \"INBOX\" (\\Seen) {3+}\r\n".to_vec()
        );
        assert_eq!(
            without_flags(b"a2 UID STORE 4 +FLAGS.SILENT ($Foo)\r\n", &drop),
            b"a2 UID STORE 4 +FLAGS.SILENT ()\r\n".to_vec()
        );
        let mut whole = WholeCommand {
            lines: vec![b"a1 APPEND x () {12}\r\n".to_vec(), b"\r\n".to_vec()],
            literals: vec![b"S: x\r\n\r\nbody".to_vec()],
        };
        whole.rewrite_messages();
        let out = String::from_utf8(whole.into_bytes()).unwrap();
        assert_eq!(
            out,
            "a1 APPEND x () {61+}\r\nX-Converted: by the rewriting proxy\r\nS: x\r\n\r\n[converted] body\r\n"
        );
    }

    #[test]
    fn fetch_sets_and_body_items_are_recognised() {
        assert_eq!(
            fetch_uids("M3 UID FETCH 1:3,7 (UID BODY.PEEK[])"),
            vec![1, 2, 3, 7]
        );
        assert!(fetches_body("M3 UID FETCH 1 (UID RFC822)"));
        assert!(!fetches_body("M3 UID FETCH 1:* (UID RFC822.SIZE FLAGS)"));
        assert!(literal_len(b"a APPEND x (\\Seen) {310}\r\n") == Some(310));
        assert!(is_sync_literal(b"a APPEND x {3}\r\n") && !is_sync_literal(b"a APPEND x {3+}\r\n"));
    }
}
