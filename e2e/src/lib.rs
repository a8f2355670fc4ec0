//! Mailferry's test kit: real servers and a real browser for the tests in `tests/`.
//!
//! - [`dovecot`]: private Dovecot instances on free loopback ports (plain, IMAPS, STARTTLS,
//!   master users), stopped and removed on drop.
//! - [`cyrus`], [`courier`]: private Cyrus IMAP and Courier-IMAP instances from the Debian
//!   packages unpacked by `scripts/install-test-deps.sh` ([`unpacked`]), for cross-server tests.
//! - [`seed`]: fills a mailbox deterministically from a seed, with every oddity a migration meets.
//! - [`compare`]: compares two accounts message by message (bytes, flags, INTERNALDATE).
//! - [`portal`]: starts the `mailferry` binary on a free port with a fresh database.
//! - [`postgres`]: private PostgreSQL servers on loopback (and whether the suite uses one).
//! - [`browser`]: headless Chromium through ChromeDriver.
//! - [`oidc`]: a real OpenID Connect provider (oidc-provider on Node.js) on loopback, and
//!   the settings for bearer-only Dovecot servers that introspect its tokens.

pub mod ports;
// --- modules owned by the kit helper (dovecot, tls, seed, compare, imap client) go below ---
pub mod compare;
pub mod courier;
pub mod cyrus;
pub mod dovecot;
pub mod hostile;
pub mod imap_client;
pub mod login_log;
pub mod memory;
pub mod oauth_agent;
pub mod oauth_portal;
pub mod oidc;
pub mod proxy;
pub mod seed;
pub mod tls;
pub mod unpacked;

// --- modules owned by the portal/browser work go below ---
pub mod api;
pub mod browser;
pub mod portal;
pub mod postgres;
