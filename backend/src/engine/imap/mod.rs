//! Speaking IMAP to one server: `wire` (parsing and quoting), `session` (one connection:
//! TLS, greeting, commands under timeouts, literals), `capabilities`, `endpoint` (which
//! server, how to reach it and log in), `conn` (reconnect, re-select, renew a login
//! before its token expires, pacing and waiting wrapped around a session), `utf7`
//! (modified UTF-7 mailbox names), `name` (a mailbox name's exact bytes, and how a person
//! reads them).

pub mod capabilities;
pub mod conn;
pub mod endpoint;
pub mod name;
pub mod session;
pub mod utf7;
pub mod wire;
