//! Logging in: passwords (LOGIN, SASL PLAIN) and OAuth 2.0 bearer tokens (SASL XOAUTH2
//! and OAUTHBEARER), and the token sources the latter ask.

pub mod token;

pub use token::{AccessToken, StaticToken, TokenError, TokenHandle, TokenSource};
