//! SASL messages for bearer-token logins, as pure functions: the XOAUTH2 and OAUTHBEARER
//! (RFC 7628) initial responses, and the reading of the JSON a server sends back when it
//! refuses a token. Nothing here touches the network.
//!
//! The messages hold the token: they come back in [`Zeroizing`] buffers, wiped when dropped.

use crate::engine::imap::capabilities::Capabilities;
use base64::Engine as _;
use std::fmt;
use zeroize::Zeroizing;

/// The bearer-token SASL mechanisms the engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 7628, the standard one (Dovecot, Gmail, Yahoo, Fastmail...).
    OAuthBearer,
    /// Google's and Microsoft's older mechanism (the only one Microsoft 365 offers).
    XOAuth2,
}

impl Mechanism {
    /// OAUTHBEARER when offered, else XOAUTH2, else `None`.
    pub fn choose(caps: &Capabilities) -> Option<Mechanism> {
        if caps.has("AUTH=OAUTHBEARER") {
            Some(Mechanism::OAuthBearer)
        } else if caps.has("AUTH=XOAUTH2") {
            Some(Mechanism::XOAuth2)
        } else {
            None
        }
    }

    /// The name in `AUTHENTICATE <name>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    /// What the client answers to a failure challenge so that the server ends the
    /// exchange with its tagged NO: XOAUTH2 an empty line, OAUTHBEARER a single 0x01
    /// (RFC 7628 section 3.2.3), base64-encoded.
    pub fn failure_ack(self) -> &'static str {
        match self {
            Mechanism::OAuthBearer => "AQ==",
            Mechanism::XOAuth2 => "",
        }
    }

    /// The initial client response, base64-encoded, ready for the wire.
    pub fn initial_response(
        self,
        user: &str,
        host: &str,
        port: u16,
        token: &str,
    ) -> Zeroizing<String> {
        match self {
            Mechanism::OAuthBearer => encode(&oauthbearer_message(user, host, port, token)),
            Mechanism::XOAuth2 => encode(&xoauth2_message(user, token)),
        }
    }
}

fn encode(raw: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(base64_encode(raw))
}

/// Standard base64 with padding (SASL data).
pub fn base64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// `user=USER ^A auth=Bearer TOKEN ^A ^A`, the XOAUTH2 message before base64.
pub fn xoauth2_message(user: &str, token: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(user.len() + token.len() + 24));
    out.extend_from_slice(b"user=");
    out.extend_from_slice(user.as_bytes());
    out.extend_from_slice(b"\x01auth=Bearer ");
    out.extend_from_slice(token.as_bytes());
    out.extend_from_slice(b"\x01\x01");
    out
}

/// The OAUTHBEARER message before base64: the GS2 header `n,a=USER,` (no channel
/// binding, the user as authorization identity), then the key/value pairs `host`, `port`
/// and `auth`, each ended by 0x01, and a final 0x01.
pub fn oauthbearer_message(user: &str, host: &str, port: u16, token: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(user.len() + token.len() + 64));
    out.extend_from_slice(b"n,a=");
    out.extend_from_slice(gs2_escape(user).as_bytes());
    out.extend_from_slice(b",\x01host=");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\x01port=");
    out.extend_from_slice(port.to_string().as_bytes());
    out.extend_from_slice(b"\x01auth=Bearer ");
    out.extend_from_slice(token.as_bytes());
    out.extend_from_slice(b"\x01\x01");
    out
}

/// A name as a GS2 header carries it (RFC 5801 `saslname`): `,` becomes `=2C` and `=`
/// becomes `=3D`, so neither can end or fake a header field.
pub fn gs2_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// Whether a string may go into these messages: no 0x01 (the separator), no other
/// control character, not empty.
pub fn fits_message(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_control)
}

/// Whether a token looks like an RFC 6750 `b64token` (what `auth=Bearer` may carry).
pub fn is_bearer_token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Why the server refused a token, as its failure challenge says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerFailure {
    /// `401` (Google) or `invalid_token` (Dovecot, RFC 6750): expired, revoked or not valid.
    ExpiredOrRevoked,
    /// `403` / `insufficient_scope`, or Google's `400` naming a scope: the token was
    /// granted without a scope the server wants (named when the server says which).
    MissingScope(Option<String>),
    /// Anything else: the status as the server gave it, or a short excerpt of what it sent.
    Other(String),
}

impl fmt::Display for BearerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BearerFailure::ExpiredOrRevoked => {
                f.write_str("the access token has expired or was revoked")
            }
            BearerFailure::MissingScope(Some(scope)) => {
                write!(f, "the token lacks the scope {scope}")
            }
            BearerFailure::MissingScope(None) => {
                f.write_str("the token lacks a scope the server requires")
            }
            BearerFailure::Other(what) => write!(f, "the server refused the token ({what})"),
        }
    }
}

