CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    transport_type TEXT NOT NULL,
    config TEXT NOT NULL,
    last_connected TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE vmcps (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    active_config TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Membership of servers in vMCPs. A server that a vMCP uses cannot be deleted.
CREATE TABLE vmcp_servers (
    vmcp_id TEXT NOT NULL REFERENCES vmcps (id) ON DELETE CASCADE,
    server_id TEXT NOT NULL REFERENCES mcp_servers (id) ON DELETE RESTRICT,
    priority INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (vmcp_id, server_id)
);
CREATE INDEX vmcp_servers_server_id ON vmcp_servers (server_id);

-- One row per operation on a vMCP. No foreign keys: logs outlive the vMCPs and servers they name.
CREATE TABLE operation_logs (
    id TEXT PRIMARY KEY NOT NULL,
    timestamp TIMESTAMP NOT NULL,
    client_id TEXT NOT NULL,
    vmcp_id TEXT,
    method TEXT NOT NULL,
    mcp_server_id TEXT,
    target TEXT,
    arguments TEXT,
    result TEXT,
    result_truncated BOOLEAN NOT NULL DEFAULT 0,
    active_config_snapshot TEXT,
    duration_ms DOUBLE NOT NULL DEFAULT 0,
    success BOOLEAN NOT NULL DEFAULT 1,
    error TEXT,
    parent_log_id TEXT,
    source TEXT NOT NULL DEFAULT 'rest'
);
CREATE INDEX operation_logs_time ON operation_logs (timestamp, id);
CREATE INDEX operation_logs_vmcp_time ON operation_logs (vmcp_id, timestamp);
CREATE INDEX operation_logs_client_time ON operation_logs (client_id, timestamp);
CREATE INDEX operation_logs_method_time ON operation_logs (method, timestamp);
