//! A sync's membership changes, named by external id, applied by joining them with the
//! profile's groups and users inside the database.

use diesel::ExecuteCopyFromDsl;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::ProfileId;

// The (group, user) pairs of a sync's membership changes, by external id, staged for one
// statement to join with the profile's groups and users. Resolving them in the process
// instead loaded every user's external id into a map: at a million users the largest
// allocation of the whole run (160 MB).
diesel::table! {
    sync_memberships (group_external_id, user_external_id) {
        group_external_id -> Text,
        user_external_id -> Text,
    }
}

#[derive(Insertable)]
#[diesel(table_name = sync_memberships, treat_none_as_default_value = false)]
struct StagedMembership<'a> {
    group_external_id: &'a str,
    user_external_id: &'a str,
}

/// Fills the (connection-private) staging table with `pairs`, nothing else.
fn stage_memberships(
    conn: &mut DbConnection,
    pairs: &[(impl AsRef<str>, impl AsRef<str>)],
) -> QueryResult<()> {
    // PostgreSQL drops it with the transaction; a pooled SQLite connection keeps it, empty.
    let create = match conn {
        DbConnection::Pg(_) => "ON COMMIT DROP",
        DbConnection::Sqlite(_) => "",
    };
    conn.batch_execute(&format!(
        "CREATE TEMPORARY TABLE IF NOT EXISTS sync_memberships \
         (group_external_id TEXT NOT NULL, user_external_id TEXT NOT NULL) {create}; \
         DELETE FROM sync_memberships;"
    ))?;
    // 10,000 rows × 2 parameters: under SQLite's 32,766; PostgreSQL copies a batch at a time,
    // so only one batch of rows is ever built.
    for chunk in pairs.chunks(10_000) {
        let rows: Vec<StagedMembership> = chunk
            .iter()
            .map(|(group, user)| StagedMembership {
                group_external_id: group.as_ref(),
                user_external_id: user.as_ref(),
            })
            .collect();
        match &mut *conn {
            DbConnection::Pg(c) => {
                diesel::copy_from(sync_memberships::table)
                    .from_insertable(&rows)
                    .execute(c)?;
            }
            DbConnection::Sqlite(c) => {
                diesel::insert_into(sync_memberships::table)
                    .values(&rows)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// The staged pairs as (group id, user id) of the profile's groups and users; pairs whose
/// group or user the profile does not have are left out.
fn staged_pairs(profile_id: ProfileId) -> String {
    // An integer, not text from anywhere: formatted, not bound.
    let profile = profile_id.0;
    format!(
        "SELECT g.id, u.id FROM sync_memberships s \
         JOIN directory_groups g ON g.profile_id = {profile} AND g.external_id = s.group_external_id \
         JOIN users u ON u.profile_id = {profile} AND u.external_id = s.user_external_id"
    )
}

/// Adds memberships named by (group external id, user external id) within one profile.
pub fn add_memberships_by_external_id(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    pairs: &[(impl AsRef<str>, impl AsRef<str>)],
) -> QueryResult<usize> {
    if pairs.is_empty() {
        return Ok(0);
    }
    stage_memberships(conn, pairs)?;
    let added = diesel::sql_query(format!(
        "INSERT INTO group_memberships (group_id, user_id) {}",
        staged_pairs(profile_id)
    ))
    .execute(conn)?;
    conn.batch_execute("DELETE FROM sync_memberships")?;
    Ok(added)
}

/// Removes memberships named by (group external id, user external id) within one profile.
pub fn remove_memberships_by_external_id(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    pairs: &[(impl AsRef<str>, impl AsRef<str>)],
) -> QueryResult<usize> {
    if pairs.is_empty() {
        return Ok(0);
    }
    stage_memberships(conn, pairs)?;
    let removed = diesel::sql_query(format!(
        "DELETE FROM group_memberships WHERE (group_id, user_id) IN ({})",
        staged_pairs(profile_id)
    ))
    .execute(conn)?;
    conn.batch_execute("DELETE FROM sync_memberships")?;
    Ok(removed)
}
