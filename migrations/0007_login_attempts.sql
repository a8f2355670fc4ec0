-- Sign-in attempts, reserved before the slow login starts and kept as failures when the
-- password was wrong (see backend/src/http/rate_limit.rs). Replaces sign_in_failures,
-- which could only count an attempt after it had been evaluated.
DROP TABLE sign_in_failures;
CREATE TABLE login_attempts (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    -- 1 while the attempt is being evaluated, 0 once it is a counted failure.
    pending BIGINT NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts (key, at_ms);
CREATE INDEX login_attempts_at ON login_attempts (at_ms);
