-- Pacing per account (server profile + user), shared by every node (see
-- backend/src/engine/pacing/). Times in Unix milliseconds from the database's clock.
--
-- A connection slot: one row per slot in use (slot numbers 0 .. cap-1). The holder renews
-- `expires_at_ms` while its connection is open and deletes the row on close; the slot of
-- a node that died is free again once its expiry has passed.
CREATE TABLE pacing_slots (
    account TEXT NOT NULL,
    slot BIGINT NOT NULL,
    holder TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account, slot)
);
-- What an account used in one window (`kind`: download bytes, upload bytes, messages),
-- counted up with an atomic upsert that refuses to go past the cap.
CREATE TABLE pacing_usage (
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (account, kind, window_start_ms)
);
-- When a job paused by a pacing cap (or a throttling server) resumes by itself, in Unix
-- seconds of the database's clock; NULL otherwise.
ALTER TABLE jobs ADD COLUMN resume_at BIGINT;
