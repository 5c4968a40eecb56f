-- The OpenID Provider.
--
-- Registered clients (the agencies' applications): the registration as JSON,
-- and for a client_secret_basic client the SHA-256 of its secret (256
-- random bits made by Tuaton, so a digest without salt or stretching is
-- enough; the secret itself is shown once, at registration).
CREATE TABLE oidc_clients (
    client_id      TEXT    PRIMARY KEY,
    config         TEXT    NOT NULL,
    secret_digest  TEXT,
    created_ms     BIGINT  NOT NULL,
    updated_ms     BIGINT  NOT NULL
);

-- What a redeemed authorization code gave a client (or, without an account,
-- what a client_credentials request gave an agency's back end). Every token
-- names its grant, so revoking the grant stops them all; the code's digest
-- stays until the grant expires, so a second redemption is recognised and
-- revokes the grant (RFC 6749 §4.1.2).
CREATE TABLE oidc_grants (
    id           TEXT    PRIMARY KEY,
    code_digest  TEXT    NOT NULL UNIQUE,
    client_id    TEXT    NOT NULL,
    account_id   TEXT    REFERENCES accounts (id),
    scopes       TEXT    NOT NULL,
    auth_ms      BIGINT  NOT NULL,
    aal          TEXT    NOT NULL,
    amr          TEXT    NOT NULL,
    created_ms   BIGINT  NOT NULL,
    expires_ms   BIGINT  NOT NULL,
    revoked_ms   BIGINT
);
CREATE INDEX oidc_grants_account ON oidc_grants (account_id);
CREATE INDEX oidc_grants_expiry ON oidc_grants (expires_ms);

-- The jti of every private_key_jwt assertion accepted, until it expires:
-- a second use of one is refused (RFC 7523 §3).
CREATE TABLE oidc_assertion_ids (
    client_id   TEXT    NOT NULL,
    jti         TEXT    NOT NULL,
    expires_ms  BIGINT  NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX oidc_assertion_ids_expiry ON oidc_assertion_ids (expires_ms);

-- Refresh tokens, by their SHA-256. Each use spends the token and issues
-- the next one of its grant (its family); a spent token presented again
-- revokes the whole grant (RFC 9700 §4.14.2).
CREATE TABLE oidc_refresh_tokens (
    digest      TEXT    PRIMARY KEY,
    grant_id    TEXT    NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    created_ms  BIGINT  NOT NULL,
    expires_ms  BIGINT  NOT NULL,
    used_ms     BIGINT
);
CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);
