-- Replicas (several gorpd on one Postgres; see migrations/postgres/0012).
-- SQLite's gorp.db has exactly one gorpd, so these stay empty here; they
-- exist so that a schema version means the same tables on both engines and
-- `--migrate-from` copies a SQLite store into Postgres table by table.
CREATE TABLE replicas (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    started_at TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE session_leases (
    session_name TEXT PRIMARY KEY,
    replica      TEXT NOT NULL
);
ALTER TABLE messages ADD COLUMN replica TEXT;
