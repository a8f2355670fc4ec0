//! A small raw IMAP client for the test kit.
//!
//! The kit needs things async-imap 0.12 does not do: pipelined APPEND with LITERAL+ (seeding
//! 10,000 messages quickly), checking the tagged reply of every FETCH (async-imap's streaming
//! fetch does not), and the exact bytes of every literal. It speaks only what the kit uses,
//! checks every tagged reply and puts a timeout on every read.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::tls::{client_config_trusting, server_name};

/// How to protect the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// No TLS at all.
    Plain,
    /// Plain connect, then `STARTTLS`, verifying against the CA in `ca_pem`.
    StartTls { ca_pem: PathBuf },
    /// TLS from the first byte (IMAPS), verifying against the CA in `ca_pem`.
    Tls { ca_pem: PathBuf },
}

/// Where an IMAP account lives and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: String,
    pub password: String,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type BoxIo = Box<dyn Io>;

/// Time allowed for any single read from the server.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// One LIST reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Attributes as sent, e.g. `\Noselect`, `\HasChildren`, `\Sent`.
    pub attributes: Vec<String>,
    /// Hierarchy separator (None for a flat server).
    pub delimiter: Option<char>,
    /// The name as sent by the server (modified UTF-7, server separator).
    pub name: String,
}

impl ListEntry {
    /// Whether the attribute list contains `attr` (case-insensitive).
    pub fn has(&self, attr: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }
}

/// One message as fetched by [`ImapConnection::fetch_all`].
#[derive(Debug, Clone)]
pub struct FetchedMessage {
    pub uid: u32,
    pub flags: Vec<String>,
    /// INTERNALDATE as the server sent it, e.g. `01-Jan-2020 10:00:00 +0100`.
    pub internal_date: String,
    pub body: Vec<u8>,
}

/// One message to APPEND.
#[derive(Debug, Clone)]
pub struct AppendItem<'a> {
    /// Mailbox name as the server knows it (already modified UTF-7 and separator-mapped).
    pub mailbox: &'a str,
    pub flags: &'a [String],
    /// INTERNALDATE in IMAP syntax, e.g. `01-Jan-2020 10:00:00 +0100`.
    pub internal_date: Option<&'a str>,
    pub bytes: &'a [u8],
}

/// A logged-in (or not yet logged-in) raw IMAP connection.
pub struct ImapConnection {
    reader: BufReader<tokio::io::ReadHalf<BoxIo>>,
    writer: tokio::io::WriteHalf<BoxIo>,
    next_tag: u64,
    capabilities: Vec<String>,
}

impl std::fmt::Debug for ImapConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapConnection")
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

/// The tagged reply of a command and the untagged responses that came before it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Untagged responses (and continuation requests), each as the raw bytes on the wire
    /// without the final CRLF, literals included inline.
    pub untagged: Vec<Vec<u8>>,
    /// `OK`, `NO` or `BAD`.
    pub status: String,
    /// The rest of the tagged line (response code and text).
    pub text: String,
}

impl Reply {
    fn ok(self, what: &str) -> Result<Reply> {
        if self.status == "OK" {
            Ok(self)
        } else {
            bail!("{what} failed: {} {}", self.status, self.text)
        }
    }
}

/// Connects and logs in with LOGIN.
pub async fn connect(account: &Account) -> Result<ImapConnection> {
    let mut conn = ImapConnection::open(account).await?;
    match account.password.strip_prefix(BEARER) {
        Some(token) => conn.authenticate_xoauth2(&account.user, token).await?,
        None => conn.login(&account.user, &account.password).await?,
    }
    Ok(conn)
}

/// A password starting with this is an OAuth bearer token: [`connect`] logs in with
/// XOAUTH2 (for bearer-only servers; see [`Account::with_bearer`]).
const BEARER: &str = "\u{1}bearer:";

impl Account {
    /// `user` on a server's plain (no TLS) port on 127.0.0.1.
    pub fn plain_local(port: u16, user: &str, password: &str) -> Account {
        Account {
            host: "127.0.0.1".into(),
            port,
            security: Security::Plain,
            user: user.into(),
            password: password.into(),
        }
    }

    /// This account, logged in to with an OAuth bearer token instead of a password.
    pub fn with_bearer(mut self, token: &str) -> Account {
        self.password = format!("{BEARER}{token}");
        self
    }
}

