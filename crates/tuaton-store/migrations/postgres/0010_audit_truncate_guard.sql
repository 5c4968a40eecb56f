-- TRUNCATE fires no row trigger: refuse it on the audit log and its head by
-- statement triggers, for every role including the schema's owner. (SQLite
-- has no TRUNCATE; its row triggers cover DELETE.)
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The guards fire in every session_replication_role, replica included.
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_change;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_head_follows;
ALTER TABLE audit_head ENABLE ALWAYS TRIGGER audit_head_no_truncate;
