-- A person's request to sign documents. It is confirmed with a passkey
-- whose WebAuthn challenge commits to the documents' digests, the request's
-- id and the signer's certificate (sole control); the confirmation is kept
-- as evidence beside what it confirmed. Tuaton sees the digests, not the
-- documents.
CREATE TABLE signing_requests (
    id              TEXT   PRIMARY KEY,
    account_id      TEXT   NOT NULL REFERENCES accounts (id),
    -- The WebAuthn ceremony the confirmation answers.
    ceremony_id     TEXT   NOT NULL UNIQUE,
    certificate_id  TEXT   NOT NULL REFERENCES certificates (id),
    -- JSON: [{"name", "size", "sha256"}], in the order shown and signed.
    documents       TEXT   NOT NULL,
    -- Hex SHA-256 the confirmation's challenge is.
    challenge       TEXT   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'signed')),
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    signed_ms       BIGINT,
    -- JSON: the assertion that confirmed it (credential id, client data,
    -- authenticator data, signature), which anyone can check again.
    evidence        TEXT,
    CHECK ((state = 'signed') = (signed_ms IS NOT NULL)),
    CHECK ((state = 'signed') = (evidence IS NOT NULL))
);
CREATE INDEX signing_requests_by_account ON signing_requests (account_id, created_ms);
