-- DPoP (RFC 9449). A public client's grant is bound to the key of the proof
-- its code was redeemed with: every refresh must come with a proof made
-- with the same key (its RFC 7638 thumbprint), so a copied refresh token
-- is worthless. A confidential client's refresh tokens are bound by its
-- authentication instead, and this stays empty.
ALTER TABLE oidc_grants ADD COLUMN dpop_jkt TEXT;
