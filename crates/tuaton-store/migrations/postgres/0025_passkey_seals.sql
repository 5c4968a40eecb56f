-- Each passkey row is sealed: an HMAC-SHA256 over its account, its
-- credential id and its public key, under a key derived from one the key
-- backend holds and the database never sees (the key's reference is kept
-- in a file beside the server, TUATON_PASSKEY_SEAL_FILE). A row added or
-- moved by anyone who can only write the database does not log in. Rows
-- stored before this are sealed at the first start that makes the key.
ALTER TABLE passkeys ADD COLUMN seal TEXT;
