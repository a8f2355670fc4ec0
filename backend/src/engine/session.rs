//! One IMAP connection: connect (TLS/STARTTLS/plain), greet, log in, read capabilities,
//! then send commands and read their responses, every step under a timeout.

use super::capabilities::Capabilities;
use super::endpoint::{Auth, Endpoint, Security};
use super::error::{EngineError, Result, Side};
use super::wire::{self, CommandBuilder, Part, Response, Status, StatusLine, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Literals are read in chunks so that a stalled transfer trips the timeout.
const LITERAL_CHUNK: usize = 1 << 20;
/// No response line may be longer than this (literals excepted).
const MAX_LINE: usize = 1 << 20;

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
}

/// One `* n FETCH (...)` response, the items the engine uses.
#[derive(Debug, Clone, Default)]
pub struct FetchItem {
    pub seq: u32,
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    pub internal_date: Option<String>,
    pub size: Option<u64>,
    /// The whole message, from `BODY[]`, `RFC822` or `BINARY[]`.
    pub body: Option<Vec<u8>>,
    /// The server answered the body item with NIL.
    pub body_nil: bool,
    /// A `BODY[HEADER...]` section, when asked.
    pub header: Option<Vec<u8>>,
}

impl FetchItem {
    /// Takes the response apart: message bodies are moved out, not copied.
    fn from_values(values: Vec<Value>) -> Option<FetchItem> {
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
    /// Connects, secures and logs in; capabilities are known afterwards.
    pub async fn connect(endpoint: &Endpoint) -> Result<Session> {
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
        let mut session = Session {
            io: BufReader::with_capacity(64 * 1024, io),
            next_tag: 1,
            pending: VecDeque::new(),
            caps: Capabilities::default(),
            side,
            host,
            timeout: endpoint.timeout,
            bye: None,
        };
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
            session = Session {
                io: BufReader::with_capacity(64 * 1024, Box::new(tls)),
                next_tag: 100,
                pending: VecDeque::new(),
                caps: Capabilities::default(),
                side,
                host: endpoint.address(),
                timeout: endpoint.timeout,
                bye: None,
            };
        }
        session.login(endpoint).await?;
        if session.caps.is_empty() {
            session.refresh_capabilities().await?;
        }
        tracing::debug!(side = %side, host = %session.host, caps = %session.caps.summary(), "logged in");
        Ok(session)
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn config_error(&self, message: &str) -> EngineError {
        EngineError::Config {
            side: self.side,
            host: self.host.clone(),
            message: message.to_owned(),
        }
    }

    pub(crate) fn refused(&self, command: &str, line: &StatusLine) -> EngineError {
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

    fn take_capability_code(&mut self, line: &StatusLine) {
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

    async fn login(&mut self, endpoint: &Endpoint) -> Result<()> {
        let login_error = |words: String| EngineError::Login {
            side: endpoint.side,
            host: endpoint.address(),
            user: endpoint.user.clone(),
            words,
        };
        let done = match &endpoint.auth {
            Auth::Login => {
                let parts = CommandBuilder::new("LOGIN")
                    .string(endpoint.user.as_bytes())
                    .string(endpoint.password.expose().as_bytes())
                    .build();
                let reply = self.run(parts).await?;
                reply.done
            }
            Auth::Plain { authzid } => {
                let mut token = Vec::new();
                token.extend_from_slice(authzid.as_deref().unwrap_or("").as_bytes());
                token.push(0);
                token.extend_from_slice(endpoint.user.as_bytes());
                token.push(0);
                token.extend_from_slice(endpoint.password.expose().as_bytes());
                let tag = self.write_line(b"AUTHENTICATE PLAIN").await?;
                loop {
                    match self.read_response().await? {
                        Response::Continue(_) => {
                            let mut line = base64_encode(&token).into_bytes();
                            line.extend_from_slice(b"\r\n");
                            self.write_raw(&line).await?;
                            self.flush().await?;
                        }
                        Response::Tagged { tag: t, line } if t == tag => break line,
                        Response::UntaggedStatus(l) if l.status == Status::Bye => {
                            self.bye = Some(l.text.clone());
                        }
                        _ => {}
                    }
                }
            }
        };
        if done.status != Status::Ok {
            return Err(login_error(done.words()));
        }
        self.take_capability_code(&done);
        Ok(())
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let side = self.side;
        let host = self.host.clone();
        let secs = self.timeout.as_secs();
        match tokio::time::timeout(self.timeout, self.io.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.lost(e.to_string())),
            Err(_) => Err(EngineError::Timeout {
                side,
                host,
                seconds: secs,
            }),
        }
    }

    async fn flush(&mut self) -> Result<()> {
        let side = self.side;
        let host = self.host.clone();
        let secs = self.timeout.as_secs();
        match tokio::time::timeout(self.timeout, self.io.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.lost(e.to_string())),
            Err(_) => Err(EngineError::Timeout {
                side,
                host,
                seconds: secs,
            }),
        }
    }

    fn new_tag(&mut self) -> String {
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Writes `TAG text CRLF` and flushes; returns the tag.
    async fn write_line(&mut self, text: &[u8]) -> Result<String> {
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

    /// Reads one whole response, literals included.
    pub async fn read_response(&mut self) -> Result<Response> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(r);
        }
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
            match wire::literal_announced(&raw[start..]) {
                Some(len) => {
                    raw.reserve(len);
                    let mut left = len;
                    while left > 0 {
                        let chunk = left.min(LITERAL_CHUNK);
                        let from = raw.len();
                        raw.resize(from + chunk, 0);
                        let got = {
                            let buf = &mut raw[from..];
                            let side = self.side;
                            let host = self.host.clone();
                            let secs = self.timeout.as_secs();
                            match tokio::time::timeout(self.timeout, self.io.read_exact(buf)).await
                            {
                                Ok(r) => r,
                                Err(_) => {
                                    return Err(EngineError::Timeout {
                                        side,
                                        host,
                                        seconds: secs,
                                    })
                                }
                            }
                        };
                        if let Err(e) = got {
                            return Err(self.lost(format!("closed while sending a literal: {e}")));
                        }
                        left -= chunk;
                    }
                }
                None => break,
            }
        }
        let response = wire::parse_response(&raw).map_err(|source| EngineError::Protocol {
            side: self.side,
            host: self.host.clone(),
            source,
        })?;
        if let Response::UntaggedStatus(line) = &response {
            if line.status == Status::Bye {
                self.bye = Some(line.text.clone());
            }
        }
        Ok(response)
    }

