-- A second role: client administrators register and change the agencies'
-- OpenID Connect clients through the admin API. SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt with its rows.
CREATE TABLE account_roles_next (
    account_id  TEXT   NOT NULL REFERENCES accounts (id),
    role        TEXT   NOT NULL CHECK (role IN ('officer', 'client_admin')),
    granted_by  TEXT   NOT NULL,
    granted_ms  BIGINT NOT NULL,
    PRIMARY KEY (account_id, role)
);
INSERT INTO account_roles_next (account_id, role, granted_by, granted_ms)
    SELECT account_id, role, granted_by, granted_ms FROM account_roles;
DROP TABLE account_roles;
ALTER TABLE account_roles_next RENAME TO account_roles;
