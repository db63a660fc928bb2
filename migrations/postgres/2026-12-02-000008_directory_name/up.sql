-- The user's name as the directory sent it, before "use only the local part": what
-- directories that check passwords by name (Application Integration, IceWarp) are asked
-- with. Empty for users synchronised before this column: the user name is used then.
ALTER TABLE users ADD COLUMN directory_name TEXT NOT NULL DEFAULT '';
