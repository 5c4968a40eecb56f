-- Ceremonies and sessions are written and deleted on every login. As
-- ordinary (rowid) tables each row lived in two B-trees, the table and the
-- index SQLite keeps for the text primary key, so every insert and delete
-- wrote both. Stored WITHOUT ROWID, the row lives in its primary key's
-- B-tree alone: one page fewer to write per insert and per delete.
-- PostgreSQL has no rowid and needs no change.
CREATE TABLE ceremonies_keyed (
    id          TEXT   NOT NULL PRIMARY KEY,
    kind        TEXT   NOT NULL,
    account_id  TEXT,
    state       TEXT   NOT NULL,
    expires_ms  BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO ceremonies_keyed (id, kind, account_id, state, expires_ms)
    SELECT id, kind, account_id, state, expires_ms FROM ceremonies;
DROP TABLE ceremonies;
ALTER TABLE ceremonies_keyed RENAME TO ceremonies;
CREATE INDEX ceremonies_expiry ON ceremonies (expires_ms);

CREATE TABLE sessions_keyed (
    id_hash          TEXT   NOT NULL PRIMARY KEY,
    account_id       TEXT   NOT NULL REFERENCES accounts (id),
    aal              TEXT   NOT NULL,
    amr              TEXT   NOT NULL,
    csrf_token       TEXT   NOT NULL,
    created_ms       BIGINT NOT NULL,
    last_seen_ms     BIGINT NOT NULL,
    expires_ms       BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO sessions_keyed (id_hash, account_id, aal, amr, csrf_token, created_ms, last_seen_ms, expires_ms)
    SELECT id_hash, account_id, aal, amr, csrf_token, created_ms, last_seen_ms, expires_ms FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_keyed RENAME TO sessions;
CREATE INDEX sessions_account ON sessions (account_id);
