DROP TABLE operation_log_days;
