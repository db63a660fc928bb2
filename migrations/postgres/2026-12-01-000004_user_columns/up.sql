-- A user's e-mail addresses and privileges become columns of users: as tables of rows, a
-- sync creating 100,000 users spent most of its PostgreSQL time on their foreign keys.
-- emails: a JSON array in the directory's order; privileges: names joined by commas.
ALTER TABLE users ADD COLUMN emails TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN privileges TEXT NOT NULL DEFAULT '';
UPDATE users SET emails = e.list
    FROM (SELECT user_id, json_agg(address ORDER BY position)::text AS list
          FROM user_emails GROUP BY user_id) e
    WHERE e.user_id = users.id;
UPDATE users SET privileges = p.list
    FROM (SELECT user_id, string_agg(privilege, ',') AS list
          FROM user_privileges GROUP BY user_id) p
    WHERE p.user_id = users.id;
DROP TABLE user_emails;
DROP TABLE user_privileges;
