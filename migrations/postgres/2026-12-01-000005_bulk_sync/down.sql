DROP TRIGGER profiles_deleted_users ON directory_profiles;
DROP FUNCTION profiles_deleted_users();
DROP TRIGGER users_profile_changed ON users;
DROP FUNCTION users_profile_changed();
DROP TRIGGER users_inserted ON users;
DROP FUNCTION users_profile_check();
ALTER TABLE users ADD CONSTRAINT users_profile_id_fkey
    FOREIGN KEY (profile_id) REFERENCES directory_profiles(id) ON DELETE CASCADE;
DROP TRIGGER groups_deleted_memberships ON directory_groups;
DROP FUNCTION groups_deleted_memberships();
DROP TRIGGER users_deleted_memberships ON users;
DROP FUNCTION users_deleted_memberships();
DROP TRIGGER group_memberships_updated ON group_memberships;
DROP TRIGGER group_memberships_inserted ON group_memberships;
DROP FUNCTION group_memberships_check();
ALTER TABLE group_memberships ADD CONSTRAINT group_memberships_group_id_fkey
    FOREIGN KEY (group_id) REFERENCES directory_groups(id) ON DELETE CASCADE;
ALTER TABLE group_memberships ADD CONSTRAINT group_memberships_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER INDEX users_search RESET (gin_pending_list_limit);
