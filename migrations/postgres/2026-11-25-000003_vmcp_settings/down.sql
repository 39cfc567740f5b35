ALTER TABLE vmcps DROP COLUMN settings;
