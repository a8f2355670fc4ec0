//! The OAuth tokens of a running job: handed to the engine as a token source that
//! refreshes them, and sealed back into the job's credentials after every refresh (a
//! provider that rotates refresh tokens accepts only the newest).

use super::credentials::{Credentials, Update};
use super::store::JobStore;
use crate::engine::TokenHandle;
use crate::oauth::refresh::{OnRefresh, UserTokens};
use crate::oauth::{Provider, TokenSet};
use crate::vault::Vault;
use mailferry_shared::AccountSide;
use std::sync::Arc;

/// One job's token sources share this lock, so that two sides refreshing at once do
/// not overwrite each other's newly sealed tokens.
#[derive(Clone, Default)]
pub struct SealLock(Arc<tokio::sync::Mutex<()>>);

pub fn user_tokens(
    store: &JobStore,
    vault: &Vault,
    job_id: &str,
    side: AccountSide,
    provider: Arc<Provider>,
    tokens: TokenSet,
    lock: &SealLock,
) -> TokenHandle {
    let (store, vault, job_id, lock) = (
        store.clone(),
        vault.clone(),
        job_id.to_owned(),
        lock.clone(),
    );
    let on_refresh: OnRefresh = Arc::new(move |fresh: TokenSet| {
        let (store, vault, job_id, lock) =
            (store.clone(), vault.clone(), job_id.clone(), lock.clone());
        Box::pin(async move {
            let _one_at_a_time = lock.0.lock().await;
            if let Err(err) = reseal(&store, &vault, &job_id, side, fresh).await {
                tracing::warn!(error = %err, ?side, "cannot store the refreshed tokens; the next run may have to sign in again");
            }
        })
    });
    TokenHandle::new(UserTokens::new(provider, tokens, Some(on_refresh)))
}

async fn reseal(
    store: &JobStore,
    vault: &Vault,
    job_id: &str,
    side: AccountSide,
    fresh: TokenSet,
) -> Result<(), super::StoreError> {
    Credentials::update(store, vault, job_id, Update::Refresh, |c| {
        *c.tokens_mut(side) = Some(fresh)
    })
    .await
}
