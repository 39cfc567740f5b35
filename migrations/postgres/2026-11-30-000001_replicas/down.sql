DROP TABLE ended_sessions;
DROP TRIGGER vmcp_servers_changed ON vmcp_servers;
DROP TRIGGER vmcps_changed ON vmcps;
DROP TRIGGER mcp_servers_changed ON mcp_servers;
DROP FUNCTION vmcp_config_changed();
DROP SEQUENCE config_revision;
DROP TABLE replicas;
