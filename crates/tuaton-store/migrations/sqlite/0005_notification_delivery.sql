-- Delivery bookkeeping for notices (the mail relay reads this table).
--
-- A sender claims due rows with a conditional UPDATE that writes a random
-- `claim_token` and a lease end (`claimed_until_ms`); only rows with no live
-- lease can be claimed, so several processes on one PostgreSQL never send the
-- same notice at once. A sender that dies mid-batch leaves its lease to run
-- out, and the notice becomes due again.
--
-- `attempts` counts delivery attempts (successful or not); `next_attempt_ms`
-- is when the notice is next due (0 for rows queued before this migration:
-- due at once); `last_error` is a short reason without personal data (such as
-- "relay refused: 550"), never an address; `failed_ms` is set when delivery
-- was given up for good. A notice is waiting while both `sent_ms` and
-- `failed_ms` are NULL.

ALTER TABLE notifications ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN next_attempt_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN claim_token TEXT;
ALTER TABLE notifications ADD COLUMN claimed_until_ms BIGINT;
ALTER TABLE notifications ADD COLUMN last_error TEXT;
ALTER TABLE notifications ADD COLUMN failed_ms BIGINT;

-- Finding due notices reads only waiting rows; sent and given-up ones (kept
-- until retention) stay out of the index.
DROP INDEX notifications_unsent;
CREATE INDEX notifications_due ON notifications (next_attempt_ms)
    WHERE sent_ms IS NULL AND failed_ms IS NULL;
CREATE INDEX notifications_claim ON notifications (claim_token);
