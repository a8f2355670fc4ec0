//! What a browser's session holds between "Sign in with …" and the start of the
//! migration: flows waiting for the provider's callback (state, nonce, PKCE verifier),
//! and sides already proven (the mailbox, and its tokens sealed with the server's key:
//! the session store is a database table, and no token is kept there in plaintext).

use super::super::error::ApiFailure;
use crate::oauth::TokenSet;
use crate::vault::Vault;
use mailferry_shared::{AccountSide, OAuthNotice};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use zeroize::Zeroizing;

const FLOWS: &str = "oauth_flows";
const PROOFS: &str = "oauth_proofs";
const NOTICE: &str = "oauth_notice";
/// A flow not finished within this long is forgotten (the provider's page was left open).
pub const FLOW_SECONDS: i64 = 15 * 60;
/// A proven side is kept this long for the user to press "Start".
pub const PROOF_SECONDS: i64 = 60 * 60;
/// Flows open at once per browser (several tabs, both sides).
const MOST_FLOWS: usize = 4;

/// Why a flow was started: a first sign-in, or new consent for a paused job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    SignIn,
    Renew,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingFlow {
    pub route: String,
    pub side: AccountSide,
    pub purpose: Purpose,
    pub secrets: crate::oauth::browser::FlowSecrets,
    pub started_at: i64,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct ProvenSide {
    pub route: String,
    pub side: AccountSide,
    pub user: String,
    pub provider: String,
    /// The tokens (user sign-in), sealed; `None` in app mode (the app copies).
    pub sealed_tokens: Option<String>,
    pub at: i64,
}

fn aad(route: &str, side: AccountSide, user: &str) -> Vec<u8> {
    format!("oauth-proof\u{0}{route}\u{0}{side:?}\u{0}{user}").into_bytes()
}

pub async fn add_flow(session: &Session, flow: PendingFlow) -> Result<(), ApiFailure> {
    let mut flows: Vec<PendingFlow> = session.get(FLOWS).await?.unwrap_or_default();
    flows.retain(|f| crate::clock::unix_seconds() - f.started_at < FLOW_SECONDS);
    flows.push(flow);
    while flows.len() > MOST_FLOWS {
        flows.remove(0);
    }
    session.insert(FLOWS, flows).await?;
    Ok(())
}

/// The flow `state` belongs to, removed (a state is good for one callback only).
pub async fn take_flow(session: &Session, state: &str) -> Result<Option<PendingFlow>, ApiFailure> {
    let mut flows: Vec<PendingFlow> = session.get(FLOWS).await?.unwrap_or_default();
    let found = flows.iter().position(|f| {
        // Compared in constant time: the state guards the callback.
        bool::from(f.secrets.state.as_bytes().ct_eq(state.as_bytes()))
    });
    let flow = found.map(|i| flows.remove(i));
    session.insert(FLOWS, flows).await?;
    Ok(flow.filter(|f| crate::clock::unix_seconds() - f.started_at < FLOW_SECONDS))
}

pub async fn add_proof(
    session: &Session,
    vault: &Vault,
    route: &str,
    side: AccountSide,
    user: &str,
    provider: &str,
    tokens: Option<&TokenSet>,
) -> Result<(), ApiFailure> {
    let sealed_tokens = match tokens {
        Some(tokens) => {
            let json = Zeroizing::new(
                serde_json::to_vec(tokens).map_err(|e| ApiFailure::Internal(e.into()))?,
            );
            Some(
                vault
                    .seal(&json, &aad(route, side, user))
                    .map_err(|e| ApiFailure::Internal(e.into()))?,
            )
        }
        None => None,
    };
    let mut proofs = proofs(session).await?;
    proofs.retain(|p| !(p.route == route && p.side == side));
    proofs.push(ProvenSide {
        route: route.to_owned(),
        side,
        user: user.to_owned(),
        provider: provider.to_owned(),
        sealed_tokens,
        at: crate::clock::unix_seconds(),
    });
    session.insert(PROOFS, proofs).await?;
    Ok(())
}

/// The sides proven in this session and not expired.
pub async fn proofs(session: &Session) -> Result<Vec<ProvenSide>, ApiFailure> {
    let mut proofs: Vec<ProvenSide> = session.get(PROOFS).await?.unwrap_or_default();
    proofs.retain(|p| crate::clock::unix_seconds() - p.at < PROOF_SECONDS);
    Ok(proofs)
}

pub async fn proof(
    session: &Session,
    route: &str,
    side: AccountSide,
) -> Result<Option<ProvenSide>, ApiFailure> {
    Ok(proofs(session)
        .await?
        .into_iter()
        .find(|p| p.route == route && p.side == side))
}

/// Opens the tokens of a proven side.
pub fn open_tokens(vault: &Vault, proof: &ProvenSide) -> Option<TokenSet> {
    let sealed = proof.sealed_tokens.as_ref()?;
    let json = vault
        .open_sealed(sealed, &aad(&proof.route, proof.side, &proof.user))
        .ok()?;
    serde_json::from_slice(&json).ok()
}

pub async fn forget_proof(
    session: &Session,
    route: &str,
    side: AccountSide,
) -> Result<(), ApiFailure> {
    let mut proofs = proofs(session).await?;
    proofs.retain(|p| !(p.route == route && p.side == side));
    session.insert(PROOFS, proofs).await?;
    Ok(())
}

/// Drops every proof (their tokens moved into a job, or the user signed out).
pub async fn clear(session: &Session) -> Result<(), ApiFailure> {
    session.remove_value(PROOFS).await?;
    session.remove_value(FLOWS).await?;
    Ok(())
}

pub async fn set_notice(session: &Session, notice: OAuthNotice) -> Result<(), ApiFailure> {
    session.insert(NOTICE, notice).await?;
    Ok(())
}

pub async fn take_notice(session: &Session) -> Result<Option<OAuthNotice>, ApiFailure> {
    Ok(session.remove::<OAuthNotice>(NOTICE).await?)
}
