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

-- Every certificate Tuaton's CA made: the hierarchy's own (root, issuing
-- CAs, the time-stamping and OCSP responders) and signer certificates. The
-- private keys stay in the key backend; key_id names the managed key whose
-- public key the certificate certifies. Revocation is recorded here, so the
-- CRL and the OCSP responder answer from one place.
CREATE TABLE certificates (
    id                 TEXT   PRIMARY KEY,
    role               TEXT   NOT NULL CHECK (role IN ('root', 'issuing-ca', 'tsa', 'ocsp', 'signer')),
    key_id             TEXT   NOT NULL REFERENCES managed_keys (id),
    -- The issuer's certificate; a root is its own issuer and has none here.
    issuer_id          TEXT   REFERENCES certificates (id),
    -- Signer certificates only: whose identity the certificate binds.
    account_id         TEXT   REFERENCES accounts (id),
    -- The serial number as lower-case hex, unique under one issuer.
    serial_hex         TEXT   NOT NULL,
    -- The certificate, DER in standard base64.
    der_base64         TEXT   NOT NULL,
    not_before_ms      BIGINT NOT NULL,
    not_after_ms       BIGINT NOT NULL,
    created_ms         BIGINT NOT NULL,
    revoked_ms         BIGINT,
    revocation_reason  TEXT,
    CHECK ((role = 'root') = (issuer_id IS NULL)),
    CHECK ((role = 'signer') = (account_id IS NOT NULL)),
    CHECK ((revoked_ms IS NULL) = (revocation_reason IS NULL)),
    CHECK (not_before_ms < not_after_ms)
);
CREATE UNIQUE INDEX certificates_serial ON certificates (COALESCE(issuer_id, ''), serial_hex);
-- A CA key is certified once: two processes making the hierarchy at the
-- same moment cannot both store a certificate for it.
CREATE UNIQUE INDEX certificates_one_per_ca_key ON certificates (key_id)
    WHERE role IN ('root', 'issuing-ca');
CREATE INDEX certificates_by_key ON certificates (key_id, not_after_ms);
CREATE INDEX certificates_by_account ON certificates (account_id) WHERE account_id IS NOT NULL;
