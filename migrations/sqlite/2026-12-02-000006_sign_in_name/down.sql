DROP INDEX users_sign_in_name_key;
ALTER TABLE users DROP COLUMN sign_in_name_key;
