//! One IMAP connection: connect (TLS/STARTTLS/plain), greet, log in, read capabilities,
//! then send commands and read their responses, every step under a timeout.

use super::capabilities::Capabilities;
use super::endpoint::{Endpoint, Security};
use super::name::WireName;
use super::wire::{self, CommandBuilder, Part, Response, Status, StatusLine, Value};
use crate::engine::auth::login::{self, Renewal};
use crate::engine::error::{EngineError, Result, Side};
use crate::engine::limits::{BodyBudget, Limits};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// No response line may be longer than this (literals excepted).
const MAX_LINE: usize = 1 << 20;
/// The most written bytes a read waits for to drain (see `Session::read_deadline`).
const IN_FLIGHT_MAX: u64 = 16 << 20;
/// Bytes written at once: each write must make progress within the per-step timeout.
const WRITE_CHUNK: usize = 64 << 10;
/// Most bytes of all responses together before login (greeting, CAPABILITY, LOGIN).
const PRE_AUTH_BYTES: u64 = 256 << 10;

/// What the current command has cost so far, against its caps.
#[derive(Debug)]
struct CommandBudget {
    /// The command's verb (`UID FETCH`, `LOGIN`), never its arguments.
    what: String,
    deadline: Instant,
    seconds: u64,
    untagged: u64,
    bytes: u64,
    body: Option<BodyBudget>,
    /// Responses are handed on one by one, not all kept until the end.
    streaming: bool,
}

/// The reply to one command: its untagged responses and the tagged status.
#[derive(Debug)]
pub struct Reply {
    pub untagged: Vec<Response>,
    pub done: StatusLine,
}

/// A mailbox as SELECT/EXAMINE describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxInfo {
    pub uidvalidity: u32,
    pub uidnext: Option<u32>,
    pub exists: u32,
    /// `None` when the server did not send PERMANENTFLAGS (then every flag is permanent).
    pub permanent_flags: Option<Vec<String>>,
    /// HIGHESTMODSEQ (RFC 7162), when asked for by [`Session::status_modseq`]; 0 from a
    /// server that keeps no mod-sequences for the mailbox.
    pub highest_modseq: Option<u64>,
}

/// One `* n FETCH (...)` response, the items the engine uses.
#[derive(Debug, Clone, Default)]
pub struct FetchItem {
    pub seq: u32,
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub internal_date: Option<String>,
    pub size: Option<u64>,
    /// The whole message, from `BODY[]`, `RFC822` or `BINARY[]`: a slice of the buffer
    /// the response was read into.
    pub body: Option<Bytes>,
    /// The server answered the body item with NIL.
    pub body_nil: bool,
    /// A `BODY[HEADER...]` section, when asked.
    pub header: Option<Bytes>,
    /// Gmail's message id (`X-GM-MSGID`, with X-GM-EXT-1): one id for all its labels.
    pub gm_msgid: Option<u64>,
    /// Gmail's labels of the message (`X-GM-LABELS`), as sent.
    pub gm_labels: Option<Vec<String>>,
}

impl FetchItem {
    /// Takes the response apart: message bodies are moved out, not copied.
    pub fn from_values(values: Vec<Value>) -> Option<FetchItem> {
        let seq = values.first()?.as_u64()? as u32;
        if !values.get(1)?.as_atom()?.eq_ignore_ascii_case("FETCH") {
            return None;
        }
        let Some(Value::List(items)) = values.into_iter().nth(2) else {
            return None;
        };
        let mut out = FetchItem {
            seq,
            ..FetchItem::default()
        };
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            let Some(key) = key.as_atom() else { continue };
            let key = key.to_ascii_uppercase();
            match key.as_str() {
                "UID" => out.uid = value.as_u64().and_then(|v| u32::try_from(v).ok()),
                "FLAGS" => {
                    out.flags = value
                        .as_list()
                        .map(|l| l.iter().filter_map(Value::as_text).collect())
                }
                "INTERNALDATE" => out.internal_date = value.as_text(),
                "RFC822.SIZE" => out.size = value.as_u64(),
                "X-GM-MSGID" => out.gm_msgid = value.as_u64(),
                "X-GM-LABELS" => {
                    out.gm_labels = value
                        .as_list()
                        .map(|l| l.iter().filter_map(Value::as_text).collect())
                }
                "BODY[]" | "RFC822" | "BINARY[]" => match value {
                    Value::Bytes(b) => out.body = Some(b),
                    Value::Nil => out.body_nil = true,
                    _ => {}
                },
                k if k.starts_with("BODY[HEADER") => {
                    if let Value::Bytes(b) = value {
                        out.header = Some(b);
                    }
                }
                _ => {}
            }
        }
        Some(out)
    }
}

/// Reads one `* STATUS name (key value ...)` response into `info`; false for any other.
fn apply_status(values: &[Value], info: &mut MailboxInfo) -> bool {
    if !values
        .first()
        .and_then(Value::as_atom)
        .is_some_and(|a| a.eq_ignore_ascii_case("STATUS"))
    {
        return false;
    }
    if let Some(list) = values.get(2).and_then(Value::as_list) {
        for pair in list.chunks(2) {
            let [k, v] = pair else { break };
            let v64 = v.as_u64();
            let v = v64.and_then(|v| u32::try_from(v).ok());
            match k.as_atom().map(str::to_ascii_uppercase).as_deref() {
                Some("UIDNEXT") => info.uidnext = v,
                Some("UIDVALIDITY") => info.uidvalidity = v.unwrap_or(0),
                Some("MESSAGES") => info.exists = v.unwrap_or(0),
                Some("HIGHESTMODSEQ") => info.highest_modseq = v64,
                _ => {}
            }
        }
    }
    true
}

pub struct Session {
    io: BufReader<Box<dyn Io>>,
    next_tag: u32,
    pending: VecDeque<Response>,
    caps: Capabilities,
    side: Side,
    host: String,
    timeout: Duration,
    /// The last `* BYE` text, to explain a connection that closes next.
    bye: Option<String>,
    limits: Limits,
    /// Logged in: until then only tiny literals and responses are accepted.
    authenticated: bool,
    budget: CommandBudget,
    /// Logged in with a token that expires: when to replace this session.
    renewal: Option<Renewal>,
    /// The login name, for a refusal that says the login did not really work.
    user: String,
    /// Bytes written since the server last sent anything: they may still sit in the
    /// buffers between here and a slow server, which must receive them before it answers.
    unanswered: u64,
    /// The current command sent a literal over [`LITERAL_MINUS_MAX`] without waiting
    /// for `+` (LITERAL+).
    sent_large_nonsync: bool,
    /// Responses that could not be parsed and were skipped, since the session began.
    unreadable: u64,
}

