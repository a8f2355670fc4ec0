//! The IMAP wire format: reading one whole response (line plus literals), parsing it into
//! values, and building commands (quoted strings or literals for arguments).
//!
//! Kept small and strict on purpose: the engine asks only for UIDs, flags, dates, sizes and
//! raw bodies, so a handful of value shapes is enough, and nothing here trusts the server.

use bytes::Bytes;
use std::fmt;

/// One parsed IMAP value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An atom, a number, a flag (`\Seen`) or a fetch item name (`BODY[]`).
    Atom(String),
    /// A quoted string or a literal, as raw bytes (a literal is a slice of the buffer
    /// the response was read into, never a copy).
    Bytes(Bytes),
    List(Vec<Value>),
    Nil,
}

impl Value {
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// An atom, quoted string or literal read as text (lossy for non-UTF-8 bytes).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Atom(a) => Some(a.clone()),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// An atom, quoted string or literal as the bytes the server sent (a mailbox name).
    pub fn as_name_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Atom(a) => Some(a.as_bytes()),
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_atom().and_then(|a| a.parse().ok())
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

/// The status word of a tagged or untagged status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    Preauth,
}

impl Status {
    fn parse(word: &str) -> Option<Status> {
        match word.to_ascii_uppercase().as_str() {
            "OK" => Some(Status::Ok),
            "NO" => Some(Status::No),
            "BAD" => Some(Status::Bad),
            "BYE" => Some(Status::Bye),
            "PREAUTH" => Some(Status::Preauth),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
            Status::Preauth => "PREAUTH",
        })
    }
}

/// `OK/NO/BAD [CODE args] text`, the tail of a status response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub status: Status,
    /// The response code's name, upper-cased (`UIDVALIDITY`, `APPENDUID`, `TRYCREATE`...).
    pub code: Option<String>,
    pub code_args: Vec<Value>,
    pub text: String,
}

