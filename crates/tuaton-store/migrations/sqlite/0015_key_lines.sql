-- ID tokens keep a line of keys per algorithm: an agency whose software
-- verifies only RS256 or PS256 ID tokens is signed for by a key of its own
-- algorithm, while ES256 stays the default line. Every other service
-- purpose keeps one line (a rotation to another algorithm replaces its key).
-- At most one active and one pending key per line (per account for per-user
-- keys, which keep one line).
DROP INDEX managed_keys_one_active;
DROP INDEX managed_keys_one_pending;
CREATE UNIQUE INDEX managed_keys_one_active
    ON managed_keys (purpose, (CASE WHEN purpose = 'id-token' THEN algorithm ELSE '' END))
    WHERE state = 'active' AND account_id IS NULL;
CREATE UNIQUE INDEX managed_keys_one_pending
    ON managed_keys (purpose, (CASE WHEN purpose = 'id-token' THEN algorithm ELSE '' END))
    WHERE state = 'pending' AND account_id IS NULL;
