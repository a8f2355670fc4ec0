//! Each source folder's state at the start of its last complete pass (see the migration
//! `0011_folder_sync_state.sql` and `engine::copy::changes`).

use super::{now, opt_u32, Result, UidMap};
use sqlx::Row;

/// A source folder as a complete pass began it, and the target folder that pass filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub source_uidvalidity: u32,
    pub highest_modseq: u64,
    pub uidnext: u32,
    pub messages: u32,
    pub target_folder: String,
    pub target_uidvalidity: u32,
}

impl UidMap {
    /// The state every source folder of the job had at its last complete pass.
    pub async fn sync_states(&self) -> Result<std::collections::HashMap<String, SyncState>> {
        let rows = sqlx::query(
            "SELECT source_folder, source_uidvalidity, highest_modseq, uidnext, messages, \
             target_folder, target_uidvalidity FROM folder_sync_state WHERE job_id = $1",
        )
        .bind(&self.job_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = std::collections::HashMap::new();
        for row in &rows {
            let state = SyncState {
                source_uidvalidity: opt_u32(row, "source_uidvalidity")?.unwrap_or(0),
                highest_modseq: row.try_get::<i64, _>("highest_modseq")?.max(0) as u64,
                uidnext: opt_u32(row, "uidnext")?.unwrap_or(0),
                messages: opt_u32(row, "messages")?.unwrap_or(0),
                target_folder: row.try_get("target_folder")?,
                target_uidvalidity: opt_u32(row, "target_uidvalidity")?.unwrap_or(0),
            };
            out.insert(row.try_get("source_folder")?, state);
        }
        Ok(out)
    }

    /// Records the state a complete pass of `source_folder` began with.
    pub async fn store_sync_state(&self, source_folder: &str, state: &SyncState) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO folder_sync_state (job_id, source_folder, source_uidvalidity, \
             highest_modseq, uidnext, messages, target_folder, target_uidvalidity, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (job_id, source_folder) DO UPDATE SET \
             source_uidvalidity = excluded.source_uidvalidity, \
             highest_modseq = excluded.highest_modseq, uidnext = excluded.uidnext, \
             messages = excluded.messages, target_folder = excluded.target_folder, \
             target_uidvalidity = excluded.target_uidvalidity, updated_at = excluded.updated_at",
        )
        .bind(&self.job_id)
        .bind(source_folder)
        .bind(i64::from(state.source_uidvalidity))
        .bind(i64::try_from(state.highest_modseq).unwrap_or(i64::MAX))
        .bind(i64::from(state.uidnext))
        .bind(i64::from(state.messages))
        .bind(&state.target_folder)
        .bind(i64::from(state.target_uidvalidity))
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