impl StatusLine {
    /// The server's words, as shown to a user: `NO [OVERQUOTA] Quota exceeded`.
    pub fn words(&self) -> String {
        match &self.code {
            Some(code) => format!("{} [{}] {}", self.status, code, self.text),
            None => format!("{} {}", self.status, self.text),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `+ text`: the server waits for a literal or SASL data.
    Continue(String),
    /// `* OK/NO/BAD/BYE/PREAUTH ...`
    UntaggedStatus(StatusLine),
    /// Any other untagged response, e.g. `* 3 FETCH (...)`, `* LIST ...`, `* CAPABILITY ...`.
    Untagged(Vec<Value>),
    Tagged {
        tag: String,
        line: StatusLine,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparseable server response: {reason} in {excerpt:?}")]
pub struct ParseError {
    pub reason: &'static str,
    /// The first bytes of the response line (never a message body).
    pub excerpt: String,
}

impl ParseError {
    /// Whether the response is an attack on the parser (lists nested past
    /// [`MAX_NESTING`]), not merely a shape it does not know: never skipped or salvaged.
    pub fn is_hostile(&self) -> bool {
        self.reason == NESTED_TOO_DEEPLY
    }
}

const NESTED_TOO_DEEPLY: &str = "lists nested too deeply";

/// Lists nested deeper than this are refused: parsing recurses once per level, and no
/// response the engine reads nests more than a few levels.
pub const MAX_NESTING: usize = 100;

/// Most UIDs expanded from one server-sent UID set (APPENDUID/COPYUID): far above any
/// batch the engine sends, far below what would exhaust memory.
pub const MAX_UID_SET: usize = 100_000;

/// If `line` (one CRLF-terminated line of a response) announces a literal, its length.
///
/// Accepts `{n}`, `{n+}`, `{n-}` and `~{n}` (literal8) right before the line end.
pub fn literal_announced(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = &line[open + 1..];
    let digits = inner
        .strip_suffix(b"+")
        .or_else(|| inner.strip_suffix(b"-"))
        .unwrap_or(inner);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Every announcement counts, however long its number: ignoring one would read the
    // literal's bytes as responses. Too large for u64 is still too large for any cap.
    Some(digits.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Whether a response that begins with `line` is one line of text: a continuation
/// (`+ ...`) or a status response (`* OK ...`, `a1 NO ...`). A `{5}` at the end of such a
/// line is the server's words, never a literal (`resp-text` holds no literal).
pub fn is_text_only(line: &[u8]) -> bool {
    if line.starts_with(b"+") {
        return true;
    }
    let rest = match line.strip_prefix(b"* ") {
        Some(rest) => rest,
        None => match line.iter().position(|&b| b == b' ') {
            Some(space) if space > 0 => &line[space + 1..],
            _ => return false,
        },
    };
    let end = rest
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end])
        .ok()
        .and_then(Status::parse)
        .is_some()
}

/// For a status response that does not parse (a response code the grammar does not
/// allow), the status and its whole text, without the code: the end of a command must
/// still be seen. `None` for anything else.
pub fn salvage_status(raw: &[u8]) -> Option<Response> {
    let line_end = raw
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(raw.len());
    let line = &raw[..line_end];
    if !is_text_only(line) || line.starts_with(b"+") {
        return None;
    }
    let text = String::from_utf8_lossy(line);
    let (tag, rest) = text.split_once(' ')?;
    let (word, words) = rest.split_once(' ').unwrap_or((rest, ""));
    let line = StatusLine {
        status: Status::parse(word)?,
        code: None,
        code_args: Vec::new(),
        text: words.to_owned(),
    };
    Some(if tag == "*" {
        Response::UntaggedStatus(line)
    } else {
        Response::Tagged {
            tag: tag.to_owned(),
            line,
        }
    })
}

/// Parses one whole response: its wire bytes, literals inline, CRLF at the end.
pub fn parse_response(raw: &[u8]) -> Result<Response, ParseError> {
    parse_shared(&Bytes::copy_from_slice(raw))
}

/// [`parse_response`] of a response already in a shared buffer: its literals are
/// slices of `shared`, so a message body is held once, in the buffer it was read into.
pub fn parse_shared(shared: &Bytes) -> Result<Response, ParseError> {
    let raw: &[u8] = shared;
    let mut p = Parser {
        buf: raw,
        shared,
        pos: 0,
        depth: 0,
    };
    let excerpt = || {
        let end = raw
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(raw.len())
            .min(120);
        String::from_utf8_lossy(&raw[..end]).into_owned()
    };
    let fail = |reason| ParseError {
        reason,
        excerpt: excerpt(),
    };
    if raw.starts_with(b"+") {
        p.pos = 1;
        p.skip_spaces();
        return Ok(Response::Continue(p.rest_of_line()));
    }
    if raw.starts_with(b"* ") {
        p.pos = 2;
        let save = p.pos;
        let word = p.atom_text();
        if let Some(status) = Status::parse(&word) {
            let line = p.status_tail(status).map_err(fail)?;
            return Ok(Response::UntaggedStatus(line));
        }
        p.pos = save;
        let values = p.values_until_eol().map_err(fail)?;
        return Ok(Response::Untagged(values));
    }
    let tag = p.atom_text();
    if tag.is_empty() || !p.eat(b' ') {
        return Err(fail("no tag"));
    }
    let word = p.atom_text();
    let status = Status::parse(&word).ok_or_else(|| fail("tagged response without a status"))?;
    let line = p.status_tail(status).map_err(fail)?;
    Ok(Response::Tagged { tag, line })
}

/// Whether an atom so far (`BODY`, `BODY.PEEK`, `BINARY.SIZE`...) is a fetch item whose
/// `[` opens a section.
fn opens_section(so_far: &[u8]) -> bool {
    const ITEMS: [&[u8]; 5] = [
        b"BODY",
        b"BODY.PEEK",
        b"BINARY",
        b"BINARY.PEEK",
        b"BINARY.SIZE",
    ];
    ITEMS.iter().any(|item| so_far.eq_ignore_ascii_case(item))
}

struct Parser<'a> {
    buf: &'a [u8],
    /// The same bytes, for literals taken as slices.
    shared: &'a Bytes,
    pos: usize,
    /// How many lists enclose the current position.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Whether a literal (`{n}`, `{n+}`, `{n-}`, `~{n}`) is announced here: only then are
    /// `{` and `~` not ordinary characters.
    fn literal_starts_here(&self) -> bool {
        let rest = &self.buf[self.pos..];
        let rest = rest.strip_prefix(b"~").unwrap_or(rest);
        let Some(rest) = rest.strip_prefix(b"{") else {
            return false;
        };
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let rest = &rest[digits..];
        let rest = rest
            .strip_prefix(b"+")
            .or_else(|| rest.strip_prefix(b"-"))
            .unwrap_or(rest);
        digits > 0 && rest.starts_with(b"}\r\n")
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn at_eol(&self) -> bool {
        matches!(self.peek(), None | Some(b'\r') | Some(b'\n'))
    }

    fn rest_of_line(&mut self) -> String {
        let start = self.pos;
        while !self.at_eol() {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned()
    }

    /// An atom, with a fetch item's `[...]` section (which may hold spaces and
    /// parentheses) kept whole: `BODY[HEADER.FIELDS (SUBJECT)]`. A `[` anywhere else is an
    /// ordinary character (keywords and mailbox names may hold one). Inside a response
    /// code (`in_code`) a `]` ends the atom; elsewhere it is part of it (`astring` allows it).
    fn atom_text_in(&mut self, in_code: bool) -> String {
        String::from_utf8_lossy(self.atom_bytes_in(in_code)).into_owned()
    }

    /// [`Parser::atom_text_in`] as the bytes the server sent.
    fn atom_bytes_in(&mut self, in_code: bool) -> &[u8] {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'[' if depth > 0 || opens_section(&self.buf[start..self.pos]) => depth += 1,
                b']' if depth > 0 => depth -= 1,
                b']' if in_code => break,
                b' ' | b'(' | b')' if depth == 0 => break,
                b'{' if depth == 0 && !in_code && self.literal_starts_here() => break,
                b'\r' | b'\n' | b'"' if depth == 0 => break,
                b'\r' | b'\n' => break,
                _ => {}
            }
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// An atom outside a response code (tags, status words, data).
    fn atom_text(&mut self) -> String {
        self.atom_text_in(false)
    }

    fn status_tail(&mut self, status: Status) -> Result<StatusLine, &'static str> {
        self.skip_spaces();
        let mut code = None;
        let mut code_args = Vec::new();
        if self.eat(b'[') {
            let name = self.atom_text_in(true).to_ascii_uppercase();
            loop {
                self.skip_spaces();
                match self.peek() {
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    None | Some(b'\r') | Some(b'\n') => return Err("unterminated response code"),
                    _ => code_args.push(self.value_in(true)?),
                }
            }
            code = Some(name);
            self.skip_spaces();
        }
        Ok(StatusLine {
            status,
            code,
            code_args,
            text: self.rest_of_line(),
        })
    }

    fn values_until_eol(&mut self) -> Result<Vec<Value>, &'static str> {
        let mut values = Vec::new();
        loop {
            self.skip_spaces();
            if self.at_eol() {
                return Ok(values);
            }
            values.push(self.value()?);
        }
    }

    fn value(&mut self) -> Result<Value, &'static str> {
        self.value_in(false)
    }

    /// One value; `in_code`: inside a response code, where `]` ends it and no literal
    /// can come (a status response is one line of text).
    fn value_in(&mut self, in_code: bool) -> Result<Value, &'static str> {
        match self.peek() {
            Some(b'(') => {
                if self.depth >= MAX_NESTING {
                    return Err(NESTED_TOO_DEEPLY);
                }
                self.depth += 1;
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        Some(b')') => {
                            self.pos += 1;
                            self.depth -= 1;
                            return Ok(Value::List(items));
                        }
                        None => return Err("unterminated list"),
                        // A list may span literals but never a bare line end.
                        Some(b'\r') | Some(b'\n') => return Err("unterminated list"),
                        _ => items.push(self.value_in(in_code)?),
                    }
                }
            }
            Some(b'"') => {
                self.pos += 1;
                let mut out = Vec::new();
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.pos += 1;
                            return Ok(Value::Bytes(out.into()));
                        }
                        Some(b'\\') => {
                            self.pos += 1;
                            match self.peek() {
                                Some(b) => out.push(b),
                                None => return Err("unterminated quoted string"),
                            }
                            self.pos += 1;
                        }
                        Some(b'\r') | Some(b'\n') | None => {
                            return Err("unterminated quoted string")
                        }
                        Some(b) => {
                            out.push(b);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some(b'{') | Some(b'~') if !in_code && self.literal_starts_here() => {
                if self.peek() == Some(b'~') {
                    self.pos += 1;
                }
                self.pos += 1;
                let start = self.pos;
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
                let len: usize = std::str::from_utf8(&self.buf[start..self.pos])
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or("bad literal length")?;
                let _ = self.eat(b'+') || self.eat(b'-');
                if !(self.eat(b'}') && self.eat(b'\r') && self.eat(b'\n')) {
                    return Err("bad literal header");
                }
                let end = self.pos.checked_add(len).ok_or("literal too long")?;
                if end > self.buf.len() {
                    return Err("literal shorter than announced");
                }
                let bytes = self.shared.slice(self.pos..end);
                self.pos = end;
                Ok(Value::Bytes(bytes))
            }
            Some(_) => {
                let atom = self.atom_bytes_in(in_code);
                if atom.is_empty() {
                    return Err("unexpected character");
                }
                if atom.eq_ignore_ascii_case(b"NIL") {
                    return Ok(Value::Nil);
                }
                // An 8-bit atom (an old server's mailbox name) keeps its bytes.
                Ok(match std::str::from_utf8(atom) {
                    Ok(text) => Value::Atom(text.to_owned()),
                    Err(_) => Value::Bytes(Bytes::copy_from_slice(atom)),
                })
            }
            None => Err("unexpected end"),
        }
    }
}

