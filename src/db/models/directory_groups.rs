//! Groups synchronised from directory profiles, and a user's memberships.

use diesel::ExecuteCopyFromDsl;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::{ProfileId, UserId};
use crate::db::schema::{directory_groups, group_memberships};
use crate::with_backend;

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    directory_groups::table.count().get_result(conn)
}

pub fn names_for_user(conn: &mut DbConnection, user_id: UserId) -> QueryResult<Vec<String>> {
    group_memberships::table
        .inner_join(directory_groups::table)
        .filter(group_memberships::user_id.eq(user_id))
        .order(directory_groups::name)
        .select(directory_groups::name)
        .load(conn)
}

#[derive(Clone, Debug)]
pub struct SyncedGroup {
    pub id: i64,
    pub external_id: String,
    pub name: String,
    pub description: String,
}

pub fn synced_by_profile(
    conn: &mut DbConnection,
    profile_id: ProfileId,
) -> QueryResult<Vec<SyncedGroup>> {
    let rows: Vec<(i64, String, String, String)> = directory_groups::table
        .filter(directory_groups::profile_id.eq(profile_id))
        .order(directory_groups::id)
        .select((
            directory_groups::id,
            directory_groups::external_id,
            directory_groups::name,
            directory_groups::description,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, external_id, name, description)| SyncedGroup {
            id,
            external_id,
            name,
            description,
        })
        .collect())
}

/// (group id, user id) of every membership in a profile's groups.
pub fn memberships_of_profile(
    conn: &mut DbConnection,
    profile_id: ProfileId,
) -> QueryResult<Vec<(i64, i64)>> {
    group_memberships::table
        .inner_join(directory_groups::table)
        .filter(directory_groups::profile_id.eq(profile_id))
        .select((group_memberships::group_id, group_memberships::user_id))
        .load(conn)
}

pub fn insert_groups(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    groups: &[(&str, &str, &str)],
) -> QueryResult<()> {
    let now = crate::db::now();
    for chunk in groups.chunks(5_000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(external_id, name, description)| {
                (
                    directory_groups::profile_id.eq(profile_id),
                    directory_groups::external_id.eq(*external_id),
                    directory_groups::name.eq(*name),
                    directory_groups::description.eq(*description),
                    directory_groups::created_at.eq(now),
                    directory_groups::updated_at.eq(now),
                )
            })
            .collect();
        with_backend!(conn, |c| diesel::insert_into(directory_groups::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

pub fn update_group(
    conn: &mut DbConnection,
    id: i64,
    name: &str,
    description: &str,
) -> QueryResult<()> {
    diesel::update(directory_groups::table.find(id))
        .set((
            directory_groups::name.eq(name),
            directory_groups::description.eq(description),
            directory_groups::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn delete_groups(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    ids: &[i64],
) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in ids.chunks(500) {
        n += diesel::delete(
            directory_groups::table
                .filter(directory_groups::profile_id.eq(profile_id))
                .filter(directory_groups::id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(n)
}

pub fn ids_by_external_id(
    conn: &mut DbConnection,
    profile_id: ProfileId,
) -> QueryResult<std::collections::HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = directory_groups::table
        .filter(directory_groups::profile_id.eq(profile_id))
        .select((directory_groups::external_id, directory_groups::id))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

#[derive(Insertable)]
#[diesel(table_name = group_memberships, treat_none_as_default_value = false)]
struct Membership {
    group_id: i64,
    user_id: i64,
}

pub fn add_memberships(conn: &mut DbConnection, pairs: &[(i64, i64)]) -> QueryResult<()> {
    let rows: Vec<Membership> = pairs
        .iter()
        .map(|(group_id, user_id)| Membership {
            group_id: *group_id,
            user_id: *user_id,
        })
        .collect();
    match conn {
        // COPY: a 100,000-membership sync spent a second on multi-row INSERTs here.
        DbConnection::Pg(c) => {
            diesel::copy_from(group_memberships::table)
                .from_insertable(&rows)
                .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            for chunk in rows.chunks(15_000) {
                diesel::insert_into(group_memberships::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

pub fn remove_memberships(conn: &mut DbConnection, pairs: &[(i64, i64)]) -> QueryResult<()> {
    for (group, user) in pairs {
        diesel::delete(
            group_memberships::table
                .filter(group_memberships::group_id.eq(group))
                .filter(group_memberships::user_id.eq(user)),
        )
        .execute(conn)?;
    }
    Ok(())
}
