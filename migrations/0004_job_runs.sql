-- Every run of a job: which node ran it, from when to when, and how it ended (a job
-- status, `lease_lost`, or `abandoned` when its node stopped renewing the lease and
-- another node took the job over). Times in Unix milliseconds from the database's clock.
CREATE TABLE job_runs (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id),
    node TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT,
    outcome TEXT
);
CREATE INDEX job_runs_job ON job_runs (job_id, started_at_ms);
