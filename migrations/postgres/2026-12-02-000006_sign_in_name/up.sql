-- Active Directory users may sign in with their userPrincipalName, which need not share its
-- prefix with the sAMAccountName (after a rename, say): kept lower-cased, as typed names are
-- looked up, and indexed for sign-in only where there is one.
ALTER TABLE users ADD COLUMN sign_in_name_key TEXT NOT NULL DEFAULT '';
CREATE INDEX users_sign_in_name_key ON users (sign_in_name_key) WHERE sign_in_name_key <> '';