/// Reads a failure challenge (the text after `+ `): base64 of a JSON object such as
/// `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}` (Google) or
/// `{"status":"invalid_token","schemes":"bearer"}` (Dovecot).
pub fn explain_failure(challenge: &str) -> BearerFailure {
    let text = challenge.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text));
    let Ok(decoded) = decoded else {
        return BearerFailure::Other(format!("it said {:?}", excerpt(text)));
    };
    let Ok(serde_json::Value::Object(json)) = serde_json::from_slice::<serde_json::Value>(&decoded)
    else {
        return BearerFailure::Other(format!(
            "it said {:?}",
            excerpt(&String::from_utf8_lossy(&decoded))
        ));
    };
    let field = |name: &str| match json.get(name) {
        Some(serde_json::Value::String(s)) => Some(s.trim().to_owned()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let scope = field("scope")
        .filter(|s| !s.is_empty())
        .map(|s| excerpt(&s));
    let Some(status) = field("status") else {
        return BearerFailure::Other("no status given".to_owned());
    };
    match status.to_ascii_lowercase().as_str() {
        "401" | "invalid_token" => BearerFailure::ExpiredOrRevoked,
        "403" | "insufficient_scope" => BearerFailure::MissingScope(scope),
        // Google answers 400 with the scope it wants when the token was granted without it.
        "400" | "invalid_request" if scope.is_some() => BearerFailure::MissingScope(scope),
        _ => BearerFailure::Other(format!("status {}", excerpt(&status))),
    }
}

/// At most 200 printable characters of what a server sent, for messages.
fn excerpt(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(raw: &[u8]) -> String {
        base64_encode(raw)
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"\0user\0pass"), "AHVzZXIAcGFzcw==");
    }

    #[test]
    fn xoauth2_message_has_the_documented_form() {
        assert_eq!(
            &xoauth2_message("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")[..],
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        // Google's documented example, base64 and all.
        assert_eq!(
            Mechanism::XOAuth2
                .initial_response(
                    "someuser@example.com",
                    "imap.gmail.com",
                    993,
                    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
                )
                .as_str(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
    }

    #[test]
    fn oauthbearer_message_has_the_rfc7628_form() {
        // RFC 7628 section 4.1, with an authorization identity.
        let raw = oauthbearer_message(
            "user@example.com",
            "server.example.com",
            143,
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
        );
        assert_eq!(
            &raw[..],
            b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert_eq!(
            Mechanism::OAuthBearer
                .initial_response(
                    "user@example.com",
                    "server.example.com",
                    143,
                    "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
                )
                .as_str(),
            b64(&raw)
        );
    }

    #[test]
    fn gs2_names_escape_comma_and_equals() {
        assert_eq!(gs2_escape("plain@example.com"), "plain@example.com");
        assert_eq!(gs2_escape("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(gs2_escape("=,"), "=3D=2C");
        let raw = oauthbearer_message("o=u,x", "h", 993, "t");
        assert!(raw.starts_with(b"n,a=o=3Du=2Cx,\x01host=h\x01port=993\x01"));
    }

    #[test]
    fn mechanism_is_chosen_by_capability() {
        let caps = |atoms: &[&str]| Capabilities::from_atoms(atoms.iter().copied());
        assert_eq!(
            Mechanism::choose(&caps(&["IMAP4rev1", "AUTH=XOAUTH2", "AUTH=OAUTHBEARER"])),
            Some(Mechanism::OAuthBearer)
        );
        assert_eq!(
            Mechanism::choose(&caps(&["IMAP4rev1", "auth=xoauth2", "AUTH=PLAIN"])),
            Some(Mechanism::XOAuth2)
        );
        assert_eq!(Mechanism::choose(&caps(&["IMAP4rev1", "AUTH=PLAIN"])), None);
        assert_eq!(Mechanism::OAuthBearer.failure_ack(), b64(b"\x01"));
        assert_eq!(Mechanism::XOAuth2.failure_ack(), "");
    }

    #[test]
    fn failure_challenges_are_explained() {
        let google =
            b64(br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#);
        assert_eq!(explain_failure(&google), BearerFailure::ExpiredOrRevoked);
        assert_eq!(
            explain_failure(&google).to_string(),
            "the access token has expired or was revoked"
        );
        let dovecot = b64(br#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#);
        assert_eq!(explain_failure(&dovecot), BearerFailure::ExpiredOrRevoked);
        let scope = b64(br#"{"status":"insufficient_scope","scope":"imap"}"#);
        assert_eq!(
            explain_failure(&scope).to_string(),
            "the token lacks the scope imap"
        );
        let google_scope =
            b64(br#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#);
        assert_eq!(
            explain_failure(&google_scope).to_string(),
            "the token lacks the scope https://mail.google.com/"
        );
        assert_eq!(
            explain_failure(&b64(br#"{"status":403}"#)),
            BearerFailure::MissingScope(None)
        );
        assert_eq!(
            explain_failure(&b64(br#"{"status":"invalid_request"}"#)).to_string(),
            "the server refused the token (status invalid_request)"
        );
        assert_eq!(
            explain_failure("not base64!"),
            BearerFailure::Other("it said \"not base64!\"".into())
        );
        assert!(matches!(
            explain_failure(&b64(b"plain words")),
            BearerFailure::Other(w) if w.contains("plain words")
        ));
    }

    #[test]
    fn token_and_user_checks() {
        assert!(is_bearer_token("ya29.a0AfH6SM-x_y~z+/=="));
        assert!(!is_bearer_token("with space"));
        assert!(!is_bearer_token("a\x01b"));
        assert!(!is_bearer_token(""));
        assert!(fits_message("alice@example.com"));
        assert!(!fits_message("al\x01ice"));
        assert!(!fits_message(""));
    }
}
