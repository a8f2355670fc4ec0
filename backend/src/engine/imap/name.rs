//! A mailbox name exactly as a server sent it. IMAP4rev1 names are modified UTF-7
//! (ASCII), but old servers (UW-IMAP, old Courier and Cyrus setups, Exchange 2003) list
//! names with raw 8-bit bytes (Latin-1, or UTF-8 without the encoding) or with `&`
//! sequences that are not valid modified UTF-7. Such a name is used on the wire with
//! exactly its bytes (never a lossy `U+FFFD` replacement), and read by people in a
//! decoded form ([`WireName::decoded`]).

use super::utf7;
use std::fmt;

/// The bytes of one mailbox name as the server sent them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct WireName(Vec<u8>);

/// How a name's bytes were read as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// Valid modified UTF-7: the standard case.
    ModifiedUtf7,
    /// ASCII, but with `&` sequences that are not modified UTF-7: read as it stands.
    InvalidModifiedUtf7,
    /// 8-bit bytes that are valid UTF-8 (a server that does not encode names).
    RawUtf8,
    /// 8-bit bytes that are not UTF-8: read as Windows-1252 (Latin-1 with the 0x80–0x9F
    /// range of Windows), the charset of the old servers that send them.
    RawLatin1,
}

impl Decoding {
    /// Why the name is not the standard form, for the plan and the report (`None` for
    /// valid modified UTF-7).
    pub fn note(self) -> Option<&'static str> {
        match self {
            Decoding::ModifiedUtf7 => None,
            Decoding::InvalidModifiedUtf7 => {
                Some("the source name is not valid modified UTF-7; read as it stands")
            }
            Decoding::RawUtf8 => {
                Some("the source name is raw 8-bit UTF-8, not modified UTF-7; read as UTF-8")
            }
            Decoding::RawLatin1 => Some(
                "the source name is raw 8-bit bytes, neither modified UTF-7 nor UTF-8; read as Latin-1 (Windows-1252)",
            ),
        }
    }
}

impl WireName {
    pub fn new(bytes: impl Into<Vec<u8>>) -> WireName {
        WireName(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name as text when it is standard (ASCII, valid modified UTF-7): usable as it
    /// is wherever a wire name is kept as text.
    pub fn standard(&self) -> Option<&str> {
        let text = std::str::from_utf8(&self.0).ok().filter(|t| t.is_ascii())?;
        utf7::decode(text).map(|_| text)
    }

    /// The name as a person reads it, and how its bytes were read. Never fails.
    pub fn decoded(&self) -> (String, Decoding) {
        if let Ok(text) = std::str::from_utf8(&self.0) {
            if text.is_ascii() {
                return match utf7::decode(text) {
                    Some(decoded) => (decoded, Decoding::ModifiedUtf7),
                    None => (text.to_owned(), Decoding::InvalidModifiedUtf7),
                };
            }
            // `&` sequences in it are decoded where they are valid (as this engine always
            // read such names: their display form, and so their old map key, stays).
            let decoded = utf7::decode(text).unwrap_or_else(|| text.to_owned());
            return (decoded, Decoding::RawUtf8);
        }
        (
            self.0.iter().map(|&b| windows_1252(b)).collect(),
            Decoding::RawLatin1,
        )
    }

    /// The name as text for matching prefixes and patterns: its bytes themselves when
    /// they are UTF-8 (modified UTF-7 not decoded), else read as Latin-1.
    pub fn text(&self) -> String {
        match std::str::from_utf8(&self.0) {
            Ok(text) => text.to_owned(),
            Err(_) => self.decoded().0,
        }
    }

    /// The exact bytes in a readable, reversible form: printable ASCII as it is, every
    /// other byte (and `\`) escaped (`Caf\xe9`).
    pub fn escaped(&self) -> String {
        self.0.escape_ascii().to_string()
    }
}

impl fmt::Display for WireName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decoded().0)
    }
}

