DROP TABLE operation_logs;
DROP TABLE vmcp_servers;
DROP TABLE vmcps;
DROP TABLE mcp_servers;
