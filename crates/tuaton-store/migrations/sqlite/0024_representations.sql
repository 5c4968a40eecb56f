-- Which company a signer certificate makes its holder the representative
-- of, and when the registry last confirmed them its director, so upkeep
-- can ask the registry again and revoke a former director's certificates
-- without waiting for them to act.
-- The company's juristic id; '' for a person's own certificate; NULL for
-- any other certificate, or a signer certificate stored before this
-- column (upkeep reads those once and fills it in).
ALTER TABLE certificates ADD COLUMN represents TEXT;
ALTER TABLE certificates ADD COLUMN represents_checked_ms BIGINT;
CREATE INDEX certificates_by_representation ON certificates (represents, represents_checked_ms);
