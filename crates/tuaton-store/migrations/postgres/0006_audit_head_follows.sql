-- The chain head follows each appended record inside the database: the
-- record's own insert moves the head's hash on, so an append is two
-- statements (advance the head's number, insert the record) instead of three.
-- A record whose number is not the head's is refused, so nothing can be
-- appended without first taking the head.
CREATE FUNCTION audit_log_head_follows() RETURNS trigger AS $$
BEGIN
    UPDATE audit_head SET hash = NEW.hash WHERE id = 1 AND seq = NEW.seq;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_log record does not follow the chain head';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_head_follows AFTER INSERT ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_head_follows();