/// One piece of a command: plain text, or bytes that must go as a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(Vec<u8>),
    /// Shared, not copied: a message body goes to the socket from the buffer it was
    /// fetched into.
    Literal(Bytes),
}

/// Builds a command from text and arguments, choosing quoted strings or literals.
#[derive(Debug, Default, Clone)]
pub struct CommandBuilder {
    parts: Vec<Part>,
    current: Vec<u8>,
}

impl CommandBuilder {
    pub fn new(verb: &str) -> Self {
        CommandBuilder {
            parts: Vec::new(),
            current: verb.as_bytes().to_vec(),
        }
    }

    /// Appends raw protocol text (atoms, lists, spaces).
    pub fn raw(mut self, text: &str) -> Self {
        self.current.extend_from_slice(text.as_bytes());
        self
    }

    /// Appends a space then the argument as a quoted string, or a literal when it holds
    /// bytes a quoted string cannot carry (CR, LF, NUL, 8-bit).
    pub fn string(mut self, arg: &[u8]) -> Self {
        self.current.push(b' ');
        if needs_literal(arg) {
            self.literal_bytes(Bytes::copy_from_slice(arg))
        } else {
            self.current.push(b'"');
            for &b in arg {
                if b == b'"' || b == b'\\' {
                    self.current.push(b'\\');
                }
                self.current.push(b);
            }
            self.current.push(b'"');
            self
        }
    }

