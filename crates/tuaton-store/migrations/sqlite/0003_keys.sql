-- Key lifecycle: which backend key serves which purpose, and where it is in
-- pending -> active -> retiring -> retired -> destroyed. Private keys are never
-- here: key_ref names the key inside its backend (`soft:…` or `pkcs11:…`).
-- Written once for both engines (TEXT and BIGINT; times are Unix milliseconds).
CREATE TABLE managed_keys (
    id                 TEXT   PRIMARY KEY,
    purpose            TEXT   NOT NULL CHECK (purpose IN
                           ('id-token', 'document-ca', 'signer', 'tsa', 'ocsp', 'audit-anchor', 'user-signing')),
    -- Only per-user signing keys belong to an account.
    account_id         TEXT   REFERENCES accounts (id),
    state              TEXT   NOT NULL CHECK (state IN ('pending', 'active', 'retiring', 'retired', 'destroyed')),
    algorithm          TEXT   NOT NULL,
    backend            TEXT   NOT NULL,
    key_ref            TEXT   NOT NULL UNIQUE,
    created_ms         BIGINT NOT NULL,
    -- End of pre-publication: the key is in the JWKS from creation, signs only after this.
    activate_after_ms  BIGINT NOT NULL,
    activated_ms       BIGINT,
    retiring_ms        BIGINT,
    retired_ms         BIGINT,
    destroyed_ms       BIGINT,
    -- The last expiry of anything the key signed: it stays verifiable until then.
    verify_until_ms    BIGINT,
    destroy_reason     TEXT,
    CHECK ((purpose = 'user-signing') = (account_id IS NOT NULL)),
    -- Each state carries the time it was reached; retiring and retired keys were active once.
    CHECK (state IN ('pending', 'destroyed') OR activated_ms IS NOT NULL),
    CHECK (state NOT IN ('retiring', 'retired') OR retiring_ms IS NOT NULL),
    CHECK (state <> 'retired' OR retired_ms IS NOT NULL),
    CHECK (state <> 'destroyed' OR destroyed_ms IS NOT NULL)
);

-- At most one active and one pending key per purpose (per account for per-user keys):
-- two processes racing to activate or to rotate cannot both succeed.
CREATE UNIQUE INDEX managed_keys_one_active ON managed_keys (purpose)
    WHERE state = 'active' AND account_id IS NULL;
CREATE UNIQUE INDEX managed_keys_one_pending ON managed_keys (purpose)
    WHERE state = 'pending' AND account_id IS NULL;
CREATE UNIQUE INDEX managed_keys_one_active_per_account ON managed_keys (account_id, purpose)
    WHERE state = 'active' AND account_id IS NOT NULL;
CREATE UNIQUE INDEX managed_keys_one_pending_per_account ON managed_keys (account_id, purpose)
    WHERE state = 'pending' AND account_id IS NOT NULL;
CREATE INDEX managed_keys_state ON managed_keys (state, purpose);
