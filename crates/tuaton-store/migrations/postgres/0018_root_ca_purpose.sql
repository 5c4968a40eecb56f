-- The CA hierarchy's root gets a key purpose of its own (`root-ca`; the
-- issuing CAs keep `document-ca`).
ALTER TABLE managed_keys DROP CONSTRAINT managed_keys_purpose_check;
ALTER TABLE managed_keys ADD CONSTRAINT managed_keys_purpose_check CHECK (purpose IN
    ('id-token', 'root-ca', 'document-ca', 'signer', 'tsa', 'ocsp', 'audit-anchor', 'user-signing'));

