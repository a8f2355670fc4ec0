//! The durable UID map and journal: which source message became which target message.
//! Every APPEND is preceded by a 'pending' row (the intent), settled to 'done' after.

use super::error::{EngineError, Result};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

mod sync_state;
pub use sync_state::SyncState;

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";

/// One row of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapRow {
    pub source_folder: String,
    pub source_uidvalidity: u32,
    pub source_uid: u32,
    pub target_folder: String,
    pub target_uidvalidity: Option<u32>,
    pub target_uid: Option<u32>,
    pub state: String,
    pub target_uidnext_before: Option<u32>,
    pub size: u64,
    pub internal_date: i64,
    pub content_hash: String,
    pub flags: String,
    /// The message's identity on a label-style source (see `engine::gmail::identity`);
    /// `None` for ordinary sources.
    pub identity: Option<String>,
}

use crate::clock::unix_seconds as now;

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn opt_u32(row: &AnyRow, col: &str) -> Result<Option<u32>> {
    let v: Option<i64> = row.try_get(col)?;
    Ok(v.and_then(|v| u32::try_from(v).ok()))
}

fn map_row(row: &AnyRow) -> Result<MapRow> {
    Ok(MapRow {
        source_folder: row.try_get("source_folder")?,
        source_uidvalidity: opt_u32(row, "source_uidvalidity")?.unwrap_or(0),
        source_uid: opt_u32(row, "source_uid")?.unwrap_or(0),
        target_folder: row.try_get("target_folder")?,
        target_uidvalidity: opt_u32(row, "target_uidvalidity")?,
        target_uid: opt_u32(row, "target_uid")?,
        state: row.try_get("state")?,
        target_uidnext_before: opt_u32(row, "target_uidnext_before")?,
        size: row.try_get::<i64, _>("size")?.max(0) as u64,
        internal_date: row.try_get("internal_date")?,
        content_hash: row.try_get("content_hash")?,
        flags: row.try_get("flags")?,
        identity: row.try_get("message_identity")?,
    })
}

const COLUMNS: &str = "source_folder, source_uidvalidity, source_uid, target_folder, \
    target_uidvalidity, target_uid, state, target_uidnext_before, size, internal_date, \
    content_hash, flags, message_identity";

/// Finds the job for this pair of accounts, or creates it; re-runs share the map. Safe
/// against itself: callers racing for one pair all get the one job the unique index
/// (`jobs_account_pair`) lets through.
pub async fn find_or_create_job(
    pool: &AnyPool,
    source_account: &str,
    target_account: &str,
) -> Result<String> {
    let mut conn = pool.acquire().await?;
    find_or_create_job_on(&mut conn, source_account, target_account).await
}

/// [`find_or_create_job`] on one connection, e.g. inside the caller's transaction.
pub async fn find_or_create_job_on(
    conn: &mut sqlx::AnyConnection,
    source_account: &str,
    target_account: &str,
) -> Result<String> {
    sqlx::query(
        "INSERT INTO jobs (id, source_account, target_account, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (source_account, target_account) DO NOTHING",
    )
    .bind(new_job_id(source_account, target_account))
    .bind(source_account)
    .bind(target_account)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    let id: String =
        sqlx::query_scalar("SELECT id FROM jobs WHERE source_account = $1 AND target_account = $2")
            .bind(source_account)
            .bind(target_account)
            .fetch_one(&mut *conn)
            .await?;
    Ok(id)
}

fn new_job_id(source: &str, target: &str) -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Random bytes too: two callers racing for one pair in the same nanosecond must not
    // collide on the id (only the pair's index may refuse the loser).
    let mut salt = [0u8; 16];
    let _ = getrandom::getrandom(&mut salt);
    let digest = Sha256::digest(format!(
        "{source}\n{target}\n{nanos}\n{}\n{}",
        std::process::id(),
        hex::encode(salt)
    ));
    format!("job-{}", &hex::encode(digest)[..20])
}

