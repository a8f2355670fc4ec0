//! OAuth 2.0 and OpenID Connect: how the portal gets bearer tokens for IMAP logins.
//!
//! - `settings`: a server profile's `oauth` table, with the Microsoft and Google presets.
//! - `provider`: one provider (discovery, code exchange, refresh, client credentials,
//!   the start-up check of issuer and secret), over one HTTP client without redirects.
//! - `browser`: the user's sign-in (authorization code, PKCE, state, nonce, ID token).
//! - `refresh`: a user's tokens as the engine asks for them, refreshed before expiry.
//! - `app`: app mode, tokens with no user (client credentials, RFC 7523 assertions).
//! - `tokens`: the token set sealed with a job's credentials.
//!
//! The engine sees none of this: it asks a [`crate::engine::TokenSource`] for a token.

pub mod app;
pub mod browser;
pub mod provider;
pub mod refresh;
pub mod settings;
pub mod tokens;

pub use provider::{Provider, ProviderError};
pub use settings::{AuthKind, OAuthSettings, Preset};
pub use tokens::TokenSet;
