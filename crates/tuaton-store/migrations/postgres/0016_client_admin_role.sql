-- A second role: client administrators register and change the agencies'
-- OpenID Connect clients through the admin API.
ALTER TABLE account_roles DROP CONSTRAINT account_roles_role_check;
ALTER TABLE account_roles ADD CONSTRAINT account_roles_role_check
    CHECK (role IN ('officer', 'client_admin'));
