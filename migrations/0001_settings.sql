-- Key/value settings the server keeps about itself (valid on SQLite and PostgreSQL).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