impl ImapConnection {
    /// Connects (TLS/STARTTLS as `account.security` says) without logging in.
    pub async fn open(account: &Account) -> Result<ImapConnection> {
        let tcp = tokio::time::timeout(
            Duration::from_secs(30),
            TcpStream::connect((account.host.as_str(), account.port)),
        )
        .await
        .map_err(|_| anyhow!("connecting to {}:{} timed out", account.host, account.port))?
        .with_context(|| format!("connecting to {}:{}", account.host, account.port))?;
        tcp.set_nodelay(true)?;
        match &account.security {
            Security::Plain => Self::from_stream(Box::new(tcp)).await,
            Security::Tls { ca_pem } => {
                let tls = tls_wrap(tcp, &account.host, ca_pem).await?;
                Self::from_stream(Box::new(tls)).await
            }
            Security::StartTls { ca_pem } => {
                let mut plain = Self::from_stream(Box::new(tcp)).await?;
                plain.command("STARTTLS").await?.ok("STARTTLS")?;
                if !plain.reader.buffer().is_empty() {
                    bail!("server sent data after its STARTTLS reply (possible injection)");
                }
                let io = plain.reader.into_inner().unsplit(plain.writer);
                let tls = tls_wrap(io, &account.host, ca_pem).await?;
                let (r, w) = tokio::io::split(Box::new(tls) as BoxIo);
                let mut conn = ImapConnection {
                    reader: BufReader::with_capacity(256 * 1024, r),
                    writer: w,
                    next_tag: plain.next_tag,
                    capabilities: Vec::new(),
                };
                conn.refresh_capabilities().await?;
                Ok(conn)
            }
        }
    }

    async fn from_stream(io: BoxIo) -> Result<ImapConnection> {
        let (r, w) = tokio::io::split(io);
        let mut conn = ImapConnection {
            reader: BufReader::with_capacity(256 * 1024, r),
            writer: w,
            next_tag: 1,
            capabilities: Vec::new(),
        };
        let greeting = conn.read_response().await?;
        if !greeting.starts_with(b"* OK") && !greeting.starts_with(b"* PREAUTH") {
            bail!(
                "unexpected greeting: {}",
                String::from_utf8_lossy(&greeting)
            );
        }
        conn.refresh_capabilities().await?;
        Ok(conn)
    }

