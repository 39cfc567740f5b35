-- OAuth to upstream servers. One row per server that signed in (or is signing in): the client
-- vMCP is at its authorization server, that server's metadata, and the tokens (write-only:
-- never returned by the API).
CREATE TABLE oauth_grants (
    server_id TEXT PRIMARY KEY NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    client TEXT,
    metadata TEXT,
    credentials TEXT,
    -- A refresh under way, by any replica, holds this lease: refreshes of one grant are serial,
    -- so a rotating refresh token is never spent twice.
    refreshing_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);

-- Sign-ins under way, by their `state` (the PKCE verifier and the expected issuer) with the
-- client they were started with. A callback consumes its row; a row is good for 15 minutes. Any
-- replica can complete any sign-in.
CREATE TABLE oauth_states (
    csrf TEXT PRIMARY KEY NOT NULL,
    server_id TEXT NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    client TEXT,
    created_at TIMESTAMP NOT NULL
);
