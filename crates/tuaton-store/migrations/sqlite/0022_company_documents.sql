-- A document an agency posts for a company to sign: directors sign it in
-- turn, each an incremental update of the file the one before signed,
-- until the registry's authority rule is met.
-- The company, by its thirteen-digit juristic id; NULL: a person's own
-- document.
ALTER TABLE agency_documents ADD COLUMN company_id TEXT;
-- Its registered name when it was posted, for the signing page.
ALTER TABLE agency_documents ADD COLUMN company_name TEXT;
-- The signatures made so far, in order, as a JSON array of
-- {"account_id", "subject", "at_ms"}: who signed (to count directors and
-- refuse one signing twice) and the posting client's `sub` of them.
ALTER TABLE agency_documents ADD COLUMN signatures TEXT NOT NULL DEFAULT '[]';
-- While more directors must sign: the file as the directors so far signed
-- it, which the next one signs.
ALTER TABLE agency_documents ADD COLUMN partial_base64 TEXT;
-- Its size and SHA-256 (lower-case hex), for the page to show without
-- reading it.
ALTER TABLE agency_documents ADD COLUMN partial_size BIGINT;
ALTER TABLE agency_documents ADD COLUMN partial_sha256 TEXT;
