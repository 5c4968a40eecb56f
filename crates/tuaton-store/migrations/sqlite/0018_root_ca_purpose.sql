-- The CA hierarchy's root gets a key purpose of its own (`root-ca`; the
-- issuing CAs keep `document-ca`). SQLite cannot change a CHECK constraint
-- in place, so managed_keys is rebuilt with its rows and its indexes.
CREATE TABLE managed_keys_next (
    id                 TEXT   PRIMARY KEY,
    purpose            TEXT   NOT NULL CHECK (purpose IN
                           ('id-token', 'root-ca', 'document-ca', 'signer', 'tsa', 'ocsp', 'audit-anchor', 'user-signing')),
    account_id         TEXT   REFERENCES accounts (id),
    state              TEXT   NOT NULL CHECK (state IN ('pending', 'active', 'retiring', 'retired', 'destroyed')),
    algorithm          TEXT   NOT NULL,
    backend            TEXT   NOT NULL,
    key_ref            TEXT   NOT NULL UNIQUE,
    created_ms         BIGINT NOT NULL,
    activate_after_ms  BIGINT NOT NULL,
    activated_ms       BIGINT,
    retiring_ms        BIGINT,
    retired_ms         BIGINT,
    destroyed_ms       BIGINT,
    verify_until_ms    BIGINT,
    destroy_reason     TEXT,
    CHECK ((purpose = 'user-signing') = (account_id IS NOT NULL)),
    CHECK (state IN ('pending', 'destroyed') OR activated_ms IS NOT NULL),
    CHECK (state NOT IN ('retiring', 'retired') OR retiring_ms IS NOT NULL),
    CHECK (state <> 'retired' OR retired_ms IS NOT NULL),
    CHECK (state <> 'destroyed' OR destroyed_ms IS NOT NULL)
);
INSERT INTO managed_keys_next SELECT id, purpose, account_id, state, algorithm, backend, key_ref,
    created_ms, activate_after_ms, activated_ms, retiring_ms, retired_ms, destroyed_ms,
    verify_until_ms, destroy_reason FROM managed_keys;
DROP TABLE managed_keys;
ALTER TABLE managed_keys_next RENAME TO managed_keys;
CREATE UNIQUE INDEX managed_keys_one_active
    ON managed_keys (purpose, (CASE WHEN purpose = 'id-token' THEN algorithm ELSE '' END))
    WHERE state = 'active' AND account_id IS NULL;
CREATE UNIQUE INDEX managed_keys_one_pending
    ON managed_keys (purpose, (CASE WHEN purpose = 'id-token' THEN algorithm ELSE '' END))
    WHERE state = 'pending' AND account_id IS NULL;
CREATE UNIQUE INDEX managed_keys_one_active_per_account ON managed_keys (account_id, purpose)
    WHERE state = 'active' AND account_id IS NOT NULL;
CREATE UNIQUE INDEX managed_keys_one_pending_per_account ON managed_keys (account_id, purpose)
    WHERE state = 'pending' AND account_id IS NOT NULL;
CREATE INDEX managed_keys_state ON managed_keys (state, purpose);

