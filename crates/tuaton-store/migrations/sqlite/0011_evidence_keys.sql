-- A key per account for the digests of the evidence its proofing decisions
-- and audit records keep: HMAC-SHA256 under it, not a bare SHA-256 that a
-- guessed citizen id (with names from a photocopy) could be matched
-- against. Erasure deletes the key, which leaves the kept digests
-- unlinkable to anyone. Hex; never exported, never logged.
ALTER TABLE accounts ADD COLUMN evidence_key TEXT;
