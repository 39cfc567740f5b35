DROP TABLE ended_sessions;
DROP TABLE replicas;
