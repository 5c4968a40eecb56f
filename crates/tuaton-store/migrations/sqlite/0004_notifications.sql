-- Notices owed to a person (recovery started, later others), queued in the
-- same transaction as the event they announce. Delivery (a mail relay) is not
-- built yet: `sent_ms` stays NULL until something sends the notice.
-- `address` is personal data: the contact address at the time of the event,
-- kept so a later change of contact cannot redirect the notice.

CREATE TABLE notifications (
    id          TEXT   PRIMARY KEY,
    account_id  TEXT   NOT NULL REFERENCES accounts (id),
    kind        TEXT   NOT NULL,
    channel     TEXT   NOT NULL,
    address     TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL,
    sent_ms     BIGINT
);
CREATE INDEX notifications_account ON notifications (account_id);
CREATE INDEX notifications_unsent ON notifications (sent_ms, created_ms);
