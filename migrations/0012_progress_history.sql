-- A job's progress over time (a sample every few seconds while it copies, the newest
-- hours kept), so that a page opened mid-run or afterwards draws the whole story.
CREATE TABLE job_progress_history (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    at BIGINT NOT NULL,
    messages_done BIGINT NOT NULL,
    bytes_done BIGINT NOT NULL,
    rate_messages DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, at)
);