    /// Capabilities as last reported (refreshed after login).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Whether the server advertised `cap` (case-insensitive).
    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cap))
    }

    async fn refresh_capabilities(&mut self) -> Result<()> {
        let reply = self.command("CAPABILITY").await?.ok("CAPABILITY")?;
        for line in &reply.untagged {
            let text = String::from_utf8_lossy(line);
            if let Some(rest) = text.strip_prefix("* CAPABILITY ") {
                self.capabilities = rest.split_whitespace().map(str::to_string).collect();
            }
        }
        Ok(())
    }

    /// LOGIN with quoted strings. `user` may be `user*master` for a Dovecot master login.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<()> {
        let cmd = format!("LOGIN {} {}", quote(user), quote(password));
        self.command(&cmd).await?.ok(&format!("LOGIN as {user}"))?;
        self.refresh_capabilities().await
    }

    /// SASL PLAIN: log in as `authzid` (empty: as `authcid`) with `authcid`'s password.
    /// With a master user, `authcid` is the master and `authzid` the mailbox owner.
    pub async fn authenticate_plain(
        &mut self,
        authzid: &str,
        authcid: &str,
        password: &str,
    ) -> Result<()> {
        let mut raw = Vec::new();
        raw.extend_from_slice(authzid.as_bytes());
        raw.push(0);
        raw.extend_from_slice(authcid.as_bytes());
        raw.push(0);
        raw.extend_from_slice(password.as_bytes());
        let tag = self.start_authenticate("PLAIN", &raw).await?;
        self.read_until_tagged(&tag)
            .await?
            .ok("AUTHENTICATE PLAIN")?;
        self.refresh_capabilities().await
    }

    /// SASL XOAUTH2 (Google's) with an OAuth 2.0 access token for `user`. On refusal the
    /// error carries the server's JSON error (the challenge it sends before its NO).
    pub async fn authenticate_xoauth2(&mut self, user: &str, token: &str) -> Result<()> {
        let raw = format!("user={user}\x01auth=Bearer {token}\x01\x01");
        // A refused XOAUTH2 login is ended with an empty response.
        self.authenticate_bearer("XOAUTH2", raw.as_bytes(), "")
            .await
    }

    /// SASL OAUTHBEARER (RFC 7628) with an OAuth 2.0 access token for `user`, naming this
    /// connection's host and port. On refusal the error carries the server's JSON error.
    pub async fn authenticate_oauthbearer(
        &mut self,
        user: &str,
        host: &str,
        port: u16,
        token: &str,
    ) -> Result<()> {
        let raw =
            format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01");
        // RFC 7628 3.2.3: the client answers an error challenge with a single ^A.
        self.authenticate_bearer("OAUTHBEARER", raw.as_bytes(), "AQ==")
            .await
    }

    /// Sends `AUTHENTICATE MECH` with its initial response: on the same line with
    /// SASL-IR, else after the server's `+`. Returns the command's tag.
    async fn start_authenticate(&mut self, mech: &str, raw: &[u8]) -> Result<String> {
        let b64 = base64_encode(raw);
        let tag = self.tag();
        if self.has_capability("SASL-IR") {
            self.write_all(format!("{tag} AUTHENTICATE {mech} {b64}\r\n").as_bytes())
                .await?;
        } else {
            self.write_all(format!("{tag} AUTHENTICATE {mech}\r\n").as_bytes())
                .await?;
            let cont = self.read_response().await?;
            if !cont.starts_with(b"+") {
                bail!(
                    "expected a continuation, got {}",
                    String::from_utf8_lossy(&cont)
                );
            }
            self.write_all(format!("{b64}\r\n").as_bytes()).await?;
        }
        Ok(tag)
    }

    async fn authenticate_bearer(&mut self, mech: &str, raw: &[u8], abort: &str) -> Result<()> {
        let tag = self.start_authenticate(mech, raw).await?;
        let mut server_error = None;
        loop {
            let line = self.read_response().await?;
            if let Some((status, text)) = tagged_status(&line, &tag) {
                if status == "OK" {
                    return self.refresh_capabilities().await;
                }
                let detail = server_error
                    .map(|e| format!(" (server said {e})"))
                    .unwrap_or_default();
                bail!("AUTHENTICATE {mech} failed: {status} {text}{detail}");
            }
            if let Some(challenge) = line.strip_prefix(b"+") {
                use base64::Engine as _;
                let challenge = String::from_utf8_lossy(challenge).trim().to_string();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(&challenge)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or(challenge);
                server_error = Some(decoded);
                self.write_all(format!("{abort}\r\n").as_bytes()).await?;
                continue;
            }
            if line.starts_with(b"* BYE") {
                bail!("server closed: {}", String::from_utf8_lossy(&line));
            }
        }
    }

    fn tag(&mut self) -> String {
        let tag = format!("K{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await?;
        Ok(())
    }

    /// Sends one command (no literals) and reads everything up to its tagged reply. The
    /// reply may be NO or BAD: check [`Reply::status`].
    pub async fn command(&mut self, cmd: &str) -> Result<Reply> {
        let tag = self.tag();
        self.write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await?;
        self.read_until_tagged(&tag).await
    }

    /// Like [`command`](Self::command) but fails unless the reply is OK.
    pub async fn command_ok(&mut self, cmd: &str) -> Result<Reply> {
        let what = cmd.split(' ').next().unwrap_or(cmd).to_string();
        self.command(cmd).await?.ok(&what)
    }

    async fn read_until_tagged(&mut self, tag: &str) -> Result<Reply> {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_response().await?;
            if let Some((status, text)) = tagged_status(&line, tag) {
                return Ok(Reply {
                    untagged,
                    status,
                    text,
                });
            }
            if line.starts_with(b"* BYE") {
                bail!("server closed: {}", String::from_utf8_lossy(&line));
            }
            untagged.push(line);
        }
    }

    /// Reads one response: a line plus any literals it announces, exactly as on the wire
    /// (without the final CRLF).
    async fn read_response(&mut self) -> Result<Vec<u8>> {
        tokio::time::timeout(READ_TIMEOUT, read_response(&mut self.reader))
            .await
            .map_err(|_| anyhow!("no answer from the server for {READ_TIMEOUT:?}"))?
    }

    /// LIST "" "*".
    pub async fn list(&mut self) -> Result<Vec<ListEntry>> {
        let reply = self.command_ok("LIST \"\" \"*\"").await?;
        let mut out = Vec::new();
        for line in &reply.untagged {
            if !line.starts_with(b"* LIST ") {
                continue;
            }
            out.push(parse_list(line)?);
        }
        Ok(out)
    }

    /// The first personal namespace as `(prefix, separator)`, from NAMESPACE (RFC 2342);
    /// `("", '/')`-style defaults come from LIST when the server lacks NAMESPACE.
    pub async fn personal_namespace(&mut self) -> Result<(String, char)> {
        if self.has_capability("NAMESPACE") {
            let reply = self.command_ok("NAMESPACE").await?;
            for line in &reply.untagged {
                if !line.starts_with(b"* NAMESPACE ") {
                    continue;
                }
                let toks = tokenize(line)?;
                // * NAMESPACE ( ( "prefix" "sep" ) ...
                if let [_, _, Tok::Open, Tok::Open, Tok::Str(prefix), sep, ..] = toks.as_slice() {
                    let sep = match sep {
                        Tok::Str(s) => s.first().map(|&b| b as char).unwrap_or('/'),
                        _ => '/',
                    };
                    return Ok((String::from_utf8_lossy(prefix).into_owned(), sep));
                }
            }
        }
        let reply = self.command_ok("LIST \"\" \"\"").await?;
        for line in &reply.untagged {
            if line.starts_with(b"* LIST ") {
                return Ok((String::new(), parse_list(line)?.delimiter.unwrap_or('/')));
            }
        }
        Ok((String::new(), '/'))
    }

    /// CREATE; "already exists" is not an error.
    pub async fn create(&mut self, mailbox: &str) -> Result<()> {
        let reply = self.command(&format!("CREATE {}", quote(mailbox))).await?;
        if reply.status == "OK" || reply.text.contains("[ALREADYEXISTS]") {
            Ok(())
        } else {
            bail!("CREATE {mailbox} failed: {} {}", reply.status, reply.text)
        }
    }

    /// SELECT (read-write) a mailbox.
    pub async fn select(&mut self, mailbox: &str) -> Result<Reply> {
        self.command(&format!("SELECT {}", quote(mailbox)))
            .await?
            .ok(&format!("SELECT {mailbox}"))
    }

    /// EXAMINE (read-only) a mailbox: nothing done afterwards can change flags.
    pub async fn examine(&mut self, mailbox: &str) -> Result<Reply> {
        self.command(&format!("EXAMINE {}", quote(mailbox)))
            .await?
            .ok(&format!("EXAMINE {mailbox}"))
    }

    /// `UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])` on the selected mailbox; checks
    /// the tagged reply and that every FETCH carried all four items.
    pub async fn fetch_all(&mut self) -> Result<Vec<FetchedMessage>> {
        let reply = self
            .command_ok("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])")
            .await?;
        let mut out = Vec::new();
        for line in &reply.untagged {
            if let Some(msg) = parse_fetch(line)? {
                out.push(msg);
            }
        }
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    /// Pipelined APPENDs with LITERAL+ (no round trip per message), batched into MULTIAPPEND
    /// where the server has it. Returns, per item, the tagged reply of its command: Ok(text)
    /// for OK, Err("NO ...") otherwise (a MULTIAPPEND succeeds or fails as a whole). Fails
    /// as a whole only on a protocol or connection error.
    pub async fn append_pipelined(
        &mut self,
        items: &[AppendItem<'_>],
    ) -> Result<Vec<std::result::Result<String, String>>> {
        if !self.has_capability("LITERAL+") {
            bail!("server lacks LITERAL+; pipelined APPEND needs it");
        }
        // Consecutive items for the same mailbox go into one MULTIAPPEND (RFC 3502) of at
        // most 100 messages / 16 MB when the server offers it.
        let multi = self.has_capability("MULTIAPPEND");
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let mut i = 0;
        while i < items.len() {
            let mut j = i + 1;
            let mut size = items[i].bytes.len();
            while multi
                && j < items.len()
                && j - i < 100
                && size + items[j].bytes.len() <= 16 << 20
                && items[j].mailbox == items[i].mailbox
            {
                size += items[j].bytes.len();
                j += 1;
            }
            groups.push(i..j);
            i = j;
        }
        let first_tag = self.next_tag;
        self.next_tag += groups.len() as u64;
        let writer = &mut self.writer;
        let reader = &mut self.reader;
        let groups_w = &groups;
        let write = async move {
            let mut buf = Vec::with_capacity(1 << 20);
            for (g, range) in groups_w.iter().enumerate() {
                let tag = first_tag + g as u64;
                buf.extend_from_slice(
                    format!("K{tag} APPEND {}", quote(items[range.start].mailbox)).as_bytes(),
                );
                for item in &items[range.clone()] {
                    buf.extend_from_slice(format!(" ({})", item.flags.join(" ")).as_bytes());
                    if let Some(date) = item.internal_date {
                        buf.extend_from_slice(format!(" \"{date}\"").as_bytes());
                    }
                    buf.extend_from_slice(format!(" {{{}+}}\r\n", item.bytes.len()).as_bytes());
                    buf.extend_from_slice(item.bytes);
                    if buf.len() > 512 * 1024 {
                        writer.write_all(&buf).await?;
                        buf.clear();
                    }
                }
                buf.extend_from_slice(b"\r\n");
            }
            writer.write_all(&buf).await?;
            writer.flush().await?;
            anyhow::Ok(())
        };
        let groups_r = &groups;
        let read = async move {
            let mut results: Vec<Option<std::result::Result<String, String>>> =
                vec![None; items.len()];
            let mut remaining = groups_r.len();
            while remaining > 0 {
                let line = tokio::time::timeout(READ_TIMEOUT, read_response(reader))
                    .await
                    .map_err(|_| anyhow!("no answer to APPEND for {READ_TIMEOUT:?}"))??;
                let text = String::from_utf8_lossy(&line).into_owned();
                if text.starts_with('*') || text.starts_with('+') {
                    if text.starts_with("* BYE") {
                        bail!("server closed during APPEND: {text}");
                    }
                    continue;
                }
                let Some((tag, rest)) = text.split_once(' ') else {
                    bail!("unexpected line during APPEND: {text}");
                };
                // A server that refuses a LITERAL+ APPEND before reading the literal (Dovecot
                // does on a BAD, e.g. for the flag \Recent) then reads the literal as
                // commands: the connection is out of step and must be dropped.
                let lost = || {
                    anyhow!(
                        "connection out of step during pipelined APPEND (a literal was read as a command): {}",
                        text.chars().take(200).collect::<String>()
                    )
                };
                let n: u64 = tag
                    .strip_prefix('K')
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(lost)?;
                let g = n
                    .checked_sub(first_tag)
                    .map(|i| i as usize)
                    .filter(|i| *i < groups_r.len())
                    .ok_or_else(lost)?;
                let range = groups_r[g].clone();
                if results[range.start].is_some() {
                    bail!("two replies for {tag}");
                }
                for slot in &mut results[range] {
                    *slot = Some(if rest.starts_with("OK") {
                        Ok(rest.to_string())
                    } else {
                        Err(rest.to_string())
                    });
                }
                remaining -= 1;
            }
            Ok(results.into_iter().flatten().collect::<Vec<_>>())
        };
        let (w, r) = tokio::join!(write, read);
        w.context("writing APPENDs")?;
        r
    }

    /// One APPEND with a synchronising literal: the message goes only after the server's
    /// `+` (for servers without LITERAL+). The reply may be NO or BAD, given before or
    /// after the message: check [`Reply::status`].
    pub async fn append_sync(&mut self, item: &AppendItem<'_>) -> Result<Reply> {
        let tag = self.tag();
        let date = item
            .internal_date
            .map(|d| format!(" \"{d}\""))
            .unwrap_or_default();
        self.write_all(
            format!(
                "{tag} APPEND {} ({}){date} {{{}}}\r\n",
                quote(item.mailbox),
                item.flags.join(" "),
                item.bytes.len()
            )
            .as_bytes(),
        )
        .await?;
        loop {
            let line = self.read_response().await?;
            if let Some((status, text)) = tagged_status(&line, &tag) {
                return Ok(Reply {
                    untagged: Vec::new(),
                    status,
                    text,
                });
            }
            if line.starts_with(b"+") {
                break;
            }
            if line.starts_with(b"* BYE") {
                bail!("server closed: {}", String::from_utf8_lossy(&line));
            }
        }
        self.write_all(item.bytes).await?;
        self.write_all(b"\r\n").await?;
        self.read_until_tagged(&tag).await
    }

    /// LOGOUT (errors ignored: the connection is going away anyway).
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.command("LOGOUT")).await;
    }
}

