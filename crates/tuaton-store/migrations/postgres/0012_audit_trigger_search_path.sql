-- The head-follows trigger names `audit_head` unqualified: pin its search
-- path to the schema it was made in, so a temporary table of the same name
-- cannot stand in for the head.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION audit_log_head_follows() SET search_path = %I, pg_catalog, pg_temp',
        current_schema()
    );
    EXECUTE format(
        'ALTER FUNCTION audit_log_append_only() SET search_path = %I, pg_catalog, pg_temp',
        current_schema()
    );
END
$$;
