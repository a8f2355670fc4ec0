-- Failed sign-ins, counted per account and per client address over a sliding window.
-- In the database so that every node sharing it counts the same attempts.
CREATE TABLE sign_in_failures (
    key TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_key ON sign_in_failures (key, at_ms);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at_ms);
