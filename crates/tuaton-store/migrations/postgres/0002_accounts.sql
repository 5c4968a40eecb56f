-- Accounts, identity proofing, roles, companies, consent, passkeys, ceremonies
-- and sessions. Written once for both engines: BIGINT and TEXT mean the same
-- to SQLite (by affinity) and PostgreSQL. Times are Unix milliseconds.
-- Personal data lives only in `accounts` (cleared on erasure) — every other
-- table refers to the opaque account id, and audit records hold digests.

CREATE TABLE accounts (
    id            TEXT   PRIMARY KEY,
    citizen_id    TEXT   UNIQUE,
    user_handle   TEXT   NOT NULL UNIQUE,
    state         TEXT   NOT NULL CHECK (state IN ('active', 'suspended', 'closed')),
    state_reason  TEXT,
    ial           TEXT   NOT NULL,
    thai_given    TEXT,
    thai_family   TEXT,
    en_given      TEXT,
    en_family     TEXT,
    birth_date    TEXT,
    contact_email TEXT,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);

CREATE TABLE proofing_decisions (
    id               TEXT   PRIMARY KEY,
    account_id       TEXT   NOT NULL REFERENCES accounts (id),
    method           TEXT   NOT NULL,
    connector        TEXT   NOT NULL,
    registry_answer  TEXT   NOT NULL,
    evidence_digest  TEXT   NOT NULL,
    ial              TEXT   NOT NULL,
    officer_id       TEXT,
    decided_ms       BIGINT NOT NULL
);
CREATE INDEX proofing_decisions_account ON proofing_decisions (account_id);

CREATE TABLE account_roles (
    account_id  TEXT   NOT NULL REFERENCES accounts (id),
    role        TEXT   NOT NULL CHECK (role IN ('officer')),
    granted_by  TEXT   NOT NULL,
    granted_ms  BIGINT NOT NULL,
    PRIMARY KEY (account_id, role)
);

CREATE TABLE company_links (
    account_id       TEXT   NOT NULL REFERENCES accounts (id),
    juristic_id      TEXT   NOT NULL,
    company_name     TEXT   NOT NULL,
    linked_ms        BIGINT NOT NULL,
    checked_ms       BIGINT NOT NULL,
    PRIMARY KEY (account_id, juristic_id)
);

CREATE TABLE consents (
    id               TEXT   PRIMARY KEY,
    account_id       TEXT   NOT NULL REFERENCES accounts (id),
    agency           TEXT   NOT NULL,
    purpose          TEXT   NOT NULL,
    purpose_version  TEXT   NOT NULL,
    claims           TEXT   NOT NULL,
    notice_digest    TEXT   NOT NULL,
    locale           TEXT   NOT NULL,
    lawful_basis     TEXT   NOT NULL,
    given_ms         BIGINT NOT NULL,
    withdrawn_ms     BIGINT
);
CREATE INDEX consents_account ON consents (account_id);

CREATE TABLE passkeys (
    cred_id          TEXT   PRIMARY KEY,
    account_id       TEXT   NOT NULL REFERENCES accounts (id),
    name             TEXT   NOT NULL,
    aaguid           TEXT,
    credential       TEXT   NOT NULL,
    aal              TEXT   NOT NULL,
    attested         BIGINT NOT NULL,
    backup_eligible  BIGINT NOT NULL,
    backup_state     BIGINT NOT NULL,
    sign_count       BIGINT NOT NULL,
    state            TEXT   NOT NULL CHECK (state IN ('active', 'suspended')),
    created_ms       BIGINT NOT NULL,
    last_used_ms     BIGINT
);
CREATE INDEX passkeys_account ON passkeys (account_id);

-- Server-side ceremony state (WebAuthn challenges, later authorization codes
-- and signing requests): taken out with DELETE … RETURNING, so each is used once.
CREATE TABLE ceremonies (
    id          TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL,
    account_id  TEXT,
    state       TEXT   NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX ceremonies_expiry ON ceremonies (expires_ms);

-- Sessions are looked up by the SHA-256 of the cookie value: a database dump
-- does not hand out live sessions.
CREATE TABLE sessions (
    id_hash          TEXT   PRIMARY KEY,
    account_id       TEXT   NOT NULL REFERENCES accounts (id),
    aal              TEXT   NOT NULL,
    amr              TEXT   NOT NULL,
    csrf_token       TEXT   NOT NULL,
    created_ms       BIGINT NOT NULL,
    last_seen_ms     BIGINT NOT NULL,
    expires_ms       BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
