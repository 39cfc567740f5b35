-- Daily counts of the operation log by vMCP, client and method, kept by the log writer in the same
-- transaction as the rows: /api/stats answers day-aligned queries from here instead of scanning
-- every row. vmcp_id is '' for operations outside a vMCP.
CREATE TABLE operation_log_days (
    day TEXT NOT NULL,
    vmcp_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    method TEXT NOT NULL,
    calls BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    duration_ms DOUBLE NOT NULL,
    PRIMARY KEY (day, vmcp_id, client_id, method)
);
INSERT INTO operation_log_days
SELECT substr(timestamp, 1, 10), COALESCE(vmcp_id, ''), client_id, method, COUNT(*),
       SUM(CASE WHEN success THEN 0 ELSE 1 END), SUM(duration_ms)
FROM operation_logs GROUP BY 1, 2, 3, 4;
