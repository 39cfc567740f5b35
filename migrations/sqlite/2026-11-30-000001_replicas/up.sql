-- The same table as on Postgres; SQLite is single-node, so only one row is ever live.
CREATE TABLE replicas (
    id TEXT PRIMARY KEY NOT NULL,
    started_at TIMESTAMP NOT NULL,
    seen_at TIMESTAMP NOT NULL,
    key_fingerprint TEXT NOT NULL,
    shared_key BOOLEAN NOT NULL,
    servers TEXT NOT NULL DEFAULT '{}'
);

-- MCP sessions their clients ended (DELETE): every replica refuses their sealed ids until they
-- would have expired anyway (a replica started later reads them here).
CREATE TABLE ended_sessions (
    transport_id TEXT PRIMARY KEY NOT NULL,
    until TIMESTAMP NOT NULL
);
