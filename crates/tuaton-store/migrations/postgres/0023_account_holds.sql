-- Which holds an account's suspension made: reactivating the account
-- releases those, and leaves a hold an operator put on one certificate.
-- 'account' for a suspension's hold; NULL otherwise.
ALTER TABLE certificates ADD COLUMN held_with TEXT;
-- The holds of accounts suspended now are their suspension's.
UPDATE certificates SET held_with = 'account'
 WHERE revocation_reason = 'certificateHold'
   AND account_id IN (SELECT id FROM accounts WHERE state = 'suspended');
