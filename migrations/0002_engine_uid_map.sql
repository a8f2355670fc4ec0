-- The copy engine's durable state (valid on SQLite and PostgreSQL).

-- One migration from a source account to a target account. Minimal on purpose: the
-- portal adds its own columns later. Accounts are `user@host:port`.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    source_account TEXT NOT NULL,
    target_account TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX jobs_accounts ON jobs (source_account, target_account);

-- The UID map and journal. A row is written with state 'pending' BEFORE the APPEND that
-- copies the message (with the target's UIDNEXT at that moment), and becomes 'done' with
-- the target UID once the server has it. After a crash, a pending row is settled by
-- looking at the target (UIDs from target_uidnext_before on, matched by size and hash)
-- before anything is sent again: no duplicates, no losses.
CREATE TABLE uid_map (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    source_folder TEXT NOT NULL,
    source_uidvalidity BIGINT NOT NULL,
    source_uid BIGINT NOT NULL,
    target_folder TEXT NOT NULL,
    target_uidvalidity BIGINT,
    target_uid BIGINT,
    state TEXT NOT NULL,
    target_uidnext_before BIGINT,
    size BIGINT NOT NULL,
    internal_date BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    -- The flags last given to the target copy (sorted, space-separated): a re-run
    -- propagates source flag changes by comparing with these.
    flags TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, source_folder, source_uidvalidity, source_uid)
);
CREATE INDEX uid_map_pending ON uid_map (job_id, state);

-- Messages the last run could not copy, with what the user needs to find them.
CREATE TABLE skipped_messages (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    source_folder TEXT NOT NULL,
    source_uidvalidity BIGINT NOT NULL,
    source_uid BIGINT NOT NULL,
    size BIGINT,
    internal_date BIGINT,
    subject TEXT,
    reason TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, source_folder, source_uidvalidity, source_uid)
);

-- Where each source folder of a job goes, fixed at its first run: a re-run keeps sending
-- new mail to the same target folder even if the target has changed meanwhile (e.g. a
-- special-use folder appeared), unless the admin maps it anew with --map.
CREATE TABLE folder_map (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    source_folder TEXT NOT NULL,
    target_folder TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, source_folder)
);
