-- Roster's schema for the whole product as known today (PostgreSQL).
-- Times are Unix seconds (BIGINT) so both backends compare them the same way.

CREATE TABLE master_keys (
    key_id TEXT PRIMARY KEY NOT NULL,
    verifier TEXT NOT NULL,           -- a known constant sealed with the key: proves the key is right
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE secrets (
    id BIGSERIAL PRIMARY KEY,
    purpose TEXT NOT NULL,            -- what the secret is for, never the secret itself
    key_id TEXT NOT NULL REFERENCES master_keys(key_id),
    sealed TEXT NOT NULL,             -- base64(nonce || ciphertext)
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE directory_profiles (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,    -- lower-cased name: names are unique regardless of case
    kind TEXT NOT NULL,
    settings TEXT NOT NULL,           -- type-specific settings as JSON; secrets by reference only
    delete_users BOOLEAN NOT NULL DEFAULT FALSE,
    delete_groups BOOLEAN NOT NULL DEFAULT FALSE,
    groups_to_sync TEXT NOT NULL DEFAULT '',
    domain TEXT NOT NULL DEFAULT '',
    use_local_part BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_by_default BOOLEAN NOT NULL DEFAULT TRUE,
    default_privileges TEXT NOT NULL DEFAULT 'log_on,read_own_archive',
    delete_threshold_count INTEGER NOT NULL DEFAULT 50,
    delete_threshold_percent INTEGER NOT NULL DEFAULT 10,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE dependent_configurations (
    id BIGSERIAL PRIMARY KEY,
    profile_id BIGINT NOT NULL REFERENCES directory_profiles(id),
    kind TEXT NOT NULL,               -- archiving | folder_sync
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX dependent_configurations_profile ON dependent_configurations(profile_id);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    profile_id BIGINT REFERENCES directory_profiles(id) ON DELETE CASCADE,  -- NULL: created in Roster
    external_id TEXT,                 -- the directory's stable id (objectGUID, entryUUID, oid, …)
    username TEXT NOT NULL,
    username_key TEXT NOT NULL,       -- lower-cased user name, for look-ups and order
    domain TEXT NOT NULL DEFAULT '',
    full_name TEXT NOT NULL DEFAULT '',
    auth_method TEXT NOT NULL,        -- local | directory
    password_hash TEXT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,            -- disabled in Roster by an admin
    directory_disabled BOOLEAN NOT NULL DEFAULT FALSE,  -- disabled at the source
    mfa_required BOOLEAN NOT NULL DEFAULT FALSE,
    totp_secret_id BIGINT REFERENCES secrets(id),
    totp_last_step BIGINT,            -- replay guard: the last accepted TOTP time step
    mfa_enrolled_at BIGINT,
    search_text TEXT NOT NULL,        -- lower-cased name, full name and e-mail addresses
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_sign_in_at BIGINT
);
CREATE UNIQUE INDEX users_login ON users(username_key, domain);
CREATE UNIQUE INDEX users_source ON users(profile_id, external_id);

-- Substring search that stays fast at 100,000 users: a trigram index over search_text
-- (pg_trgm is a trusted extension: a database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_search ON users USING gin (search_text gin_trgm_ops);

CREATE TABLE user_emails (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE UNIQUE INDEX user_emails_address ON user_emails(user_id, address);

CREATE TABLE user_privileges (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    privilege TEXT NOT NULL,
    PRIMARY KEY (user_id, privilege)
);

CREATE TABLE directory_groups (
    id BIGSERIAL PRIMARY KEY,
    profile_id BIGINT NOT NULL REFERENCES directory_profiles(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX directory_groups_source ON directory_groups(profile_id, external_id);

CREATE TABLE group_memberships (
    group_id BIGINT NOT NULL REFERENCES directory_groups(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_memberships_user ON group_memberships(user_id);

CREATE TABLE schedules (
    id BIGSERIAL PRIMARY KEY,
    profile_id BIGINT NOT NULL REFERENCES directory_profiles(id),
    kind TEXT NOT NULL,               -- interval | daily | weekly
    interval_minutes INTEGER,
    time_of_day TEXT,
    weekdays TEXT NOT NULL DEFAULT '',
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    next_run_at BIGINT,
    last_run_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX schedules_profile ON schedules(profile_id);

CREATE TABLE sync_runs (
    id BIGSERIAL PRIMARY KEY,
    profile_id BIGINT NOT NULL REFERENCES directory_profiles(id) ON DELETE CASCADE,
    triggered_by TEXT NOT NULL,           -- schedule | admin | cli
    started_by TEXT NOT NULL DEFAULT '',
    dry_run BOOLEAN NOT NULL,
    status TEXT NOT NULL,             -- running | succeeded | failed | held | cancelled | discarded
    phase TEXT NOT NULL DEFAULT '',
    progress_users INTEGER NOT NULL DEFAULT 0,
    progress_groups INTEGER NOT NULL DEFAULT 0,
    users_created INTEGER NOT NULL DEFAULT 0,
    users_updated INTEGER NOT NULL DEFAULT 0,
    users_deleted INTEGER NOT NULL DEFAULT 0,
    users_unchanged INTEGER NOT NULL DEFAULT 0,
    groups_created INTEGER NOT NULL DEFAULT 0,
    groups_updated INTEGER NOT NULL DEFAULT 0,
    groups_deleted INTEGER NOT NULL DEFAULT 0,
    memberships_added INTEGER NOT NULL DEFAULT 0,
    memberships_removed INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    plan TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX sync_runs_profile ON sync_runs(profile_id, started_at);

CREATE TABLE sync_leases (
    profile_id BIGINT PRIMARY KEY REFERENCES directory_profiles(id) ON DELETE CASCADE,
    run_id BIGINT NOT NULL,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,  -- SHA-256 of the cookie's token; the token itself is never stored
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stage TEXT NOT NULL,              -- mfa (password done, code pending) | full
    mfa_failures INTEGER NOT NULL DEFAULT 0,
    client_ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE recovery_codes (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

CREATE TABLE sign_in_throttle (
    throttle_key TEXT PRIMARY KEY NOT NULL,   -- account:<name> or address:<ip>
    failures INTEGER NOT NULL,
    window_started_at BIGINT NOT NULL
);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    actor_user_id BIGINT,
    actor_name TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    client_ip TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_time ON audit_events(occurred_at);
