-- Secrets the service makes for itself and every instance must share, such
-- as the key that derives the stand-in credential ids a login by an unknown
-- citizen id is answered with. Made once, by whichever instance needs one
-- first; never personal data.
CREATE TABLE server_secrets (
    name        TEXT   NOT NULL PRIMARY KEY,
    secret      TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL
);