    /// Appends a literal (no leading space is added).
    pub fn literal_bytes(mut self, bytes: impl Into<Bytes>) -> Self {
        self.parts
            .push(Part::Text(std::mem::take(&mut self.current)));
        self.parts.push(Part::Literal(bytes.into()));
        self
    }

    pub fn build(mut self) -> Vec<Part> {
        if !self.current.is_empty() || self.parts.is_empty() {
            self.parts.push(Part::Text(self.current));
        }
        self.parts
    }
}

/// Whether an argument cannot go as a quoted string.
pub fn needs_literal(arg: &[u8]) -> bool {
    arg.iter()
        .any(|&b| b == 0 || b == b'\r' || b == b'\n' || b >= 0x80)
}

/// A UID set in compact IMAP syntax (`1:3,7,9:10`), from UIDs in any order.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Expands a UID set (`3955:3957,3960`) as the server sends it in APPENDUID/COPYUID.
///
/// `None` for a malformed set or one naming more than `max` UIDs: the count is checked
/// before anything is expanded, so `1:4294967295` costs nothing.
pub fn parse_uid_set(set: &str, max: usize) -> Option<Vec<u32>> {
    let mut ranges = Vec::new();
    let mut count: u64 = 0;
    for piece in set.split(',') {
        let (lo, hi) = match piece.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a <= b {
                    (a, b)
                } else {
                    (b, a)
                }
            }
            None => {
                let uid = piece.parse().ok()?;
                (uid, uid)
            }
        };
        count += u64::from(hi - lo) + 1;
        if count > max as u64 {
            return None;
        }
        ranges.push((lo, hi));
    }
    let mut out = Vec::with_capacity(count as usize);
    for (lo, hi) in ranges {
        out.extend(lo..=hi);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lengths_are_found_at_line_end_only() {
        assert_eq!(literal_announced(b"* 1 FETCH (BODY[] {42}\r\n"), Some(42));
        assert_eq!(literal_announced(b"A1 LOGIN {5+}\r\n"), Some(5));
        assert_eq!(literal_announced(b"* 1 FETCH (BINARY[] ~{7}\r\n"), Some(7));
        assert_eq!(literal_announced(b"* OK {not a literal}\r\n"), None);
        assert_eq!(literal_announced(b"* OK done\r\n"), None);
    }

    #[test]
    fn fetch_response_with_literal_and_flags_parses() {
        let raw = b"* 3 FETCH (UID 17 FLAGS (\\Seen $Label1) INTERNALDATE \"01-Jan-2020 10:00:00 +0100\" RFC822.SIZE 5 BODY[] {5}\r\nab)\r\n)\r\n";
        let Response::Untagged(values) = parse_response(raw).unwrap() else {
            panic!("not untagged")
        };
        assert_eq!(values[0], Value::Atom("3".into()));
        assert_eq!(values[1], Value::Atom("FETCH".into()));
        let items = values[2].as_list().unwrap();
        assert_eq!(items[0], Value::Atom("UID".into()));
        assert_eq!(items[1].as_u64(), Some(17));
        assert_eq!(
            items[3],
            Value::List(vec![
                Value::Atom("\\Seen".into()),
                Value::Atom("$Label1".into())
            ])
        );
        assert_eq!(items[8], Value::Atom("BODY[]".into()));
        assert_eq!(items[9], Value::Bytes(Bytes::from_static(b"ab)\r\n")));
    }

    #[test]
    fn section_with_spaces_stays_one_atom() {
        let raw = b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {3}\r\nS:x UID 4)\r\n";
        let Response::Untagged(values) = parse_response(raw).unwrap() else {
            panic!()
        };
        let items = values[2].as_list().unwrap();
        assert_eq!(
            items[0],
            Value::Atom("BODY[HEADER.FIELDS (SUBJECT)]".into())
        );
        assert_eq!(items[1], Value::Bytes(Bytes::from_static(b"S:x")));
        assert_eq!(items[3].as_u64(), Some(4));
    }

    #[test]
    fn status_responses_keep_code_and_words() {
        let r = parse_response(b"a7 OK [APPENDUID 38505 3955:3957] APPEND completed\r\n").unwrap();
        let Response::Tagged { tag, line } = r else {
            panic!()
        };
        assert_eq!(tag, "a7");
        assert_eq!(line.status, Status::Ok);
        assert_eq!(line.code.as_deref(), Some("APPENDUID"));
        assert_eq!(line.code_args[1], Value::Atom("3955:3957".into()));
        assert_eq!(line.text, "APPEND completed");

        let r = parse_response(b"* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n").unwrap();
        let Response::UntaggedStatus(line) = r else {
            panic!()
        };
        assert_eq!(line.code.as_deref(), Some("PERMANENTFLAGS"));
        assert_eq!(line.code_args[0].as_list().unwrap().len(), 2);

        let r =
            parse_response(b"0004 BAD UID Request \"0004 UID FETCH\" at column 25\r\n").unwrap();
        let Response::Tagged { line, .. } = r else {
            panic!()
        };
        assert_eq!(line.status, Status::Bad);
        assert_eq!(
            line.words(),
            "BAD UID Request \"0004 UID FETCH\" at column 25"
        );
    }

    #[test]
    fn list_response_with_quoted_names_and_nil_delimiter() {
        let r = parse_response(b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent \\\"Items\\\"\"\r\n")
            .unwrap();
        let Response::Untagged(v) = r else { panic!() };
        assert_eq!(v[0], Value::Atom("LIST".into()));
        assert_eq!(v[2], Value::Bytes(Bytes::from_static(b"/")));
        assert_eq!(v[3], Value::Bytes(Bytes::from_static(b"Sent \"Items\"")));
        let r = parse_response(b"* LIST (\\Noselect) NIL INBOX\r\n").unwrap();
        let Response::Untagged(v) = r else { panic!() };
        assert_eq!(v[2], Value::Nil);
        assert_eq!(v[3], Value::Atom("INBOX".into()));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_response(b"* 1 FETCH (BODY[] {99}\r\nshort)\r\n").is_err());
        assert!(parse_response(b"* 1 FETCH (UID 3\r\n").is_err());
        assert!(parse_response(b"\r\n").is_err());
        assert!(parse_response(b"* OK [UNTERMINATED\r\n").is_err());
    }

    #[test]
    fn arguments_are_quoted_or_sent_as_literals() {
        let parts = CommandBuilder::new("LOGIN")
            .string(b"usuario1%ncc%migracion")
            .string(b"pa\"ss\\word")
            .build();
        assert_eq!(
            parts,
            vec![Part::Text(
                b"LOGIN \"usuario1%ncc%migracion\" \"pa\\\"ss\\\\word\"".to_vec()
            )]
        );
        let parts = CommandBuilder::new("LOGIN")
            .string(b"user")
            .string("pässword".as_bytes())
            .build();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], Part::Text(b"LOGIN \"user\" ".to_vec()));
        assert_eq!(
            parts[1],
            Part::Literal(Bytes::from_static("pässword".as_bytes()))
        );
    }

    #[test]
    fn uid_sets_compress_and_expand() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
        assert_eq!(
            parse_uid_set("1:3,5,10:9", 10),
            Some(vec![1, 2, 3, 5, 9, 10])
        );
        assert_eq!(parse_uid_set("x", 10), None);
    }

    #[test]
    fn huge_uid_sets_are_refused_before_expanding() {
        assert_eq!(parse_uid_set("1:4294967295", MAX_UID_SET), None);
        // Many ranges that are each small must not add up past the cap either.
        let many = vec!["1:1000000"; 5000].join(",");
        assert_eq!(parse_uid_set(&many, MAX_UID_SET), None);
        assert_eq!(parse_uid_set("7:9", 3), Some(vec![7, 8, 9]));
        assert_eq!(parse_uid_set("7:10", 3), None);
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
        let mut raw = b"* 1 FETCH ".to_vec();
        raw.extend(std::iter::repeat_n(b'(', 100_000));
        raw.extend_from_slice(b"\r\n");
        let err = parse_response(&raw).unwrap_err();
        assert_eq!(err.reason, "lists nested too deeply");
        // Also inside a response code.
        let mut raw = b"* OK [X ".to_vec();
        raw.extend(std::iter::repeat_n(b'(', 100_000));
        raw.extend_from_slice(b"]\r\n");
        assert!(parse_response(&raw).is_err());
        // Nesting within the limit still parses.
        let mut raw = b"* X ".to_vec();
        raw.extend(std::iter::repeat_n(b'(', MAX_NESTING));
        raw.extend(std::iter::repeat_n(b')', MAX_NESTING));
        raw.extend_from_slice(b"\r\n");
        assert!(parse_response(&raw).is_ok());
    }

    fn untagged(raw: &[u8]) -> Vec<Value> {
        match parse_response(raw) {
            Ok(Response::Untagged(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    fn fetch_flags(raw: &[u8]) -> Vec<Value> {
        let v = untagged(raw);
        let items = v[2].as_list().unwrap();
        let at = items
            .iter()
            .position(|i| i.as_atom() == Some("FLAGS"))
            .unwrap();
        items[at + 1].as_list().unwrap().to_vec()
    }

    #[test]
    fn an_atom_may_end_in_a_bracket() {
        let v = untagged(b"* LIST (\\HasNoChildren) \".\" INBOX.Projects]\r\n");
        assert_eq!(v[3], Value::Atom("INBOX.Projects]".into()));
        let flags = fetch_flags(b"* 4 FETCH (UID 9 FLAGS (\\Seen todo]) RFC822.SIZE 12)\r\n");
        assert_eq!(
            flags,
            vec![Value::Atom("\\Seen".into()), Value::Atom("todo]".into())]
        );
        // In a response code the bracket still ends it.
        let Response::UntaggedStatus(line) =
            parse_response(b"* OK [UIDNEXT 4392] Predicted next UID\r\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(line.code_args, vec![Value::Atom("4392".into())]);
        assert_eq!(line.text, "Predicted next UID");
    }

    #[test]
    fn a_tilde_starts_a_literal8_or_is_an_ordinary_character() {
        let v = untagged(b"* LIST () \"/\" ~alice/Mail\r\n");
        assert_eq!(v[3], Value::Atom("~alice/Mail".into()));
        let flags = fetch_flags(b"* 2 FETCH (FLAGS (~draft \\Seen) UID 5)\r\n");
        assert_eq!(flags[0], Value::Atom("~draft".into()));
        let v = untagged(b"* 1 FETCH (UID 3 BINARY[] ~{3}\r\na\x00c)\r\n");
        let items = v[2].as_list().unwrap();
        assert_eq!(items[3], Value::Bytes(Bytes::from_static(b"a\x00c")));
        let v = untagged(b"* 1 FETCH (UID 3 X-NOTE ~{x})\r\n");
        assert_eq!(v[2].as_list().unwrap()[3], Value::Atom("~{x}".into()));
    }

    #[test]
    fn a_keyword_may_hold_an_opening_bracket() {
        let flags = fetch_flags(b"* 7 FETCH (UID 12 FLAGS (\\Seen foo[bar) RFC822.SIZE 44)\r\n");
        assert_eq!(
            flags,
            vec![Value::Atom("\\Seen".into()), Value::Atom("foo[bar".into())]
        );
        let v = untagged(b"* 7 FETCH (FLAGS ([Work]) UID 12)\r\n");
        let items = v[2].as_list().unwrap();
        assert_eq!(items[1], Value::List(vec![Value::Atom("[Work]".into())]));
        assert_eq!(items[3].as_u64(), Some(12));
        // Fetch item sections keep their brackets, in any case.
        let v = untagged(b"* 1 FETCH (body.peek[HEADER.FIELDS (FROM)] {2}\r\nF: UID 1)\r\n");
        let items = v[2].as_list().unwrap();
        assert_eq!(
            items[0],
            Value::Atom("body.peek[HEADER.FIELDS (FROM)]".into())
        );
        assert_eq!(items[1], Value::Bytes(Bytes::from_static(b"F:")));
    }

    #[test]
    fn status_text_ending_in_braces_is_words_not_a_literal() {
        for line in [
            &b"* OK [ALERT] Your quota is {90}\r\n"[..],
            b"* BYE Too many connections {5}\r\n",
            b"m12 NO [TOOBIG] Literal too large {4096}\r\n",
            b"m3 OK Completed {0}\r\n",
            b"+ Ready for literal {310}\r\n",
        ] {
            assert!(is_text_only(line), "{}", String::from_utf8_lossy(line));
        }
        for line in [
            &b"* 1 FETCH (BODY[] {5}\r\n"[..],
            b"* LIST () \"/\" {3}\r\n",
            b"* OKAY {3}\r\n",
            b"m1OK {3}\r\n",
        ] {
            assert!(!is_text_only(line), "{}", String::from_utf8_lossy(line));
        }
        let r = parse_response(b"* OK [ALERT] Your quota is {90}\r\n").unwrap();
        let Response::UntaggedStatus(line) = r else {
            panic!()
        };
        assert_eq!(line.text, "Your quota is {90}");
    }

    #[test]
    fn an_unparseable_status_response_is_salvaged_with_its_words() {
        let raw = b"m9 OK [APPENDUID 5 \"unterminated] Append done\r\n";
        assert!(parse_response(raw).is_err());
        let Some(Response::Tagged { tag, line }) = salvage_status(raw) else {
            panic!()
        };
        assert_eq!((tag.as_str(), line.status), ("m9", Status::Ok));
        assert_eq!(line.code, None);
        assert_eq!(line.text, "[APPENDUID 5 \"unterminated] Append done");
        assert_eq!(salvage_status(b"* 1 FETCH (UID\r\n"), None);
    }

    #[test]
    fn huge_announced_literal_lengths_are_reported_not_truncated() {
        assert_eq!(
            literal_announced(b"* OK {1099511627776}\r\n"),
            Some(1_099_511_627_776)
        );
        assert_eq!(
            literal_announced(b"* OK {99999999999999999999999}\r\n"),
            Some(u64::MAX)
        );
        assert!(parse_response(b"* OK [X {99999999999999999999}\r\n]\r\n").is_err());
    }
}