    async fn read_line_into(&mut self, raw: &mut Vec<u8>) -> Result<usize> {
        let side = self.side;
        let host = self.host.clone();
        let secs = self.timeout.as_secs();
        let mut total = 0;
        loop {
            let limited = (&mut self.io).take((MAX_LINE + 2) as u64);
            let mut limited = limited;
            let read = tokio::time::timeout(self.timeout, limited.read_until(b'\n', raw)).await;
            let n = match read {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(self.lost(e.to_string())),
                Err(_) => {
                    return Err(EngineError::Timeout {
                        side,
                        host,
                        seconds: secs,
                    })
                }
            };
            total += n;
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
        let tag = self.new_tag();
        let mut out: Vec<u8> = Vec::new();
        out.extend_from_slice(tag.as_bytes());
        out.push(b' ');
        for part in parts {
            match part {
                Part::Text(t) => out.extend_from_slice(&t),
                Part::Literal(bytes) => {
                    let non_sync = self.caps.literal_plus()
                        || (self.caps.literal_minus() && bytes.len() <= 4096);
                    if non_sync {
                        out.extend_from_slice(format!("{{{}+}}\r\n", bytes.len()).as_bytes());
                        out.extend_from_slice(&bytes);
                        if out.len() > 256 * 1024 {
                            self.write_raw(&out).await?;
                            out.clear();
                        }
                    } else {
                        out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
                        self.write_raw(&out).await?;
                        out.clear();
                        self.flush().await?;
                        loop {
                            match self.read_response().await? {
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
    pub async fn select(&mut self, wire_name: &str, read_only: bool) -> Result<MailboxInfo> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let reply = self
            .run_ok(
                CommandBuilder::new(verb)
                    .string(wire_name.as_bytes())
                    .build(),
                verb,
            )
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
    pub async fn status_owned(&mut self, wire_name: String) -> Result<MailboxInfo> {
        self.status(&wire_name).await
    }

    /// STATUS (UIDNEXT UIDVALIDITY MESSAGES) of a mailbox.
    pub async fn status(&mut self, wire_name: &str) -> Result<MailboxInfo> {
        let reply = self
            .run_ok(
                CommandBuilder::new("STATUS")
                    .string(wire_name.as_bytes())
                    .raw(" (UIDNEXT UIDVALIDITY MESSAGES)")
                    .build(),
                "STATUS",
            )
            .await?;
        let mut info = MailboxInfo::default();
        for r in &reply.untagged {
            if let Response::Untagged(values) = r {
                if !values
                    .first()
                    .and_then(Value::as_atom)
                    .is_some_and(|a| a.eq_ignore_ascii_case("STATUS"))
                {
                    continue;
                }
                if let Some(list) = values.get(2).and_then(Value::as_list) {
                    for pair in list.chunks(2) {
                        let [k, v] = pair else { break };
                        let v = v.as_u64().and_then(|v| u32::try_from(v).ok());
                        match k.as_atom().map(str::to_ascii_uppercase).as_deref() {
                            Some("UIDNEXT") => info.uidnext = v,
                            Some("UIDVALIDITY") => info.uidvalidity = v.unwrap_or(0),
                            Some("MESSAGES") => info.exists = v.unwrap_or(0),
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(info)
    }

    /// `UID FETCH set (items)`, calling `each` for every FETCH response as it arrives
    /// (so bodies need not all be held at once). Returns the tagged status, checked by the
    /// caller: async-imap's lesson is that an unchecked NO looks like an empty success.
    pub async fn uid_fetch(
        &mut self,
        set: &str,
        items: &str,
        mut each: impl FnMut(FetchItem),
    ) -> Result<StatusLine> {
        let parts = CommandBuilder::new("UID FETCH ")
            .raw(set)
            .raw(" (")
            .raw(items)
            .raw(")")
            .build();
        let tag = match self.start(parts).await? {
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

/// Standard base64 (for SASL), small enough not to need a crate.
pub fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"\0user\0pass"), "AHVzZXIAcGFzcw==");
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
