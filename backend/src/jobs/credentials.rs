//! The two passwords of a job, sealed together in the job row while they are needed.

use crate::vault::{Vault, VaultError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub source_password: String,
    pub target_password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl Credentials {
    pub fn seal(&self, vault: &Vault) -> Result<String, VaultError> {
        let json = serde_json::to_vec(self).map_err(|_| VaultError::Open)?;
        vault.seal(&json)
    }

    pub fn open(sealed: &str, vault: &Vault) -> Result<Self, VaultError> {
        let json = vault.open_sealed(sealed)?;
        serde_json::from_slice(&json).map_err(|_| VaultError::Open)
    }
}
