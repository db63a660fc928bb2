-- Exact user totals without reading every user (`cargo bench --bench sync`, users list
-- browsed during a sync). The users list, the dashboard and the profiles list show exact
-- totals; PostgreSQL counts by reading every row (no count is kept in its indexes):
-- count(*) of 100,000 users took 10–18 ms, and 16 clients on the unsearched users page kept
-- two cores busy with nothing else. SQLite counts from its b-tree pages (0.1 ms) and has no
-- such table.
--
-- One row per source: a profile's id, or 0 for users created in Roster. Kept by statement
-- triggers (one update per statement and source, the sync's 20,000-row batches included),
-- so a total is a read of a few rows. A row is locked by the transaction that changed its
-- count until it ends: a profile's users change only under its sync lease, and the local
-- row only by admin actions, so writers do not queue on each other here.
CREATE TABLE user_counts (
    profile_id BIGINT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO user_counts (profile_id, n)
    SELECT coalesce(profile_id, 0), count(*) FROM users GROUP BY 1;

CREATE FUNCTION user_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_counts AS c (profile_id, n)
        SELECT coalesce(profile_id, 0), count(*) FROM added GROUP BY 1
        ON CONFLICT (profile_id) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION user_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_counts AS c SET n = c.n - g.n
        FROM (SELECT coalesce(profile_id, 0) AS profile_id, count(*) AS n FROM gone GROUP BY 1) AS g
        WHERE c.profile_id = g.profile_id;
    RETURN NULL;
END
$$;

-- A user switched between Roster and a profile (an admin action, one user at a time)
-- moves between rows. Row by row: a trigger on one column cannot see transition tables.
CREATE FUNCTION user_counts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_counts SET n = n - 1 WHERE profile_id = coalesce(OLD.profile_id, 0);
    INSERT INTO user_counts AS c (profile_id, n) VALUES (coalesce(NEW.profile_id, 0), 1)
        ON CONFLICT (profile_id) DO UPDATE SET n = c.n + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_counts_inserted AFTER INSERT ON users
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION user_counts_added();
CREATE TRIGGER user_counts_deleted AFTER DELETE ON users
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION user_counts_removed();
-- Only statements that set profile_id, and only rows where it changed: a sign-in's or a
-- sync's update of other columns does not fire it.
CREATE TRIGGER user_counts_updated AFTER UPDATE OF profile_id ON users FOR EACH ROW
    WHEN (OLD.profile_id IS DISTINCT FROM NEW.profile_id)
    EXECUTE FUNCTION user_counts_moved();
