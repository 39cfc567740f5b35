-- Replicas of one deployment on this database: each refreshes its row every few seconds, with
-- its session key's fingerprint (replicas must share a key) and its view of the servers.
CREATE TABLE replicas (
    id TEXT PRIMARY KEY NOT NULL,
    started_at TIMESTAMP NOT NULL,
    seen_at TIMESTAMP NOT NULL,
    key_fingerprint TEXT NOT NULL,
    shared_key BOOLEAN NOT NULL,
    servers TEXT NOT NULL DEFAULT '{}'
);

-- Every change of a server or a vMCP, by whatever writes it, is announced on the channel
-- vmcp_config when its transaction commits, with a revision from this sequence; the replicas
-- LISTEN and reload what changed.
CREATE SEQUENCE config_revision;

CREATE FUNCTION vmcp_config_changed() RETURNS trigger AS $$
DECLARE
    kind TEXT;
    id TEXT;
BEGIN
    IF TG_TABLE_NAME = 'mcp_servers' THEN
        kind := 'server';
        IF TG_OP = 'UPDATE' AND (to_jsonb(OLD) - 'last_connected' - 'last_error' - 'updated_at')
            = (to_jsonb(NEW) - 'last_connected' - 'last_error' - 'updated_at') THEN
            -- Connection bookkeeping only: nothing another replica acts on.
            RETURN NULL;
        END IF;
        id := COALESCE(NEW.id, OLD.id);
    ELSIF TG_TABLE_NAME = 'vmcps' THEN
        kind := 'vmcp';
        id := COALESCE(NEW.id, OLD.id);
    ELSE
        kind := 'vmcp';
        id := COALESCE(NEW.vmcp_id, OLD.vmcp_id);
    END IF;
    PERFORM pg_notify('vmcp_config',
        json_build_object('kind', kind, 'id', id, 'revision', nextval('config_revision'))::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER mcp_servers_changed AFTER INSERT OR UPDATE OR DELETE ON mcp_servers
    FOR EACH ROW EXECUTE FUNCTION vmcp_config_changed();
CREATE TRIGGER vmcps_changed AFTER INSERT OR UPDATE OR DELETE ON vmcps
    FOR EACH ROW EXECUTE FUNCTION vmcp_config_changed();
CREATE TRIGGER vmcp_servers_changed AFTER INSERT OR UPDATE OR DELETE ON vmcp_servers
    FOR EACH ROW EXECUTE FUNCTION vmcp_config_changed();

-- MCP sessions their clients ended (DELETE): every replica refuses their sealed ids until they
-- would have expired anyway (a replica started later reads them here).
CREATE TABLE ended_sessions (
    transport_id TEXT PRIMARY KEY NOT NULL,
    until TIMESTAMP NOT NULL
);
