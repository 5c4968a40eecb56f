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
