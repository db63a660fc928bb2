-- Where a profile's last complete read left off, for directories that report changes
-- (Entra ID's delta queries): the next run asks only for what changed since. One row a
-- profile; gone with the profile, cleared when its settings are saved (what is in scope
-- may have changed) or a full synchronisation is asked for. `full_read_at` is when
-- everything was last read: at least once a day a run reads everything again, so drift
-- heals. Written in the transaction that applies the run, so a failed run keeps the old.
CREATE TABLE change_cursors (
    profile_id BIGINT PRIMARY KEY NOT NULL REFERENCES directory_profiles(id) ON DELETE CASCADE,
    users_link TEXT NOT NULL,
    groups_link TEXT NOT NULL,
    full_read_at BIGINT NOT NULL
);
