-- A user's e-mail addresses and privileges become columns of users: as tables of rows, a
-- sync creating 100,000 users spent most of its PostgreSQL time on their foreign keys.
-- emails: a JSON array in the directory's order; privileges: names joined by commas.
ALTER TABLE users ADD COLUMN emails TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN privileges TEXT NOT NULL DEFAULT '';
UPDATE users SET emails = (
    SELECT json_group_array(address) FROM (
        SELECT address FROM user_emails e WHERE e.user_id = users.id ORDER BY position
    )
) WHERE id IN (SELECT user_id FROM user_emails);
UPDATE users SET privileges = (
    SELECT group_concat(privilege, ',') FROM user_privileges p WHERE p.user_id = users.id
) WHERE id IN (SELECT user_id FROM user_privileges);
DROP TABLE user_emails;
DROP TABLE user_privileges;
