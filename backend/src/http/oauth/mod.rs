//! "Sign in with Microsoft / Google": the browser side of OAuth 2.0.
//!
//! `GET /api/oauth/start?route=R&side=S` sends the browser to the provider;
//! `GET /api/oauth/callback` is the redirect URI registered with the provider: it hands
//! over to `/api/oauth/complete` by a same-site navigation (the session cookie is
//! `SameSite=Strict`, so it does not come along on the provider's cross-site redirect);
//! `complete` checks `state`, exchanges the code, verifies the ID token, proves the
//! mailbox with a real IMAP login, and keeps the side as proven in the session until
//! the user starts. `GET /api/oauth/status` tells the sign-in page what is proven.

mod flow;
pub mod proofs;

pub use flow::routes;
pub(crate) use flow::side_words;
