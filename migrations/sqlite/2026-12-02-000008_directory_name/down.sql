ALTER TABLE users DROP COLUMN directory_name;