impl AsRef<[u8]> for WireName {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for WireName {
    fn from(s: &str) -> WireName {
        WireName(s.as_bytes().to_vec())
    }
}

impl From<String> for WireName {
    fn from(s: String) -> WireName {
        WireName(s.into_bytes())
    }
}

impl From<&[u8]> for WireName {
    fn from(b: &[u8]) -> WireName {
        WireName(b.to_vec())
    }
}

/// One byte of Windows-1252 (the five bytes it leaves undefined are read as Latin-1).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::imap::wire::{self, CommandBuilder, Part, Response, Value};

    #[test]
    fn names_are_read_without_losing_a_byte() {
        let cases: [(&[u8], &str, Decoding); 6] = [
            (b"Caf\xe9", "Café", Decoding::RawLatin1),
            (b"x\xff", "xÿ", Decoding::RawLatin1),
            (b"\x80uro", "€uro", Decoding::RawLatin1),
            (b"Gr\xc3\xbc\xc3\x9fe", "Grüße", Decoding::RawUtf8),
            (b"Bad&Jjo", "Bad&Jjo", Decoding::InvalidModifiedUtf7),
            (b"Entw&APw-rfe", "Entwürfe", Decoding::ModifiedUtf7),
        ];
        for (bytes, shown, how) in cases {
            let name = WireName::new(bytes);
            assert_eq!(
                name.decoded(),
                (shown.to_owned(), how),
                "{}",
                name.escaped()
            );
            assert_eq!(name.to_string(), shown);
            assert_eq!(name.as_bytes(), bytes);
            assert_eq!(name.standard().is_some(), how == Decoding::ModifiedUtf7);
            assert_eq!(how.note().is_none(), how == Decoding::ModifiedUtf7);
        }
        assert_eq!(WireName::new(&b"Caf\xe9\\"[..]).escaped(), "Caf\\xe9\\\\");
    }

    /// What a server sends in a LIST reply, parsed as the engine parses it.
    fn listed(line: &[u8]) -> Vec<u8> {
        let Response::Untagged(v) = wire::parse_response(line).unwrap() else {
            panic!("not untagged");
        };
        v[3].as_name_bytes().unwrap().to_vec()
    }

    #[test]
    fn raw_names_in_list_replies_keep_their_bytes_in_every_form() {
        // An 8-bit atom, an 8-bit quoted string, a literal, and invalid modified UTF-7.
        assert_eq!(
            listed(b"* LIST () \".\" INBOX.Caf\xe9\r\n"),
            b"INBOX.Caf\xe9"
        );
        assert_eq!(listed(b"* LIST () \"/\" \"Caf\xff x\"\r\n"), b"Caf\xff x");
        assert_eq!(listed(b"* LIST () \"/\" {4}\r\nCaf\xe9\r\n"), b"Caf\xe9");
        assert_eq!(listed(b"* LIST () \"/\" &Jjo\r\n"), b"&Jjo");
        assert_eq!(listed(b"* LIST () \"/\" \"a\\\"b\\\\c\"\r\n"), b"a\"b\\c");
    }

    #[test]
    fn commands_name_raw_mailboxes_with_exactly_their_bytes() {
        // 8-bit: a literal holding the bytes; `"` and `\`: a quoted string with escapes
        // (which the parser reads back to the same bytes).
        let parts = CommandBuilder::new("SELECT").string(b"Caf\xe9").build();
        assert_eq!(
            parts,
            vec![
                Part::Text(b"SELECT ".to_vec()),
                Part::Literal(bytes::Bytes::from_static(b"Caf\xe9"))
            ]
        );
        let parts = CommandBuilder::new("SELECT").string(b"x\xff").build();
        assert_eq!(parts[1], Part::Literal(bytes::Bytes::from_static(b"x\xff")));
        let parts = CommandBuilder::new("SELECT").string(b"a\"b\\c").build();
        assert_eq!(parts, vec![Part::Text(b"SELECT \"a\\\"b\\\\c\"".to_vec())]);
        let parts = CommandBuilder::new("SELECT").string(b"&Jjo").build();
        assert_eq!(parts, vec![Part::Text(b"SELECT \"&Jjo\"".to_vec())]);
        assert_eq!(
            Value::Bytes(bytes::Bytes::from_static(b"Caf\xe9")).as_name_bytes(),
            Some(&b"Caf\xe9"[..])
        );
    }
}
