-- An OpenID Connect sign-in between "Sign in with …" and the provider's answer: one-time
-- (deleted as it is used), bound to the browser that started it, and short-lived.
CREATE TABLE oidc_logins (
    id BIGSERIAL PRIMARY KEY,
    state_hash TEXT NOT NULL UNIQUE,  -- SHA-256 of the state sent to the provider
    binding_hash TEXT NOT NULL,       -- SHA-256 of the browser's pre-session or session cookie
    profile_id BIGINT NOT NULL REFERENCES directory_profiles(id) ON DELETE CASCADE,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next TEXT NOT NULL DEFAULT '',
    redirect_uri TEXT NOT NULL,       -- as sent to the provider; the code exchange repeats it
    client_ip TEXT NOT NULL,          -- who began it: sign-ins in flight are bounded per address
    expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_logins_expiry ON oidc_logins(expires_at);
CREATE INDEX oidc_logins_binding ON oidc_logins(binding_hash);
CREATE INDEX oidc_logins_address ON oidc_logins(client_ip);

-- The domains of the users each OpenID profile synchronised (kept at every sync): a name
-- typed as user@domain on the sign-in form goes to that profile's provider.
CREATE TABLE sign_in_domains (
    domain TEXT NOT NULL,             -- lower-case
    profile_id BIGINT NOT NULL REFERENCES directory_profiles(id) ON DELETE CASCADE,
    PRIMARY KEY (domain, profile_id)
);
CREATE INDEX sign_in_domains_profile ON sign_in_domains(profile_id);