#[derive(Debug, Clone)]
pub struct UidMap {
    pool: AnyPool,
    job_id: String,
    lease_owner: Option<String>,
}

impl UidMap {
    pub fn new(pool: AnyPool, job_id: String) -> Self {
        UidMap {
            pool,
            job_id,
            lease_owner: None,
        }
    }

    /// Every write of the map (intents, settling, flags, forgetting, re-keying, skips,
    /// folder targets) happens only while the job is leased to `owner` (see
    /// `Settings::lease_owner`), checked in the write's own transaction.
    pub fn fenced_by(mut self, owner: Option<String>) -> Self {
        self.lease_owner = owner;
        self
    }

    /// A transaction for one write of the map, fenced: when a lease owner is set, its
    /// first statement checks that the job is still leased to it, and the write is
    /// refused with [`EngineError::LeaseLost`] otherwise. Touching the job row also locks
    /// it (PostgreSQL; SQLite's writer lock is taken by that first write) until the
    /// transaction ends, so a takeover waits for the write and then sees it, and nothing
    /// is written once another node holds the job.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        if let Some(owner) = &self.lease_owner {
            let still_ours = sqlx::query(
                "UPDATE jobs SET lease_owner = lease_owner WHERE id = $1 AND lease_owner = $2",
            )
            .bind(&self.job_id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if still_ours == 0 {
                tx.rollback().await?;
                tracing::warn!(job = %self.job_id, "{}", EngineError::LeaseLost);
                return Err(EngineError::LeaseLost);
            }
        }
        Ok(tx)
    }

    /// Every row of one source folder (all UIDVALIDITYs).
    pub async fn folder_rows(&self, source_folder: &str) -> Result<Vec<MapRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM uid_map WHERE job_id = $1 AND source_folder = $2 ORDER BY source_uid"
        ))
        .bind(&self.job_id)
        .bind(source_folder)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(map_row).collect()
    }

    pub async fn all_rows(&self) -> Result<Vec<MapRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM uid_map WHERE job_id = $1 ORDER BY source_folder, source_uidvalidity, source_uid"
        ))
        .bind(&self.job_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(map_row).collect()
    }

    /// Writes the intents for a batch, in one transaction, before the APPEND is sent.
    pub async fn write_intents(&self, rows: &[MapRow]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for r in rows {
            sqlx::query(&format!(
                "INSERT INTO uid_map (job_id, {COLUMNS}, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (job_id, source_folder, source_uidvalidity, source_uid) DO UPDATE SET \
                 target_folder = excluded.target_folder, target_uidvalidity = excluded.target_uidvalidity, \
                 target_uid = excluded.target_uid, state = excluded.state, \
                 target_uidnext_before = excluded.target_uidnext_before, size = excluded.size, \
                 internal_date = excluded.internal_date, content_hash = excluded.content_hash, \
                 flags = excluded.flags, message_identity = excluded.message_identity, \
                 updated_at = excluded.updated_at"
            ))
            .bind(&self.job_id)
            .bind(&r.source_folder)
            .bind(i64::from(r.source_uidvalidity))
            .bind(i64::from(r.source_uid))
            .bind(&r.target_folder)
            .bind(r.target_uidvalidity.map(i64::from))
            .bind(r.target_uid.map(i64::from))
            .bind(&r.state)
            .bind(r.target_uidnext_before.map(i64::from))
            .bind(r.size as i64)
            .bind(r.internal_date)
            .bind(&r.content_hash)
            .bind(&r.flags)
            .bind(r.identity.clone())
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs `sql` once for each of `items`, messages of one source folder, in a single
    /// transaction (none for an empty list). `$1`..`$4` are the job, the folder, its
    /// UIDVALIDITY and the item's UID; `bind` binds whatever follows.
    async fn per_message<'q, T>(
        &'q self,
        sql: &'q str,
        source_folder: &'q str,
        source_uidvalidity: u32,
        items: &'q [T],
        uid: impl Fn(&T) -> u32,
        bind: impl Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for item in items {
            let query = sqlx::query(sql)
                .bind(&self.job_id)
                .bind(source_folder)
                .bind(i64::from(source_uidvalidity))
                .bind(i64::from(uid(item)));
            bind(query, item).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Settles intents: each (source uid -> target uid) becomes 'done'.
    pub async fn mark_done(
        &self,
        source_folder: &str,
        source_uidvalidity: u32,
        target_uidvalidity: u32,
        pairs: &[(u32, Option<u32>)],
    ) -> Result<()> {
        self.per_message(
            "UPDATE uid_map SET state = $5, target_uidvalidity = $6, target_uid = $7, updated_at = $8 \
             WHERE job_id = $1 AND source_folder = $2 AND source_uidvalidity = $3 AND source_uid = $4",
            source_folder,
            source_uidvalidity,
            pairs,
            |(src, _)| *src,
            |q, (_, dst)| {
                q.bind(DONE)
                    .bind(i64::from(target_uidvalidity))
                    .bind(dst.map(i64::from))
                    .bind(now())
            },
        )
        .await
    }

    /// Forgets intents whose APPEND never arrived, so the messages are copied again.
    pub async fn drop_intents(
        &self,
        source_folder: &str,
        source_uidvalidity: u32,
        uids: &[u32],
    ) -> Result<()> {
        self.forget_in_state(source_folder, source_uidvalidity, uids, PENDING)
            .await
    }

    /// Forgets copies that are gone: their target folder was made again (a new
    /// UIDVALIDITY) and they are not in it, so the messages are copied again.
    pub async fn forget_done(
        &self,
        source_folder: &str,
        source_uidvalidity: u32,
        uids: &[u32],
    ) -> Result<()> {
        self.forget_in_state(source_folder, source_uidvalidity, uids, DONE)
            .await
    }

    async fn forget_in_state(
        &self,
        source_folder: &str,
        source_uidvalidity: u32,
        uids: &[u32],
        state: &'static str,
    ) -> Result<()> {
        self.per_message(
            "DELETE FROM uid_map WHERE job_id = $1 AND source_folder = $2 AND source_uidvalidity = $3 \
             AND source_uid = $4 AND state = $5",
            source_folder,
            source_uidvalidity,
            uids,
            |uid| *uid,
            move |q, _| q.bind(state),
        )
        .await
    }

    pub async fn set_flags(
        &self,
        source_folder: &str,
        source_uidvalidity: u32,
        updates: &[(u32, String)],
    ) -> Result<()> {
        self.per_message(
            "UPDATE uid_map SET flags = $5, updated_at = $6 WHERE job_id = $1 AND source_folder = $2 \
             AND source_uidvalidity = $3 AND source_uid = $4",
            source_folder,
            source_uidvalidity,
            updates,
            |(uid, _)| *uid,
            |q, (_, flags)| q.bind(flags).bind(now()),
        )
        .await
    }

    /// After a source UIDVALIDITY change: moves a matched row to the message's new identity.
    pub async fn rekey(&self, source_folder: &str, old: (u32, u32), new: (u32, u32)) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE uid_map SET source_uidvalidity = $1, source_uid = $2, updated_at = $3 \
             WHERE job_id = $4 AND source_folder = $5 AND source_uidvalidity = $6 AND source_uid = $7",
        )
        .bind(i64::from(new.0))
        .bind(i64::from(new.1))
        .bind(now())
        .bind(&self.job_id)
        .bind(source_folder)
        .bind(i64::from(old.0))
        .bind(i64::from(old.1))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_skip(&self, skip: &SkipRecord) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO skipped_messages (job_id, source_folder, source_uidvalidity, source_uid, size, \
             internal_date, subject, reason, attempts, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (job_id, source_folder, source_uidvalidity, source_uid) DO UPDATE SET \
             size = excluded.size, internal_date = excluded.internal_date, subject = excluded.subject, \
             reason = excluded.reason, attempts = skipped_messages.attempts + excluded.attempts, \
             updated_at = excluded.updated_at",
        )
        .bind(&self.job_id)
        .bind(&skip.folder)
        .bind(i64::from(skip.uidvalidity))
        .bind(i64::from(skip.uid))
        .bind(skip.size.map(|s| s as i64))
        .bind(skip.internal_date)
        .bind(skip.subject.clone())
        .bind(&skip.reason)
        .bind(i64::from(skip.attempts))
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A message copied after all: it is no longer skipped.
    pub async fn clear_skips(
        &self,
        source_folder: &str,
        source_uidvalidity: u32,
        uids: &[u32],
    ) -> Result<()> {
        self.per_message(
            "DELETE FROM skipped_messages WHERE job_id = $1 AND source_folder = $2 \
             AND source_uidvalidity = $3 AND source_uid = $4",
            source_folder,
            source_uidvalidity,
            uids,
            |uid| *uid,
            |q, _| q,
        )
        .await
    }

    /// Moves the rows an earlier version kept under a source folder's old name (`from`)
    /// to its name now (`to`): the UID map, the skipped messages and the folder target.
    /// Nothing is moved when `to` has rows already. Returns the UID map rows moved.
    pub async fn adopt_folder(&self, from: &str, to: &str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let taken: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM uid_map WHERE job_id = $1 AND source_folder = $2) \
             + (SELECT COUNT(*) FROM folder_map WHERE job_id = $1 AND source_folder = $2)",
        )
        .bind(&self.job_id)
        .bind(to)
        .fetch_one(&mut *tx)
        .await?;
        if taken > 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        let mut moved = 0;
        for table in ["uid_map", "skipped_messages", "folder_map"] {
            let done = sqlx::query(&format!(
                "UPDATE {table} SET source_folder = $1 WHERE job_id = $2 AND source_folder = $3"
            ))
            .bind(to)
            .bind(&self.job_id)
            .bind(from)
            .execute(&mut *tx)
            .await?;
            if table == "uid_map" {
                moved = done.rows_affected();
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Target folder (display name, `/`-separated) of every source folder seen before.
    pub async fn folder_targets(&self) -> Result<std::collections::HashMap<String, String>> {
        let rows =
            sqlx::query("SELECT source_folder, target_folder FROM folder_map WHERE job_id = $1")
                .bind(&self.job_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("source_folder")?, r.try_get("target_folder")?)))
            .collect()
    }

    pub async fn remember_folder(&self, source_folder: &str, target_folder: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO folder_map (job_id, source_folder, target_folder, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job_id, source_folder) DO UPDATE SET target_folder = excluded.target_folder, \
             updated_at = excluded.updated_at",
        )
        .bind(&self.job_id)
        .bind(source_folder)
        .bind(target_folder)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The map as CSV (a header line, then one line per message). Folder names and flags
    /// come from mailboxes, so every cell is made formula-safe ([`crate::csv_cells`]).
    pub async fn export_csv(&self) -> Result<String> {
        use crate::csv_cells::line;
        let mut out = line(&[
            "source_folder",
            "source_uidvalidity",
            "source_uid",
            "target_folder",
            "target_uidvalidity",
            "target_uid",
            "state",
            "size",
            "internal_date",
            "content_hash",
            "flags",
        ]);
        let text = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
        for r in self.all_rows().await? {
            out.push_str(&line(&[
                r.source_folder,
                r.source_uidvalidity.to_string(),
                r.source_uid.to_string(),
                r.target_folder,
                text(r.target_uidvalidity),
                text(r.target_uid),
                r.state,
                r.size.to_string(),
                r.internal_date.to_string(),
                r.content_hash,
                r.flags,
            ]));
        }
        Ok(out)
    }

    /// The map as a JSON array of rows.
    pub async fn export_json(&self) -> Result<String> {
        let rows = self.all_rows().await?;
        Ok(serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".to_owned()))
    }
}

/// A message that could not be copied.
#[derive(Debug, Clone)]
pub struct SkipRecord {
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub size: Option<u64>,
    pub internal_date: Option<i64>,
    pub subject: Option<String>,
    pub reason: String,
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn simultaneous_sign_ins_for_one_mailbox_pair_share_one_job() {
        use crate::user_names::{normalize, UserNameCase};
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&crate::config::sqlite_url(&dir.path().join("m.db")))
            .await
            .unwrap();
        // The same two people, typed in every way a sign-in form or CSV file allows.
        let spellings = [
            ("J\u{00FC}rgen@Old.example", "juergen@new.example"),
            ("  ju\u{0308}rgen@old.example", "JUERGEN@new.example "),
            ("J\u{00DC}RGEN@OLD.EXAMPLE", "Juergen@New.Example"),
            ("ju\u{0308}rgen@old.EXAMPLE\t", "juergen@new.example"),
        ];
        // Every connection open beforehand, and every caller released at once: the
        // callers really overlap.
        let mut warm = Vec::new();
        for _ in 0..8 {
            warm.push(db.pool().acquire().await.unwrap());
        }
        drop(warm);
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(48));
        let mut calls = Vec::new();
        for i in 0..48 {
            let pool = db.pool().clone();
            let start = start.clone();
            let (source, target) = spellings[i % spellings.len()];
            let source = format!(
                "{}@old:993",
                normalize(source, UserNameCase::CaseInsensitive)
            );
            let target = format!(
                "{}@new:993",
                normalize(target, UserNameCase::CaseInsensitive)
            );
            calls.push(tokio::spawn(async move {
                start.wait().await;
                find_or_create_job(&pool, &source, &target).await
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for call in calls {
            ids.insert(call.await.unwrap().unwrap());
        }
        assert_eq!(ids.len(), 1, "one mailbox pair got several jobs: {ids:?}");
        let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(jobs, 1);
    }

    #[tokio::test]
    async fn intents_settle_and_export() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&crate::config::sqlite_url(&dir.path().join("m.db")))
            .await
            .unwrap();
        let job = find_or_create_job(db.pool(), "a@h:1", "b@h:2")
            .await
            .unwrap();
        assert_eq!(
            find_or_create_job(db.pool(), "a@h:1", "b@h:2")
                .await
                .unwrap(),
            job
        );
        let map = UidMap::new(db.pool().clone(), job);
        let row = MapRow {
            source_folder: "INBOX".into(),
            source_uidvalidity: 7,
            source_uid: 3,
            target_folder: "INBOX, old".into(),
            target_uidvalidity: None,
            target_uid: None,
            state: PENDING.into(),
            target_uidnext_before: Some(10),
            size: 100,
            internal_date: 1_600_000_000,
            content_hash: "ab".into(),
            flags: "\\seen".into(),
            identity: None,
        };
        map.write_intents(&[
            row.clone(),
            MapRow {
                source_uid: 4,
                ..row.clone()
            },
        ])
        .await
        .unwrap();
        map.mark_done("INBOX", 7, 99, &[(3, Some(11))])
            .await
            .unwrap();
        map.drop_intents("INBOX", 7, &[4]).await.unwrap();
        let rows = map.folder_rows("INBOX").await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].state.as_str(), rows[0].target_uid),
            (DONE, Some(11))
        );
        let csv = map.export_csv().await.unwrap();
        assert!(
            csv.contains("INBOX,7,3,\"INBOX, old\",99,11,done,100"),
            "{csv}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&map.export_json().await.unwrap()).unwrap();
        assert_eq!(json[0]["target_uid"], 11);
    }

    #[tokio::test]
    async fn rows_kept_under_a_folder_s_old_name_are_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&crate::config::sqlite_url(&dir.path().join("m.db")))
            .await
            .unwrap();
        let job = find_or_create_job(db.pool(), "a@h:1", "b@h:2")
            .await
            .unwrap();
        let map = UidMap::new(db.pool().clone(), job);
        let row = MapRow {
            source_folder: "Grüße".into(),
            source_uidvalidity: 7,
            source_uid: 3,
            target_folder: "Gr&APwA3w-e".into(),
            target_uidvalidity: Some(9),
            target_uid: Some(1),
            state: DONE.into(),
            target_uidnext_before: Some(1),
            size: 100,
            internal_date: 1_600_000_000,
            content_hash: "ab".into(),
            flags: String::new(),
            identity: None,
        };
        map.write_intents(std::slice::from_ref(&row)).await.unwrap();
        map.remember_folder("Grüße", "Grüße").await.unwrap();
        let new = "Grüße (raw name Gr\\xc3\\xbc\\xc3\\x9fe)";
        assert_eq!(map.adopt_folder("Grüße", new).await.unwrap(), 1);
        assert!(map.folder_rows("Grüße").await.unwrap().is_empty());
        assert_eq!(map.folder_rows(new).await.unwrap().len(), 1);
        assert_eq!(
            map.folder_targets()
                .await
                .unwrap()
                .get(new)
                .map(String::as_str),
            Some("Grüße")
        );
        // Rows under the new name: nothing more is moved onto them.
        map.write_intents(&[row]).await.unwrap();
        assert_eq!(map.adopt_folder("Grüße", new).await.unwrap(), 0);
        assert_eq!(map.folder_rows("Grüße").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_fenced_map_writes_nothing_once_the_lease_is_someone_elses() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&crate::config::sqlite_url(&dir.path().join("m.db")))
            .await
            .unwrap();
        let job = find_or_create_job(db.pool(), "a@h:1", "b@h:2")
            .await
            .unwrap();
        let set_owner = |owner: &'static str| {
            let pool = db.pool().clone();
            let job = job.clone();
            async move {
                sqlx::query("UPDATE jobs SET lease_owner = $1 WHERE id = $2")
                    .bind(owner)
                    .bind(job)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        };
        let map = UidMap::new(db.pool().clone(), job.clone()).fenced_by(Some("node-a".into()));
        let row = MapRow {
            source_folder: "INBOX".into(),
            source_uidvalidity: 7,
            source_uid: 1,
            target_folder: "INBOX".into(),
            target_uidvalidity: None,
            target_uid: None,
            state: PENDING.into(),
            target_uidnext_before: Some(1),
            size: 10,
            internal_date: 1_600_000_000,
            content_hash: "cd".into(),
            flags: String::new(),
            identity: None,
        };
        set_owner("node-a").await;
        map.write_intents(std::slice::from_ref(&row)).await.unwrap();
        // Another node took the job over: no more intents, so no more APPENDs.
        set_owner("node-b").await;
        let second = MapRow {
            source_uid: 2,
            ..row
        };
        assert!(matches!(
            map.write_intents(&[second]).await,
            Err(EngineError::LeaseLost)
        ));
        assert_eq!(map.all_rows().await.unwrap().len(), 1);
    }

    /// Every row of the job's map tables with its update time, as the database has them.
    async fn stored(pool: &AnyPool, job: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (table, columns) in [
            (
                "uid_map",
                "source_folder, source_uidvalidity, source_uid, state, target_uid, flags, updated_at",
            ),
            (
                "skipped_messages",
                "source_folder, source_uidvalidity, source_uid, reason, attempts, updated_at",
            ),
            ("folder_map", "source_folder, target_folder, updated_at"),
        ] {
            let rows = sqlx::query(&format!(
                "SELECT {columns} FROM {table} WHERE job_id = $1 ORDER BY 1, 2, 3"
            ))
            .bind(job)
            .fetch_all(pool)
            .await
            .unwrap();
            for row in rows {
                let cells: Vec<String> = (0..columns.split(',').count())
                    .map(|i| {
                        row.try_get::<Option<String>, _>(i)
                            .map(|v| v.unwrap_or_default())
                            .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                            .unwrap()
                    })
                    .collect();
                out.push(format!("{table}: {}", cells.join(" | ")));
            }
        }
        out
    }

    #[tokio::test]
    async fn every_write_of_a_fenced_map_is_refused_once_another_node_holds_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&crate::config::sqlite_url(&dir.path().join("m.db")))
            .await
            .unwrap();
        let pool = db.pool().clone();
        let job = find_or_create_job(&pool, "a@h:1", "b@h:2").await.unwrap();
        let set_owner = |owner: &'static str| {
            let pool = pool.clone();
            let job = job.clone();
            async move {
                sqlx::query("UPDATE jobs SET lease_owner = $1 WHERE id = $2")
                    .bind(owner)
                    .bind(job)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        };
        let map = UidMap::new(pool.clone(), job.clone()).fenced_by(Some("node-a".into()));
        let row = |uid: u32| MapRow {
            source_folder: "INBOX".into(),
            source_uidvalidity: 7,
            source_uid: uid,
            target_folder: "INBOX".into(),
            target_uidvalidity: None,
            target_uid: None,
            state: PENDING.into(),
            target_uidnext_before: Some(1),
            size: 10,
            internal_date: 1_600_000_000,
            content_hash: "cd".into(),
            flags: String::new(),
            identity: None,
        };
        let skip = |uid: u32| SkipRecord {
            folder: "INBOX".into(),
            uidvalidity: 7,
            uid,
            size: Some(10),
            internal_date: None,
            subject: None,
            reason: "too large".into(),
            attempts: 1,
        };
        set_owner("node-a").await;
        // While the lease is ours, every kind of write goes through.
        map.write_intents(&[row(1), row(2), row(3), row(4)])
            .await
            .unwrap();
        map.mark_done("INBOX", 7, 9, &[(1, Some(1)), (3, Some(3))])
            .await
            .unwrap();
        map.set_flags("INBOX", 7, &[(1, "\\seen".into())])
            .await
            .unwrap();
        map.record_skip(&skip(5)).await.unwrap();
        map.record_skip(&skip(6)).await.unwrap();
        map.remember_folder("INBOX", "INBOX").await.unwrap();
        // Another node took the job over (the lease ran out and it claimed the job).
        set_owner("node-b").await;
        let before = stored(&pool, &job).await;
        assert_eq!(before.len(), 7, "{before:#?}");
        // Time moves on, so a write that slipped through would show in `updated_at`.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let lost = |r: Result<()>, what: &str| {
            assert!(
                matches!(r, Err(EngineError::LeaseLost)),
                "{what} was not refused: {r:?}"
            );
        };
        lost(map.write_intents(&[row(8)]).await, "write_intents");
        lost(
            map.mark_done("INBOX", 7, 9, &[(2, Some(2))]).await,
            "mark_done",
        );
        lost(map.drop_intents("INBOX", 7, &[4]).await, "drop_intents");
        lost(map.forget_done("INBOX", 7, &[3]).await, "forget_done");
        lost(
            map.set_flags("INBOX", 7, &[(1, "\\flagged".into())]).await,
            "set_flags",
        );
        lost(map.rekey("INBOX", (7, 1), (8, 1)).await, "rekey");
        lost(map.record_skip(&skip(5)).await, "record_skip");
        lost(map.clear_skips("INBOX", 7, &[6]).await, "clear_skips");
        lost(
            map.remember_folder("INBOX", "Archive").await,
            "remember_folder",
        );
        assert_eq!(stored(&pool, &job).await, before);
        // The map of an unfenced run (the command line) is not touched by leases.
        let cli = UidMap::new(pool.clone(), job.clone());
        cli.drop_intents("INBOX", 7, &[4]).await.unwrap();
        assert_eq!(stored(&pool, &job).await.len(), 6);
    }
}
