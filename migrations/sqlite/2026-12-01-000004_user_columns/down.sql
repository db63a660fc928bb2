CREATE TABLE user_emails (
    id INTEGER PRIMARY KEY NOT NULL,
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
INSERT OR IGNORE INTO user_emails (user_id, address, position)
    SELECT users.id, e.value, e.key FROM users, json_each(users.emails) e;
INSERT OR IGNORE INTO user_privileges (user_id, privilege)
    SELECT users.id, p.value FROM users,
        json_each('["' || replace(users.privileges, ',', '","') || '"]') p
    WHERE users.privileges <> '';
ALTER TABLE users DROP COLUMN privileges;
ALTER TABLE users DROP COLUMN emails;
