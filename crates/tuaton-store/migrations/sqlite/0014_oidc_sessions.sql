-- What a grant is bound to beyond its client, whom it acts for, and the
-- back-channel logout owed when it ends.
--
-- DPoP (RFC 9449): a public client's grant is bound to the key of the proof
-- its code was redeemed with; every refresh must come with a proof made
-- with the same key (its RFC 7638 thumbprint), so a copied refresh token is
-- worthless. A confidential client's refresh tokens are bound by its
-- authentication instead, and dpop_jkt stays empty.
ALTER TABLE oidc_grants ADD COLUMN dpop_jkt TEXT;

-- The company the person acts for in the grant (the business scope), as
-- JSON {juristic_id, name}: chosen at the login, after the registry
-- confirmed the link.
ALTER TABLE oidc_grants ADD COLUMN company TEXT;

-- The Tuaton session (the digest sessions.id_hash holds) whose login the
-- code came from: logging out of that session ends the grant too.
ALTER TABLE oidc_grants ADD COLUMN session_digest TEXT;

-- OpenID Connect Back-Channel Logout 1.0: when a grant ends with the
-- person's session (a logout, logging out everywhere, recovery, a cloned
-- authenticator, a suspension, a consent withdrawn), the client is owed a
-- logout token. logout_due_ms is when the next attempt is due (or a
-- sender's lease runs out); NULL when nothing is owed. The grant is kept
-- past its expiry until the token is delivered or given up.
ALTER TABLE oidc_grants ADD COLUMN logout_due_ms BIGINT;
ALTER TABLE oidc_grants ADD COLUMN logout_attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX oidc_grants_session ON oidc_grants (session_digest);
CREATE INDEX oidc_grants_logout_due ON oidc_grants (logout_due_ms);
