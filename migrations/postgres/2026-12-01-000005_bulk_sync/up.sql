-- Two changes for syncs that create many users at once (`cargo bench --bench sync`).

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
