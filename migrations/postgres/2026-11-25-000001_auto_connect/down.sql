ALTER TABLE mcp_servers DROP COLUMN auto_connect;