/// The largest literal LITERAL- allows without waiting for `+` (RFC 7888).
const LITERAL_MINUS_MAX: usize = 4096;

/// Servers (`host:port`) that advertise LITERAL+ but refused a large non-synchronising
/// literal (`NO`/`BYE [TOOBIG]`, as Cyrus 3.6 with `literalminus`): from then on they get
/// synchronising literals above [`LITERAL_MINUS_MAX`], on every connection of the process.
static NONSYNC_REFUSED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn nonsync_refused_by(host: &str) -> bool {
    NONSYNC_REFUSED
        .lock()
        .map(|l| l.iter().any(|h| h == host))
        .unwrap_or(false)
}

fn remember_nonsync_refused(host: &str) {
    if let Ok(mut l) = NONSYNC_REFUSED.lock() {
        if !l.iter().any(|h| h == host) {
            l.push(host.to_owned());
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("side", &self.side)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects, secures and logs in with the default [`Limits`].
    pub async fn connect(endpoint: &Endpoint) -> Result<Session> {
        Session::connect_with(endpoint, Limits::default()).await
    }

    /// Connects, secures and logs in; capabilities are known afterwards.
    pub async fn connect_with(endpoint: &Endpoint, limits: Limits) -> Result<Session> {
        Session::connect_inner(endpoint, limits, false).await
    }

    /// [`Session::connect_with`], but a bearer login starts with a forced token refresh
    /// (to replace a session whose token is about to expire; passwords are unaffected).
    pub async fn connect_with_fresh_token(endpoint: &Endpoint, limits: Limits) -> Result<Session> {
        Session::connect_inner(endpoint, limits, true).await
    }

    async fn connect_inner(
        endpoint: &Endpoint,
        limits: Limits,
        fresh_token: bool,
    ) -> Result<Session> {
        let host = endpoint.address();
        let side = endpoint.side;
        let tcp = match tokio::time::timeout(
            endpoint.timeout,
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => return Err(EngineError::Connect { side, host, source }),
            Err(_) => {
                return Err(EngineError::Timeout {
                    side,
                    host,
                    seconds: endpoint.timeout.as_secs(),
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match endpoint.security {
            Security::ImplicitTls => Box::new(tls_handshake(endpoint, tcp).await?),
            _ => Box::new(tcp),
        };
        let mut session = Session::over(io, side, host, endpoint.timeout, limits);
        session.greeting().await?;
        if endpoint.security == Security::StartTls {
            session.refresh_capabilities().await?;
            if !session.caps.starttls() {
                return Err(session.config_error(
                    "the server does not offer STARTTLS; use imaps:// or allow plaintext explicitly",
                ));
            }
            session
                .run_ok(CommandBuilder::new("STARTTLS").build(), "STARTTLS")
                .await?;
            // Nothing may be buffered past the STARTTLS reply (that would be an injection).
            if !session.io.buffer().is_empty() || !session.pending.is_empty() {
                return Err(session.config_error("data after STARTTLS reply; refusing to continue"));
            }
            let Session { io, .. } = session;
            let tcp = io.into_inner();
            let tls = tls_handshake_boxed(endpoint, tcp).await?;
            session = Session::over(
                Box::new(tls),
                side,
                endpoint.address(),
                endpoint.timeout,
                limits,
            );
            session.next_tag = 100;
        }
        session.user = endpoint.user.clone();
        let outcome = login::login(&mut session, endpoint, fresh_token).await?;
        session.authenticated = true;
        session.renewal = outcome.renewal;
        if session.caps.is_empty() || outcome.stale_capabilities {
            session.refresh_capabilities().await?;
        }
        tracing::debug!(side = %side, host = %session.host, caps = %session.caps.summary(), "logged in");
        Ok(session)
    }

    /// A session over an already connected stream, before its greeting.
    fn over(io: Box<dyn Io>, side: Side, host: String, timeout: Duration, limits: Limits) -> Self {
        let mut session = Session {
            io: BufReader::with_capacity(64 * 1024, io),
            next_tag: 1,
            pending: VecDeque::new(),
            caps: Capabilities::default(),
            side,
            host,
            timeout,
            bye: None,
            limits,
            unanswered: 0,
            authenticated: false,
            budget: CommandBudget {
                what: String::new(),
                deadline: Instant::now(),
                seconds: 0,
                untagged: 0,
                bytes: 0,
                body: None,
                streaming: false,
            },
            renewal: None,
            user: String::new(),
            sent_large_nonsync: false,
            unreadable: 0,
        };
        session.begin("greeting".to_owned(), None, false);
        session
    }

    /// A session reading from any byte stream, as if logged in or not: for fuzzing the
    /// response reader (literal framing and caps) without a network.
    #[doc(hidden)]
    pub fn over_stream<S>(stream: S, authenticated: bool, limits: Limits) -> Session
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut session = Session::over(
            Box::new(stream),
            Side::Source,
            "stream".to_owned(),
            Duration::from_secs(5),
            limits,
        );
        session.authenticated = authenticated;
        session
    }

    /// Reads the greeting (and the capabilities it names) as `host`, for tests of
    /// commands over a scripted stream.
    #[cfg(test)]
    pub(crate) async fn greet_for_test(&mut self, host: &str) -> Result<()> {
        self.host = host.to_owned();
        self.greeting().await
    }

    /// Starts the caps and the deadline of a new command; `body` is what its message
    /// bodies may bring (body fetches only).
    fn begin(&mut self, what: String, body: Option<BodyBudget>, streaming: bool) {
        let base = self
            .limits
            .command_deadline
            .unwrap_or(self.timeout.saturating_mul(10));
        let extra = body.map_or(0, |b| b.total / Limits::SLOWEST_BODY_RATE);
        let allowed = base.saturating_add(Duration::from_secs(extra));
        self.budget = CommandBudget {
            what,
            deadline: later(allowed),
            seconds: allowed.as_secs(),
            untagged: 0,
            bytes: 0,
            body,
            streaming,
        };
    }

    /// What this connection accepts from its server.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn hostile(&self, what: String) -> EngineError {
        EngineError::Hostile {
            side: self.side,
            host: self.host.clone(),
            what,
        }
    }

    /// When the next read or write must be done by: the per-step timeout or the
    /// command's deadline, whichever is first (`true` when it is the deadline).
    fn step_deadline(&self) -> (Instant, bool) {
        let step = later(self.timeout);
        if self.budget.deadline < step {
            (self.budget.deadline, true)
        } else {
            (step, false)
        }
    }

    /// When the next read must be done by: [`Session::step_deadline`], plus the time the
    /// bytes written since the server last answered may take to reach it at the slowest
    /// rate allowed (socket and network buffers hold several megabytes: after a large
    /// APPEND over a slow link the reply comes only once they have drained).
    fn read_deadline(&self) -> (Instant, bool) {
        let in_flight = self.unanswered.min(IN_FLIGHT_MAX);
        let step = later(
            self.timeout
                .saturating_add(Duration::from_secs(in_flight / Limits::SLOWEST_BODY_RATE)),
        );
        if self.budget.deadline < step {
            (self.budget.deadline, true)
        } else {
            (step, false)
        }
    }

    /// The error for a step that ran out of time.
    fn elapsed(&self, by_deadline: bool) -> EngineError {
        if by_deadline {
            self.hostile(format!(
                "{} did not finish within {} s (the server sends too slowly or never ends)",
                self.budget.what, self.budget.seconds
            ))
        } else {
            EngineError::Timeout {
                side: self.side,
                host: self.host.clone(),
                seconds: self.timeout.as_secs(),
            }
        }
    }

    /// The largest literal accepted now, and the words for where it came.
    fn literal_limit(&self) -> (u64, String) {
        if !self.authenticated {
            return (self.limits.pre_auth_literal, "before login".to_owned());
        }
        match self.budget.body {
            Some(body) => (
                body.largest,
                format!(
                    "in reply to {} (a message body; larger than the listed size allows, or than the maximum message size)",
                    self.budget.what
                ),
            ),
            None => (
                self.limits.response_literal,
                format!("in reply to {}", self.budget.what),
            ),
        }
    }

    /// Counts `n` more bytes against the command's byte cap.
    fn spend(&mut self, n: u64) -> Result<()> {
        self.budget.bytes = self.budget.bytes.saturating_add(n);
        let cap = if !self.authenticated {
            PRE_AUTH_BYTES
        } else if self.budget.streaming {
            self.limits
                .bytes_per_command
                .saturating_add(self.budget.body.map_or(0, |b| b.total))
        } else {
            self.limits.kept_bytes
        };
        if self.budget.bytes > cap {
            return Err(self.hostile(format!(
                "sent more than {cap} bytes in reply to {}",
                self.budget.what
            )));
        }
        Ok(())
    }

    /// Whether literals over 4 KiB go without waiting for `+`: LITERAL+, unless this
    /// server refused one before.
    pub fn large_literals_nonsync(&self) -> bool {
        self.caps.literal_plus() && !nonsync_refused_by(&self.host)
    }

    /// Whether `done`, the end of the last command, refused a large non-synchronising
    /// literal (`[TOOBIG]` after one was sent): then the server is remembered, later
    /// commands wait for `+`, and the caller may send the same command again.
    pub fn refused_nonsync_literal(&mut self, done: &StatusLine) -> bool {
        if done.status == Status::Ok
            || done.code.as_deref() != Some("TOOBIG")
            || !self.sent_large_nonsync
        {
            return false;
        }
        tracing::warn!(side = %self.side, host = %self.host, words = %done.words(), "the server refused a large non-synchronising literal; sending synchronising literals from now on");
        remember_nonsync_refused(&self.host);
        self.sent_large_nonsync = false;
        true
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// When the access token this session logged in with expires (bearer logins whose
    /// token said so; `None` otherwise).
    pub fn token_expires_at(&self) -> Option<SystemTime> {
        self.renewal.map(|r| r.expires_at)
    }

    /// Whether the token this session logged in with expires so soon that the session
    /// should be replaced before the next command (see [`Renewal::plan`]).
    pub fn renewal_due(&self, now: SystemTime) -> bool {
        self.renewal.is_some_and(|r| r.due(now))
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn config_error(&self, message: &str) -> EngineError {
        EngineError::Config {
            side: self.side,
            host: self.host.clone(),
            message: message.to_owned(),
        }
    }

    pub(crate) fn refused(&self, command: &str, line: &StatusLine) -> EngineError {
        // Exchange logs in, then refuses every command: a wrong password or no licence.
        if self.authenticated && login::says_not_connected(&line.text) {
            return EngineError::Login {
                side: self.side,
                host: self.host.clone(),
                user: self.user.clone(),
                words: login::not_connected_explained(line.words()),
                bearer: false,
            };
        }
        EngineError::Refused {
            side: self.side,
            host: self.host.clone(),
            command: command.to_owned(),
            words: line.words(),
            code: line.code.clone(),
        }
    }

    fn lost(&self, message: impl Into<String>) -> EngineError {
        let mut message = message.into();
        if let Some(bye) = &self.bye {
            message = format!("{message} (server said BYE {bye})");
        }
        EngineError::ConnectionLost {
            side: self.side,
            host: self.host.clone(),
            message,
        }
    }

    async fn greeting(&mut self) -> Result<()> {
        match self.read_response().await? {
            Response::UntaggedStatus(line)
                if line.status == Status::Ok || line.status == Status::Preauth =>
            {
                self.take_capability_code(&line);
                Ok(())
            }
            Response::UntaggedStatus(line) => {
                Err(self.lost(format!("greeting was {}", line.words())))
            }
            _ => Err(self.config_error("this does not look like an IMAP server (no greeting)")),
        }
    }

    pub(crate) fn take_capability_code(&mut self, line: &StatusLine) {
        if line.code.as_deref() == Some("CAPABILITY") {
            self.caps = Capabilities::from_atoms(line.code_args.iter().filter_map(Value::as_atom));
        }
    }

    pub async fn refresh_capabilities(&mut self) -> Result<()> {
        let reply = self
            .run_ok(CommandBuilder::new("CAPABILITY").build(), "CAPABILITY")
            .await?;
        for r in &reply.untagged {
            if let Response::Untagged(values) = r {
                if values
                    .first()
                    .and_then(Value::as_atom)
                    .is_some_and(|a| a.eq_ignore_ascii_case("CAPABILITY"))
                {
                    self.caps = Capabilities::from_atoms(values.iter().filter_map(Value::as_atom));
                }
            }
        }
        Ok(())
    }

    /// Writes in chunks, each under the per-step timeout: a slow link that keeps taking
    /// bytes finishes however long the whole takes (within the command's deadline,
    /// which grows with what is sent); a link that takes nothing for a whole step is dead.
    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let mut sent = 0;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            let (until, by_deadline) = self.step_deadline();
            match tokio::time::timeout_at(until, self.io.write_all(chunk)).await {
                Ok(Ok(())) => {
                    sent += chunk.len();
                    self.unanswered = self.unanswered.saturating_add(chunk.len() as u64);
                }
                Ok(Err(e)) => return Err(self.lost(e.to_string())),
                Err(_) if by_deadline => return Err(self.elapsed(true)),
                Err(_) => {
                    return Err(self.lost(format!(
                    "no progress for {} s while sending {} ({} of {} bytes sent): the link is dead",
                    self.timeout.as_secs(),
                    self.budget.what,
                    sent,
                    bytes.len()
                )))
                }
            }
        }
        Ok(())
    }

    /// Gives the current command time to send `bytes` more at the slowest rate allowed.
    fn allow_sending(&mut self, bytes: u64) {
        let extra = Duration::from_secs(bytes / Limits::SLOWEST_BODY_RATE);
        self.budget.deadline = self
            .budget
            .deadline
            .checked_add(extra)
            .unwrap_or(self.budget.deadline);
        self.budget.seconds = self.budget.seconds.saturating_add(extra.as_secs());
    }

    pub(crate) async fn flush(&mut self) -> Result<()> {
        let (until, by_deadline) = self.step_deadline();
        match tokio::time::timeout_at(until, self.io.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.lost(e.to_string())),
            Err(_) => Err(self.elapsed(by_deadline)),
        }
    }

    fn new_tag(&mut self) -> String {
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Writes `TAG text CRLF` and flushes; returns the tag.
    pub(crate) async fn write_line(&mut self, text: &[u8]) -> Result<String> {
        self.begin(command_name(text), None, false);
        let tag = self.new_tag();
        let mut line = Vec::with_capacity(text.len() + tag.len() + 3);
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(text);
        line.extend_from_slice(b"\r\n");
        self.write_raw(&line).await?;
        self.flush().await?;
        Ok(tag)
    }

    /// Reads one whole response, literals included. Literals are read as their bytes
    /// arrive (allocated from the announced length only for a message body, whose cap
    /// follows from the listed size) and capped by the state of the
    /// connection; every response and byte counts against the command's caps.
    ///
    /// A response that cannot be parsed does not end the command: an untagged one is
    /// skipped (and logged), a status response keeps its status and words.
    pub async fn read_response(&mut self) -> Result<Response> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(r);
        }
        self.read_from_server().await
    }

    /// How many responses this session skipped because they could not be parsed.
    pub fn unreadable_responses(&self) -> u64 {
        self.unreadable
    }

    /// The next response from the server itself, never one parked in `pending`.
    async fn read_from_server(&mut self) -> Result<Response> {
        loop {
            let raw = Bytes::from(self.read_raw_response().await?);
            let error = match wire::parse_shared(&raw) {
                Ok(response) => return Ok(self.seen(response)),
                Err(e) => e,
            };
            if error.is_hostile() {
                return Err(EngineError::Protocol {
                    side: self.side,
                    host: self.host.clone(),
                    source: error,
                });
            }
            if let Some(response) = wire::salvage_status(&raw) {
                tracing::warn!(side = %self.side, host = %self.host, reason = error.reason, excerpt = %error.excerpt, "status response not fully parsed; kept its status and words");
                return Ok(self.seen(response));
            }
            if raw.starts_with(b"* ") {
                self.unreadable += 1;
                tracing::warn!(side = %self.side, host = %self.host, reason = error.reason, excerpt = %error.excerpt, command = %self.budget.what, "skipped an unparseable untagged response");
                continue;
            }
            return Err(EngineError::Protocol {
                side: self.side,
                host: self.host.clone(),
                source: error,
            });
        }
    }

    fn seen(&mut self, response: Response) -> Response {
        if let Response::UntaggedStatus(line) = &response {
            if line.status == Status::Bye {
                self.bye = Some(match &line.code {
                    Some(code) => format!("[{code}] {}", line.text),
                    None => line.text.clone(),
                });
                if line.code.as_deref() == Some("TOOBIG") && self.sent_large_nonsync {
                    tracing::warn!(side = %self.side, host = %self.host, "the server closed on a large non-synchronising literal; sending synchronising literals from now on");
                    remember_nonsync_refused(&self.host);
                }
            }
        }
        response
    }

    /// One response's bytes, lines and literals, counted against the command's caps.
    async fn read_raw_response(&mut self) -> Result<Vec<u8>> {
        let mut raw = Vec::new();
        loop {
            let start = raw.len();
            let n = self.read_line_into(&mut raw).await?;
            if n == 0 {
                return Err(self.lost("closed by the server"));
            }
            if !raw.ends_with(b"\n") {
                return Err(self.lost("closed in the middle of a response"));
            }
            if start == 0 && wire::is_text_only(&raw) {
                break;
            }
            let Some(announced) = wire::literal_announced(&raw[start..]) else {
                break;
            };
            let (limit, context) = self.literal_limit();
            if announced > limit {
                return Err(EngineError::LiteralTooLarge {
                    side: self.side,
                    host: self.host.clone(),
                    announced,
                    limit,
                    context,
                });
            }
            if self.budget.body.is_some() {
                // A message body, within what its listed size allows: one allocation of
                // its size, not a buffer doubled (and copied) as it grows.
                // Refused (no such memory): it grows as the bytes arrive instead.
                let _ = raw.try_reserve_exact(usize::try_from(announced).unwrap_or(0));
            }
            self.read_literal_into(&mut raw, announced).await?;
        }
        self.budget.untagged += u64::from(raw.starts_with(b"* "));
        let cap = if self.budget.streaming {
            self.limits.untagged_per_command
        } else {
            self.limits.kept_responses
        };
        if self.budget.untagged > cap {
            return Err(self.hostile(format!(
                "sent more than {cap} untagged responses in reply to {}",
                self.budget.what
            )));
        }
        Ok(raw)
    }

    /// Appends a literal of `len` bytes to `raw`, growing it only by what has arrived.
    async fn read_literal_into(&mut self, raw: &mut Vec<u8>, len: u64) -> Result<()> {
        let mut left = len;
        while left > 0 {
            let (until, by_deadline) = self.read_deadline();
            let took = match tokio::time::timeout_at(until, self.io.fill_buf()).await {
                Ok(Ok([])) => Err("closed while sending a literal".to_owned()),
                Ok(Ok(buf)) => {
                    let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    raw.extend_from_slice(&buf[..take]);
                    Ok(take)
                }
                Ok(Err(e)) => Err(format!("closed while sending a literal: {e}")),
                Err(_) => return Err(self.elapsed(by_deadline)),
            };
            let took = took.map_err(|m| self.lost(m))?;
            self.unanswered = 0;
            self.io.consume(took);
            self.spend(took as u64)?;
            left -= took as u64;
        }
        Ok(())
    }

    async fn read_line_into(&mut self, raw: &mut Vec<u8>) -> Result<usize> {
        let mut total = 0;
        loop {
            let (until, by_deadline) = self.read_deadline();
            let mut limited = (&mut self.io).take((MAX_LINE + 2) as u64);
            let n = match tokio::time::timeout_at(until, limited.read_until(b'\n', raw)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(self.lost(e.to_string())),
                Err(_) => return Err(self.elapsed(by_deadline)),
            };
            total += n;
            if n > 0 {
                self.unanswered = 0;
            }
            self.spend(n as u64)?;
            if n == 0 || raw.ends_with(b"\n") {
                return Ok(total);
            }
            if total > MAX_LINE {
                return Err(self.lost("response line too long"));
            }
        }
    }

    /// Sends a command (waiting for `+` before each synchronising literal) and returns its
    /// tag, or the tagged refusal if the server refused before the command was complete.
    pub async fn start(
        &mut self,
        parts: Vec<Part>,
    ) -> Result<std::result::Result<String, StatusLine>> {
        self.start_with(parts, None, false).await
    }

    /// [`Session::start`] for a command whose message bodies may bring `body`, and whose
    /// responses are handed on one by one when `streaming`.
    async fn start_with(
        &mut self,
        parts: Vec<Part>,
        body: Option<BodyBudget>,
        streaming: bool,
    ) -> Result<std::result::Result<String, StatusLine>> {
        let what = match parts.first() {
            Some(Part::Text(t)) => command_name(t),
            _ => String::new(),
        };
        self.begin(what, body, streaming);
        let literals: u64 = parts
            .iter()
            .map(|p| match p {
                Part::Literal(b) => b.len() as u64,
                Part::Text(_) => 0,
            })
            .sum();
        self.allow_sending(literals);
        self.sent_large_nonsync = false;
        let large_nonsync = self.large_literals_nonsync();
        let tag = self.new_tag();
        let mut out: Vec<u8> = Vec::new();
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        for part in parts {
            match part {
                Part::Text(t) => out.extend_from_slice(&t),
                Part::Literal(bytes) => {
                    let small = bytes.len() <= LITERAL_MINUS_MAX;
                    let non_sync = large_nonsync
                        || (small && (self.caps.literal_minus() || self.caps.literal_plus()));
                    if non_sync {
                        self.sent_large_nonsync |= !small;
                        out.extend_from_slice(format!("{{{}+}}\r\n", bytes.len()).as_bytes());
                        if bytes.len() > WRITE_CHUNK {
                            // A message body goes from its own buffer, not copied into
                            // the command's.
                            self.write_raw(&out).await?;
                            out.clear();
                            self.write_raw(&bytes).await?;
                        } else {
                            out.extend_from_slice(&bytes);
                        }
                        if out.len() > 256 * 1024 {
                            self.write_raw(&out).await?;
                            out.clear();
                        }
                    } else {
                        out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
                        self.write_raw(&out).await?;
                        out.clear();
                        self.flush().await?;
                        // Untagged responses that come first are parked for the caller;
                        // the wait reads the server only (a parked one read back here
                        // would be parked again, forever).
                        loop {
                            match self.read_from_server().await? {
                                Response::Continue(_) => break,
                                Response::Tagged { tag: t, line } if t == tag => {
                                    return Ok(Err(line))
                                }
                                other => self.pending.push_back(other),
                            }
                        }
                        self.write_raw(&bytes).await?;
                    }
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        self.write_raw(&out).await?;
        self.flush().await?;
        Ok(Ok(tag))
    }

    /// Reads the next response to the command `tag`: `Ok(Some(untagged))` or the tagged end.
    pub async fn next_of(
        &mut self,
        tag: &str,
    ) -> Result<std::result::Result<Response, StatusLine>> {
        match self.read_response().await? {
            Response::Tagged { tag: t, line } if t == tag => Ok(Err(line)),
            Response::Tagged { tag: t, line } => {
                tracing::debug!(side = %self.side, tag = %t, words = %line.words(), "stray tagged response");
                Ok(Ok(Response::Untagged(Vec::new())))
            }
            Response::Continue(_) => Ok(Ok(Response::Untagged(Vec::new()))),
            other => Ok(Ok(other)),
        }
    }

    /// Runs a command to its end; the caller decides what a NO/BAD means.
    pub async fn run(&mut self, parts: Vec<Part>) -> Result<Reply> {
        let tag = match self.start(parts).await? {
            Ok(tag) => tag,
            Err(done) => {
                return Ok(Reply {
                    untagged: std::mem::take(&mut self.pending).into(),
                    done,
                })
            }
        };
        let mut untagged = Vec::new();
        loop {
            match self.next_of(&tag).await? {
                Ok(r) => untagged.push(r),
                Err(done) => return Ok(Reply { untagged, done }),
            }
        }
    }

    /// Runs a command that must succeed; `what` names it in errors (never arguments).
    pub async fn run_ok(&mut self, parts: Vec<Part>, what: &str) -> Result<Reply> {
        let reply = self.run(parts).await?;
        if reply.done.status != Status::Ok {
            return Err(self.refused(what, &reply.done));
        }
        Ok(reply)
    }

    /// SELECT (read-write) or EXAMINE (read-only) a mailbox by its wire name.
    /// The name goes with exactly its bytes (a literal when they are 8-bit).
    pub async fn select(
        &mut self,
        wire_name: impl AsRef<[u8]>,
        read_only: bool,
    ) -> Result<MailboxInfo> {
        let wire_name = wire_name.as_ref();
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let reply = self
            .run_ok(CommandBuilder::new(verb).string(wire_name).build(), verb)
            .await?;
        let mut info = MailboxInfo::default();
        for r in reply.untagged.iter() {
            match r {
                Response::UntaggedStatus(line) => match line.code.as_deref() {
                    Some("UIDVALIDITY") => {
                        info.uidvalidity = first_u32(&line.code_args).unwrap_or(0)
                    }
                    Some("UIDNEXT") => info.uidnext = first_u32(&line.code_args),
                    Some("PERMANENTFLAGS") => {
                        info.permanent_flags = line
                            .code_args
                            .first()
                            .and_then(Value::as_list)
                            .map(|l| l.iter().filter_map(Value::as_text).collect())
                    }
                    _ => {}
                },
                Response::Untagged(values)
                    if values
                        .get(1)
                        .and_then(Value::as_atom)
                        .is_some_and(|a| a.eq_ignore_ascii_case("EXISTS")) =>
                {
                    info.exists = values.first().and_then(Value::as_u64).unwrap_or(0) as u32;
                }
                _ => {}
            }
        }
        if info.uidnext.is_none() {
            info.uidnext = self.status(wire_name).await?.uidnext;
        }
        Ok(info)
    }

    /// [`Session::status`] with an owned name, for retry loops.
    pub async fn status_owned(&mut self, wire_name: WireName) -> Result<MailboxInfo> {
        self.status(&wire_name).await
    }

    /// STATUS (UIDNEXT UIDVALIDITY MESSAGES) of a mailbox.
    pub async fn status(&mut self, wire_name: impl AsRef<[u8]>) -> Result<MailboxInfo> {
        self.status_items(wire_name.as_ref(), " (UIDNEXT UIDVALIDITY MESSAGES)")
            .await
    }

    /// [`Session::status`] with HIGHESTMODSEQ too: only for a server offering CONDSTORE.
    pub async fn status_modseq(&mut self, wire_name: impl AsRef<[u8]>) -> Result<MailboxInfo> {
        self.status_items(
            wire_name.as_ref(),
            " (UIDNEXT UIDVALIDITY MESSAGES HIGHESTMODSEQ)",
        )
        .await
    }

    async fn status_items(&mut self, wire_name: &[u8], items: &str) -> Result<MailboxInfo> {
        let reply = self
            .run_ok(
                CommandBuilder::new("STATUS")
                    .string(wire_name)
                    .raw(items)
                    .build(),
                "STATUS",
            )
            .await?;
        let mut info = MailboxInfo::default();
        for r in &reply.untagged {
            if let Response::Untagged(values) = r {
                apply_status(values, &mut info);
            }
        }
        Ok(info)
    }

    /// `LIST "" "*" RETURN (STATUS (items))` (RFC 5819, for a server offering
    /// LIST-STATUS): every folder's STATUS in one command, by wire name.
    pub async fn list_status(
        &mut self,
        items: &str,
    ) -> Result<std::collections::HashMap<WireName, MailboxInfo>> {
        let reply = self
            .run_ok(
                CommandBuilder::new("LIST \"\" \"*\" RETURN (STATUS (")
                    .raw(items)
                    .raw("))")
                    .build(),
                "LIST (STATUS)",
            )
            .await?;
        let mut out = std::collections::HashMap::new();
        for r in &reply.untagged {
            if let Response::Untagged(values) = r {
                let Some(name) = values.get(1).and_then(Value::as_name_bytes) else {
                    continue;
                };
                let mut info = MailboxInfo::default();
                if apply_status(values, &mut info) {
                    out.insert(WireName::new(name), info);
                }
            }
        }
        Ok(out)
    }

    /// `UID FETCH set (items)`, calling `each` for every FETCH response as it arrives
    /// (so bodies need not all be held at once). Returns the tagged status, checked by the
    /// caller: async-imap's lesson is that an unchecked NO looks like an empty success.
    pub async fn uid_fetch(
        &mut self,
        set: &str,
        items: &str,
        each: impl FnMut(FetchItem),
    ) -> Result<StatusLine> {
        self.uid_fetch_bodies(set, items, None, each).await
    }

    /// [`Session::uid_fetch`] for message bodies: `body` is what the listed sizes allow.
    pub async fn uid_fetch_bodies(
        &mut self,
        set: &str,
        items: &str,
        body: Option<BodyBudget>,
        each: impl FnMut(FetchItem),
    ) -> Result<StatusLine> {
        self.uid_fetch_parts(uid_fetch_command(set, items, ""), body, each)
            .await
    }

    /// `UID FETCH set (items) (CHANGEDSINCE modseq)` (RFC 7162): only the messages whose
    /// mod-sequence is above `modseq` (changed flags, and every message added since).
    pub async fn uid_fetch_changed(
        &mut self,
        set: &str,
        items: &str,
        modseq: u64,
        each: impl FnMut(FetchItem),
    ) -> Result<StatusLine> {
        let modifier = format!(" (CHANGEDSINCE {modseq})");
        self.uid_fetch_parts(uid_fetch_command(set, items, &modifier), None, each)
            .await
    }

    async fn uid_fetch_parts(
        &mut self,
        parts: Vec<Part>,
        body: Option<BodyBudget>,
        mut each: impl FnMut(FetchItem),
    ) -> Result<StatusLine> {
        let tag = match self.start_with(parts, body, true).await? {
            Ok(tag) => tag,
            Err(done) => return Ok(done),
        };
        loop {
            match self.next_of(&tag).await? {
                Ok(Response::Untagged(values)) => {
                    if let Some(item) = FetchItem::from_values(values) {
                        each(item);
                    }
                }
                Ok(_) => {}
                Err(done) => return Ok(done),
            }
        }
    }

    /// `UID STORE uid FLAGS.SILENT (flags)` (`op` is `FLAGS`, `+FLAGS` or `-FLAGS`).
    pub async fn uid_store(&mut self, set: &str, op: &str, flags: &[String]) -> Result<StatusLine> {
        let parts = CommandBuilder::new("UID STORE ")
            .raw(set)
            .raw(&format!(" {op}.SILENT ("))
            .raw(&flags.join(" "))
            .raw(")")
            .build();
        Ok(self.run(parts).await?.done)
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            if self.write_line(b"LOGOUT").await.is_ok() {
                let _ = self.read_response().await;
            }
        })
        .await;
    }
}

/// `now + wait`, for any wait a user may configure (a huge one means "a year").
fn later(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// The verb of a command line (`UID FETCH`, `LOGIN`) for errors: never its arguments,
/// which may hold a password.
fn command_name(text: &[u8]) -> String {
    let mut words = text
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .map(|w| {
            String::from_utf8_lossy(w)
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect::<String>()
                .to_ascii_uppercase()
        });
    let mut name = words.next().unwrap_or_default();
    if name == "UID" {
        if let Some(second) = words.next() {
            name = format!("UID {second}");
        }
    }
    name
}

fn first_u32(values: &[Value]) -> Option<u32> {
    values.first()?.as_u64().and_then(|v| u32::try_from(v).ok())
}

async fn tls_handshake(
    endpoint: &Endpoint,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let config = tls_config(endpoint)?;
    let name = server_name(endpoint)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    tls_result(
        endpoint,
        tokio::time::timeout(endpoint.timeout, connector.connect(name, tcp)).await,
    )
}

async fn tls_handshake_boxed(
    endpoint: &Endpoint,
    inner: Box<dyn Io>,
) -> Result<tokio_rustls::client::TlsStream<Box<dyn Io>>> {
    let config = tls_config(endpoint)?;
    let name = server_name(endpoint)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    tls_result(
        endpoint,
        tokio::time::timeout(endpoint.timeout, connector.connect(name, inner)).await,
    )
}

fn tls_result<T>(
    endpoint: &Endpoint,
    r: std::result::Result<std::io::Result<T>, tokio::time::error::Elapsed>,
) -> Result<T> {
    match r {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(EngineError::Tls {
            side: endpoint.side,
            host: endpoint.address(),
            message: e.to_string(),
        }),
        Err(_) => Err(EngineError::Timeout {
            side: endpoint.side,
            host: endpoint.address(),
            seconds: endpoint.timeout.as_secs(),
        }),
    }
}

fn server_name(endpoint: &Endpoint) -> Result<rustls::pki_types::ServerName<'static>> {
    rustls::pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|_| EngineError::Tls {
        side: endpoint.side,
        host: endpoint.address(),
        message: format!("{:?} is not a valid host name for TLS", endpoint.host),
    })
}

fn tls_config(endpoint: &Endpoint) -> Result<Arc<rustls::ClientConfig>> {
    let tls_err = |message: String| EngineError::Tls {
        side: endpoint.side,
        host: endpoint.address(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &endpoint.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| tls_err(format!("cannot read CA file {}: {e}", path.display())))?;
        let mut found = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| tls_err(format!("CA file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| tls_err(format!("CA file {}: {e}", path.display())))?;
            found += 1;
        }
        if found == 0 {
            return Err(tls_err(format!(
                "CA file {} holds no certificate",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `UID FETCH set (items)` and a fetch modifier (`" (CHANGEDSINCE n)"`, or none).
fn uid_fetch_command(set: &str, items: &str, modifier: &str) -> Vec<Part> {
    CommandBuilder::new("UID FETCH ")
        .raw(set)
        .raw(" (")
        .raw(items)
        .raw(")")
        .raw(modifier)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session reading `script` (writes go nowhere), logged in or not.
    fn scripted(script: &[u8], authenticated: bool, limits: Limits) -> Session {
        let stream = tokio::io::join(std::io::Cursor::new(script.to_vec()), tokio::io::sink());
        Session::over_stream(stream, authenticated, limits)
    }

    #[tokio::test]
    async fn terabyte_literal_in_the_greeting_is_refused_before_reading_it() {
        // (`* OK {n}` is a greeting's words, not a literal: see below.)
        let mut s = scripted(
            b"* CAPABILITY {1099511627776}\r\n",
            false,
            Limits::default(),
        );
        match s.read_response().await {
            Err(EngineError::LiteralTooLarge {
                announced, limit, ..
            }) => assert_eq!((announced, limit), (1 << 40, 64 << 10)),
            other => panic!("{other:?}"),
        }
        // Twelve digits, which the old reader did reserve (and abort on).
        let mut s = scripted(b"* X {999999999999}\r\n", false, Limits::default());
        assert!(matches!(
            s.read_response().await,
            Err(EngineError::LiteralTooLarge { .. })
        ));
        // After login, far more is allowed, but never a terabyte.
        let mut s = scripted(
            b"* 1 FETCH (BODY[] {1099511627776}\r\n",
            true,
            Limits::default(),
        );
        let err = s.read_response().await.unwrap_err();
        assert!(err.to_string().contains("1099511627776 bytes"), "{err}");
    }

    #[tokio::test]
    async fn literals_are_read_whole_when_they_are_within_the_cap() {
        let mut body = b"* 1 FETCH (UID 4 BODY[] {200000}\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', 200_000));
        body.extend_from_slice(b")\r\n");
        let mut s = scripted(&body, true, Limits::default());
        let Response::Untagged(v) = s.read_response().await.unwrap() else {
            panic!()
        };
        let item = FetchItem::from_values(v).unwrap();
        assert_eq!(item.body.map(|b| b.len()), Some(200_000));
        // Announced but cut short: an error, not a wait or a zero-filled body.
        let mut s = scripted(b"* 1 FETCH (BODY[] {10}\r\nabc", true, Limits::default());
        assert!(matches!(
            s.read_response().await,
            Err(EngineError::ConnectionLost { .. })
        ));
    }

    #[tokio::test]
    async fn body_far_above_the_listed_size_is_refused() {
        let limits = Limits::default();
        let budget = BodyBudget {
            largest: limits.body_allowance(100),
            total: limits.body_allowance(100),
        };
        let script = b"* 1 FETCH (UID 1 BODY[] {5000000}\r\n";
        let mut s = scripted(script, true, limits);
        let err = s
            .uid_fetch_bodies("1", "UID BODY.PEEK[]", Some(budget), |_| {})
            .await
            .unwrap_err();
        let EngineError::LiteralTooLarge {
            announced,
            limit,
            context,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((*announced, *limit), (5_000_000, 200 + (64 << 10)));
        assert!(context.contains("UID FETCH"), "{context}");
        // And never above the maximum message size, whatever the listing said.
        let limits = Limits {
            max_message: 1000,
            ..Limits::default()
        };
        assert_eq!(limits.body_allowance(1 << 30), 1000);
    }

    #[tokio::test]
    async fn a_flood_of_untagged_responses_is_cut_off() {
        let limits = Limits {
            kept_responses: 5,
            untagged_per_command: 8,
            ..Limits::default()
        };
        let flood = b"* 1 EXISTS\r\n".repeat(20);
        let mut s = scripted(&flood, true, limits);
        let err = s
            .run(CommandBuilder::new("NOOP").build())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("more than 5 untagged responses in reply to NOOP"),
            "{err}"
        );
        let mut s = scripted(&flood, true, limits);
        let err = s.uid_fetch("1:*", "UID", |_| {}).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("more than 8 untagged responses in reply to UID FETCH"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn kept_responses_are_capped_in_bytes_too() {
        let limits = Limits {
            kept_bytes: 1000,
            ..Limits::default()
        };
        let line = format!("* LIST () \"/\" {}\r\n", "n".repeat(300));
        let mut s = scripted(line.repeat(10).as_bytes(), true, limits);
        let err = s
            .run(CommandBuilder::new("LIST").build())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("more than 1000 bytes in reply to LIST"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_server_dripping_lines_hits_the_command_deadline() {
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            loop {
                if server.write_all(b"* OK still here\r\n").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let limits = Limits {
            command_deadline: Some(Duration::from_millis(300)),
            ..Limits::default()
        };
        let mut s = Session::over_stream(client, true, limits);
        let started = std::time::Instant::now();
        let err = s
            .run(CommandBuilder::new("LIST").build())
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            err.to_string().contains("LIST did not finish within"),
            "{err}"
        );
    }

    /// A session whose server reads what it is sent at `rate` bytes per 50 ms, or stops
    /// reading after `stop_after` bytes.
    fn reading_server(rate: usize, stop_after: usize) -> Session {
        let (client, mut server) = tokio::io::duplex(16 << 10);
        tokio::spawn(async move {
            let mut got = 0;
            let mut buf = vec![0u8; rate];
            while got < stop_after {
                match tokio::io::AsyncReadExt::read(&mut server, &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got += n,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Keeps the stream open, reading nothing more: a dead link.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(server);
        });
        let mut s = Session::over_stream(client, true, Limits::default());
        s.timeout = Duration::from_millis(500);
        s
    }

    #[tokio::test]
    async fn a_slow_link_that_keeps_taking_bytes_finishes_a_long_write() {
        // 1 MB at about 640 KB/s: about 1.6 s, three times the per-step timeout.
        let mut s = reading_server(32 << 10, usize::MAX);
        s.begin("APPEND".into(), None, false);
        let started = std::time::Instant::now();
        s.write_raw(&vec![b'x'; 1 << 20]).await.unwrap();
        assert!(started.elapsed() > Duration::from_millis(500));
    }

    #[tokio::test]
    async fn a_write_that_makes_no_progress_is_a_dead_link() {
        let mut s = reading_server(32 << 10, 200 << 10);
        s.begin("APPEND".into(), None, false);
        let err = s.write_raw(&vec![b'x'; 1 << 20]).await.unwrap_err();
        assert!(err.is_connection_failure());
        let text = err.to_string();
        assert!(
            text.contains("no progress for 0 s while sending APPEND")
                && text.contains("the link is dead"),
            "{text}"
        );
    }

    #[test]
    fn an_untagged_reply_before_the_continuation_is_kept_not_looped_on() {
        // No LITERAL+: a 5000-byte literal waits for `+`, and the server says EXISTS first.
        // Before the fix the parked EXISTS was read back and parked again, at full CPU.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let outcome = rt.block_on(async {
                let mut s = scripted(
                    b"* 1 EXISTS\r\n* 1 RECENT\r\n+ OK\r\nm1 OK [APPENDUID 3 1] Append completed\r\n",
                    true,
                    Limits::default(),
                );
                let parts = CommandBuilder::new("APPEND \"INBOX\" () ")
                    .literal_bytes(vec![b'x'; 5000])
                    .build();
                s.run(parts).await.map(|r| (r.untagged, r.done))
            });
            let _ = tx.send(outcome);
        });
        let started = std::time::Instant::now();
        let (untagged, done) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("APPEND did not finish within 5 s")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(done.status, Status::Ok);
        assert_eq!(done.code.as_deref(), Some("APPENDUID"));
        let words: Vec<String> = untagged
            .iter()
            .map(|r| match r {
                Response::Untagged(v) => v.iter().filter_map(Value::as_text).collect(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(words, vec!["1EXISTS", "1RECENT"]);
    }

    #[tokio::test]
    async fn status_text_ending_in_braces_is_not_read_as_a_literal() {
        let script = b"* OK [ALERT] Mailbox is at 95% of {90}\r\nm1 OK NOOP completed {3}\r\n";
        let mut s = scripted(script, true, Limits::default());
        let reply = s.run(CommandBuilder::new("NOOP").build()).await.unwrap();
        assert_eq!(reply.done.status, Status::Ok);
        assert_eq!(reply.done.text, "NOOP completed {3}");
        let [Response::UntaggedStatus(alert)] = reply.untagged.as_slice() else {
            panic!("{:?}", reply.untagged)
        };
        assert_eq!(alert.text, "Mailbox is at 95% of {90}");
        // Before login too (the greeting).
        let mut s = scripted(b"* OK Dovecot ready {12}\r\n", false, Limits::default());
        assert!(matches!(
            s.read_response().await.unwrap(),
            Response::UntaggedStatus(_)
        ));
    }

    #[tokio::test]
    async fn a_nesting_bomb_is_still_an_error_not_skipped() {
        let mut raw = b"* OK [X ".to_vec();
        raw.extend(std::iter::repeat_n(b'(', 10_000));
        raw.extend_from_slice(b"]\r\n");
        let mut s = scripted(&raw, false, Limits::default());
        let err = s.read_response().await.unwrap_err();
        assert!(err.to_string().contains("nested too deeply"), "{err}");
    }

    #[tokio::test]
    async fn an_unparseable_response_is_skipped_and_the_command_goes_on() {
        let script = b"* 1 FETCH (UID 3 RFC822.SIZE 10 BODY[] \"cut\r\n\
* 2 FETCH (UID 4 RFC822.SIZE 11 BODY[] {2}\r\nhi)\r\n\
m1 OK [X-BAD \"code] Fetch completed\r\n";
        let mut s = scripted(script, true, Limits::default());
        let mut got = Vec::new();
        let done = s
            .uid_fetch("3:4", "UID RFC822.SIZE BODY.PEEK[]", |item| {
                got.push((item.uid, item.body))
            })
            .await
            .unwrap();
        assert_eq!(done.status, Status::Ok);
        assert_eq!(done.text, "[X-BAD \"code] Fetch completed");
        assert_eq!(got, vec![(Some(4), Some(Bytes::from_static(b"hi")))]);
        assert_eq!(s.unreadable_responses(), 1);
    }

    #[test]
    fn command_names_never_carry_arguments() {
        assert_eq!(command_name(b"LOGIN \"alice\" \"s3cret\""), "LOGIN");
        assert_eq!(command_name(b"UID FETCH 1:* (UID FLAGS)"), "UID FETCH");
        assert_eq!(command_name(b"AUTHENTICATE PLAIN"), "AUTHENTICATE");
        assert_eq!(command_name("Ünï \u{1F600}".as_bytes()), "N");
    }

    #[test]
    fn fetch_items_are_read_from_a_response() {
        let raw = b"* 2 FETCH (UID 9 RFC822.SIZE 3 FLAGS (\\Seen) BODY[] NIL)\r\n";
        let Response::Untagged(v) = wire::parse_response(raw).unwrap() else {
            panic!()
        };
        let item = FetchItem::from_values(v).unwrap();
        assert_eq!((item.seq, item.uid, item.size), (2, Some(9), Some(3)));
        assert!(item.body_nil && item.body.is_none());
        assert_eq!(item.flags.unwrap(), vec!["\\Seen".to_string()]);
    }
}
