-- When a staff member's password (or role) last changed, in Unix milliseconds: a session
-- signed in before that moment is no longer accepted (valid on SQLite and PostgreSQL).
ALTER TABLE staff ADD COLUMN password_changed_at BIGINT NOT NULL DEFAULT 0;
