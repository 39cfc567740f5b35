-- The same table as on Postgres; SQLite is single-node, so only one row is ever live.
CREATE TABLE replicas (
    id TEXT PRIMARY KEY NOT NULL,
    started_at TIMESTAMP NOT NULL,
    seen_at TIMESTAMP NOT NULL,
    key_fingerprint TEXT NOT NULL,
    shared_key BOOLEAN NOT NULL,
    servers TEXT NOT NULL DEFAULT '{}'
);
