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
INSERT INTO user_emails (user_id, address, position)
    SELECT users.id, e.address, e.n - 1
    FROM users, json_array_elements_text(users.emails::json) WITH ORDINALITY AS e(address, n)
    ON CONFLICT DO NOTHING;
INSERT INTO user_privileges (user_id, privilege)
    SELECT users.id, p FROM users, unnest(string_to_array(users.privileges, ',')) AS p
    WHERE users.privileges <> ''
    ON CONFLICT DO NOTHING;
ALTER TABLE users DROP COLUMN privileges;
ALTER TABLE users DROP COLUMN emails;
