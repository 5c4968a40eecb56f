-- Account recoveries: a request made with the ID card's details waits out a
-- cooling-off period in which the owner is told and can cancel it with a
-- passkey; only then (or at once after an officer's in-person proofing or an
-- accepted face match) does it give a grant to register a passkey.
-- No personal data: the requester's token is kept as its SHA-256 digest.
CREATE TABLE recoveries (
    id            TEXT    PRIMARY KEY,
    account_id    TEXT    NOT NULL REFERENCES accounts (id),
    token_digest  TEXT    NOT NULL,
    decision_id   TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    requested_ms  BIGINT  NOT NULL,
    ready_ms      BIGINT  NOT NULL,
    expires_ms    BIGINT  NOT NULL,
    ended_ms      BIGINT
);
CREATE INDEX recoveries_account ON recoveries (account_id, state);

-- What a notice is about (a recovery's id), for the link it carries.
ALTER TABLE notifications ADD COLUMN reference TEXT;