async fn tls_wrap<S>(
    io: S,
    host: &str,
    ca_pem: &std::path::Path,
) -> Result<tokio_rustls::client::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = client_config_trusting(ca_pem)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    tokio::time::timeout(
        Duration::from_secs(30),
        connector.connect(server_name(host)?, io),
    )
    .await
    .map_err(|_| anyhow!("TLS handshake timed out"))?
    .context("TLS handshake")
}

async fn read_response<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let start = out.len();
        let n = reader.read_until(b'\n', &mut out).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        let line = &out[start..];
        match literal_len(line) {
            Some(len) => {
                let at = out.len();
                out.resize(at + len, 0);
                reader.read_exact(&mut out[at..]).await?;
            }
            None => {
                while out.last() == Some(&b'\n') || out.last() == Some(&b'\r') {
                    out.pop();
                }
                return Ok(out);
            }
        }
    }
}

/// If `line` ends with `{n}\r\n` (or `{n+}`), the literal length.
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = &line[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn tagged_status(line: &[u8], tag: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix(tag.as_bytes())?.strip_prefix(b" ")?;
    let text = String::from_utf8_lossy(rest);
    let (status, text) = text.split_once(' ').unwrap_or((&text, ""));
    Some((status.to_ascii_uppercase(), text.to_string()))
}

/// Quotes a string for IMAP (quoted form; the kit never needs literals in commands).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A token of an IMAP response.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Atom(String),
    Str(Vec<u8>),
    Nil,
    Open,
    Close,
}

