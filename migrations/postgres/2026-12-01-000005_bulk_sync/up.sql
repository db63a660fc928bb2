-- Three changes for syncs that create many users at once (`cargo bench --bench sync`).

-- 1. New rows' trigram entries wait in the index's pending list and are merged in bulk by
-- autovacuum, instead of by whichever insert overflows the default 4 MB list (100,000 new
-- users make 76 MB; a merge in the middle of a sync cost it 0.3 s). Until the merge,
-- searches also read the pending list: slower for a minute after a large sync, never wrong.
ALTER INDEX users_search SET (gin_pending_list_limit = 262144);

-- 2. group_memberships keeps its foreign keys' rules, checked once per statement instead of
-- once per row: a sync adding 100,000 memberships spent 0.65 s on the per-row checks
-- (`cargo bench --bench sync`). SQLite's checks are cheap and stay foreign keys.
ALTER TABLE group_memberships DROP CONSTRAINT group_memberships_group_id_fkey;
ALTER TABLE group_memberships DROP CONSTRAINT group_memberships_user_id_fkey;

-- New or changed rows must point at a user and a group. As a foreign key does, lock those
-- first (FOR KEY SHARE), so neither can be deleted until this transaction ends.
CREATE FUNCTION group_memberships_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM users WHERE id IN (SELECT user_id FROM added) FOR KEY SHARE;
    PERFORM 1 FROM directory_groups WHERE id IN (SELECT group_id FROM added) FOR KEY SHARE;
    IF EXISTS (SELECT 1 FROM added a WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = a.user_id))
       OR EXISTS (SELECT 1 FROM added a
                  WHERE NOT EXISTS (SELECT 1 FROM directory_groups g WHERE g.id = a.group_id)) THEN
        RAISE EXCEPTION 'a group membership refers to a user or group that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER group_memberships_inserted AFTER INSERT ON group_memberships
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION group_memberships_check();
CREATE TRIGGER group_memberships_updated AFTER UPDATE ON group_memberships
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION group_memberships_check();

-- ON DELETE CASCADE, once per statement.
CREATE FUNCTION users_deleted_memberships() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM group_memberships WHERE user_id IN (SELECT id FROM gone);
    RETURN NULL;
END
$$;
CREATE TRIGGER users_deleted_memberships AFTER DELETE ON users
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION users_deleted_memberships();

CREATE FUNCTION groups_deleted_memberships() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM group_memberships WHERE group_id IN (SELECT id FROM gone);
    RETURN NULL;
END
$$;
CREATE TRIGGER groups_deleted_memberships AFTER DELETE ON directory_groups
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION groups_deleted_memberships();

-- 3. users.profile_id likewise: its per-row check cost a 100,000-user sync 0.33 s.
ALTER TABLE users DROP CONSTRAINT users_profile_id_fkey;

CREATE FUNCTION users_profile_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM directory_profiles
        WHERE id IN (SELECT profile_id FROM added WHERE profile_id IS NOT NULL) FOR KEY SHARE;
    IF EXISTS (SELECT 1 FROM added a WHERE a.profile_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM directory_profiles p WHERE p.id = a.profile_id)) THEN
        RAISE EXCEPTION 'a user refers to a directory profile that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_inserted AFTER INSERT ON users
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION users_profile_check();

-- A user's profile changes rarely (an admin switching how it signs in), and other updates,
-- such as every sign-in's, must not pay for a check: one row at a time, only on a change.
CREATE FUNCTION users_profile_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM directory_profiles WHERE id = NEW.profile_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'a user refers to a directory profile that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_profile_changed AFTER UPDATE OF profile_id ON users FOR EACH ROW
    WHEN (NEW.profile_id IS NOT NULL AND NEW.profile_id IS DISTINCT FROM OLD.profile_id)
    EXECUTE FUNCTION users_profile_changed();

-- ON DELETE CASCADE (which in turn takes the users' memberships, sessions, …).
CREATE FUNCTION profiles_deleted_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM users WHERE profile_id IN (SELECT id FROM gone);
    RETURN NULL;
END
$$;
CREATE TRIGGER profiles_deleted_users AFTER DELETE ON directory_profiles
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION profiles_deleted_users();
