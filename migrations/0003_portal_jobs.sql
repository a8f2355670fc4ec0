-- The portal's view of a job: who owns it, its route, status, encrypted credentials,
-- the worker lease, and a progress snapshot the helpdesk table reads without the engine.
ALTER TABLE jobs ADD COLUMN route TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN source_user TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN target_user TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN status TEXT NOT NULL DEFAULT 'ready';
ALTER TABLE jobs ADD COLUMN status_reason TEXT;
-- Both passwords, sealed with the server's key (ChaCha20-Poly1305), base64. NULL once erased.
ALTER TABLE jobs ADD COLUMN credentials TEXT;
ALTER TABLE jobs ADD COLUMN batch_id TEXT;
ALTER TABLE jobs ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN started_at BIGINT;
ALTER TABLE jobs ADD COLUMN finished_at BIGINT;
ALTER TABLE jobs ADD COLUMN next_sync_at BIGINT;
-- The worker that holds the job and until when (renewed by heartbeats).
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
ALTER TABLE jobs ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0;
-- Progress of the current (or last) run: a JSON JobProgress snapshot.
ALTER TABLE jobs ADD COLUMN progress TEXT;
ALTER TABLE jobs ADD COLUMN messages_done BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN messages_total BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN skipped BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_status ON jobs (status, updated_at);
CREATE INDEX jobs_route ON jobs (route);

-- The event log of each job, replayed to SSE clients after `Last-Event-ID`.
CREATE TABLE job_events (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE staff (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every staff action on a job, kept for accountability.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    staff TEXT NOT NULL,
    action TEXT NOT NULL,
    job_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

-- A CSV import: one batch of jobs.
CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    file_name TEXT NOT NULL,
    jobs BIGINT NOT NULL
);