fn tokenize(input: &[u8]) -> Result<Vec<Tok>> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b' ' | b'\r' | b'\n' => i += 1,
            b'(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            b')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match input.get(i) {
                        None => bail!("unterminated quoted string"),
                        Some(b'\\') => {
                            let c = *input.get(i + 1).ok_or_else(|| anyhow!("bad escape"))?;
                            s.push(c);
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Str(s));
            }
            b'{' => {
                let close = input[i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or_else(|| anyhow!("bad literal"))?
                    + i;
                let digits = std::str::from_utf8(&input[i + 1..close])?.trim_end_matches('+');
                let len: usize = digits.parse().context("literal length")?;
                let start = close + 3; // "}\r\n"
                let end = start + len;
                if end > input.len() {
                    bail!("literal runs past the response");
                }
                toks.push(Tok::Str(input[start..end].to_vec()));
                i = end;
            }
            _ => {
                let start = i;
                while i < input.len() && !matches!(input[i], b' ' | b'(' | b')' | b'\r' | b'\n') {
                    // Keep bracketed sections such as BODY[] or BODY[HEADER.FIELDS (X)] whole.
                    if input[i] == b'[' {
                        let close = input[i..]
                            .iter()
                            .position(|&b| b == b']')
                            .ok_or_else(|| anyhow!("unclosed ["))?;
                        i += close;
                    }
                    i += 1;
                }
                let atom = String::from_utf8_lossy(&input[start..i]).into_owned();
                if atom.eq_ignore_ascii_case("NIL") {
                    toks.push(Tok::Nil);
                } else {
                    toks.push(Tok::Atom(atom));
                }
            }
        }
    }
    Ok(toks)
}

