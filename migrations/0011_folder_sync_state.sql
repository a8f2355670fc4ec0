-- What the source folder looked like at the start of the last complete pass of it
-- (RFC 7162 CONDSTORE: UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT), and which target folder
-- (with its UIDVALIDITY) that pass filled. A re-run that finds all of it unchanged skips
-- the folder; one that finds only HIGHESTMODSEQ moved lists just the messages changed
-- since (CHANGEDSINCE). Written only after a pass that copied everything it listed, so a
-- failed or paused pass never makes the next run skip work (valid on SQLite and
-- PostgreSQL).
CREATE TABLE folder_sync_state (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    source_folder TEXT NOT NULL,
    source_uidvalidity BIGINT NOT NULL,
    highest_modseq BIGINT NOT NULL,
    uidnext BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    target_folder TEXT NOT NULL,
    target_uidvalidity BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, source_folder)
);