fn parse_list(line: &[u8]) -> Result<ListEntry> {
    let toks = tokenize(line)?;
    // * LIST ( attrs ) delim name
    let mut it = toks.into_iter().skip(2);
    if it.next() != Some(Tok::Open) {
        bail!("bad LIST: {}", String::from_utf8_lossy(line));
    }
    let mut attributes = Vec::new();
    for tok in it.by_ref() {
        match tok {
            Tok::Close => break,
            Tok::Atom(a) => attributes.push(a),
            _ => bail!("bad LIST attributes: {}", String::from_utf8_lossy(line)),
        }
    }
    let delimiter = match it.next() {
        Some(Tok::Str(s)) => s.first().map(|&b| b as char),
        Some(Tok::Nil) => None,
        _ => bail!("bad LIST delimiter: {}", String::from_utf8_lossy(line)),
    };
    let name = match it.next() {
        Some(Tok::Str(s)) => String::from_utf8_lossy(&s).into_owned(),
        Some(Tok::Atom(a)) => a,
        _ => bail!("bad LIST name: {}", String::from_utf8_lossy(line)),
    };
    Ok(ListEntry {
        attributes,
        delimiter,
        name,
    })
}

fn parse_fetch(line: &[u8]) -> Result<Option<FetchedMessage>> {
    let toks = tokenize(line)?;
    if toks.len() < 3 || toks[2] != Tok::Atom("FETCH".into()) {
        return Ok(None);
    }
    let mut uid = None;
    let mut flags = None;
    let mut date = None;
    let mut body = None;
    let mut it = toks.into_iter().skip(4); // "*", n, FETCH, "("
    while let Some(tok) = it.next() {
        let Tok::Atom(key) = tok else { continue };
        match key.to_ascii_uppercase().as_str() {
            "UID" => {
                if let Some(Tok::Atom(v)) = it.next() {
                    uid = v.parse::<u32>().ok();
                }
            }
            "FLAGS" => {
                if it.next() != Some(Tok::Open) {
                    bail!("bad FLAGS");
                }
                let mut f = Vec::new();
                for t in it.by_ref() {
                    match t {
                        Tok::Close => break,
                        Tok::Atom(a) => f.push(a),
                        _ => bail!("bad FLAGS"),
                    }
                }
                flags = Some(f);
            }
            "INTERNALDATE" => {
                if let Some(Tok::Str(s)) = it.next() {
                    date = Some(String::from_utf8_lossy(&s).into_owned());
                }
            }
            "BODY[]" => match it.next() {
                Some(Tok::Str(s)) => body = Some(s),
                Some(Tok::Nil) => bail!("server answered BODY[] NIL"),
                _ => bail!("bad BODY[]"),
            },
            _ => {}
        }
    }
    match (uid, flags, date, body) {
        (Some(uid), Some(flags), Some(internal_date), Some(body)) => Ok(Some(FetchedMessage {
            uid,
            flags,
            internal_date,
            body,
        })),
        // A FETCH with only FLAGS is an unsolicited flag update; ignore it.
        (_, _, _, None) => Ok(None),
        _ => bail!(
            "incomplete FETCH: {}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        ),
    }
}

/// Standard base64 with padding (for SASL and for seeded attachments).
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Encodes a folder name as IMAP modified UTF-7 (RFC 3501 5.1.3).
pub fn encode_mutf7(name: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    fn flush(out: &mut String, pending: &mut Vec<u16>) {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(
            &base64_encode(&bytes)
                .trim_end_matches('=')
                .replace('/', ","),
        );
        out.push('-');
        pending.clear();
    }
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// Decodes IMAP modified UTF-7. Invalid input is an error (names from servers are checked).
pub fn decode_mutf7(name: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = name;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let end = after
            .find('-')
            .ok_or_else(|| anyhow!("unterminated &-sequence in {name:?}"))?;
        let chunk = &after[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let mut bits: u32 = 0;
            let mut nbits = 0;
            let mut bytes = Vec::new();
            for c in chunk.bytes() {
                let v = match c {
                    b'A'..=b'Z' => c - b'A',
                    b'a'..=b'z' => c - b'a' + 26,
                    b'0'..=b'9' => c - b'0' + 52,
                    b'+' => 62,
                    b',' => 63,
                    _ => bail!("bad modified base64 in {name:?}"),
                };
                bits = (bits << 6) | u32::from(v);
                nbits += 6;
                if nbits >= 8 {
                    nbits -= 8;
                    bytes.push((bits >> nbits) as u8);
                    bits &= (1 << nbits) - 1;
                }
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            out.push_str(
                &String::from_utf16(&units).map_err(|_| anyhow!("bad UTF-16 in {name:?}"))?,
            );
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutf7_round_trips_known_names() {
        assert_eq!(encode_mutf7("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode_mutf7("A&B"), "A&-B");
        assert_eq!(encode_mutf7("台北"), "&U,BTFw-");
        for name in ["Éléments envoyés", "受信トレイ", "A&B", "plain", "x😀y"] {
            assert_eq!(decode_mutf7(&encode_mutf7(name)).unwrap(), name);
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn fetch_with_literal_parses() {
        let line = b"* 1 FETCH (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE \"01-Jan-2020 10:00:00 +0100\" BODY[] {5}\r\nab)\r\n)";
        let m = parse_fetch(line).unwrap().unwrap();
        assert_eq!(m.uid, 7);
        assert_eq!(m.flags, vec!["\\Seen", "$Label1"]);
        assert_eq!(m.body, b"ab)\r\n");
    }
}
