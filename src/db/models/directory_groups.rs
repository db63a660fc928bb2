//! Groups synchronised from directory profiles, and a user's memberships.

use diesel::ExecuteCopyFromDsl;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::{ProfileId, UserId};
use crate::db::paging::{Keyset, Window, contains_pattern, lower};
use crate::db::schema::{directory_groups, directory_profiles, group_memberships, users};
use crate::with_backend;

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    directory_groups::table.count().get_result(conn)
}

pub fn count_of_profile(conn: &mut DbConnection, profile_id: ProfileId) -> QueryResult<i64> {
    directory_groups::table
        .filter(directory_groups::profile_id.eq(profile_id))
        .count()
        .get_result(conn)
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

/// A group as the groups list shows it.
#[derive(Clone, Debug)]
pub struct GroupListRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub profile_id: ProfileId,
    pub profile_name: String,
    pub members: i64,
}

/// Which groups the list shows: of one profile or all, names containing `needle`.
pub struct GroupFilter<'a> {
    pub profile: Option<ProfileId>,
    pub needle: &'a str,
}

/// One page of groups ordered by name then id, with each group's member count.
pub fn list_page(
    conn: &mut DbConnection,
    filter: &GroupFilter,
    at: &Keyset<String>,
    limit: i64,
) -> QueryResult<Window<GroupListRow>> {
    let pattern = contains_pattern(filter.needle);
    let rows: Vec<(i64, String, String, ProfileId, String)> = with_backend!(conn, |c| {
        let mut q = directory_groups::table
            .inner_join(directory_profiles::table)
            .into_boxed();
        if let Some(p) = filter.profile {
            q = q.filter(directory_groups::profile_id.eq(p));
        }
        if !filter.needle.trim().is_empty() {
            q = q.filter(
                lower(directory_groups::name)
                    .like(pattern.clone())
                    .escape('\\'),
            );
        }
        q = match at {
            Keyset::First => q.order((directory_groups::name.asc(), directory_groups::id.asc())),
            Keyset::After(name, id) => q
                .filter(
                    directory_groups::name
                        .gt(name.clone())
                        .or(directory_groups::name
                            .eq(name.clone())
                            .and(directory_groups::id.gt(*id))),
                )
                .order((directory_groups::name.asc(), directory_groups::id.asc())),
            Keyset::Before(name, id) => q
                .filter(
                    directory_groups::name
                        .lt(name.clone())
                        .or(directory_groups::name
                            .eq(name.clone())
                            .and(directory_groups::id.lt(*id))),
                )
                .order((directory_groups::name.desc(), directory_groups::id.desc())),
        };
        q.limit(limit + 1)
            .select((
                directory_groups::id,
                directory_groups::name,
                directory_groups::description,
                directory_groups::profile_id,
                directory_profiles::name,
            ))
            .load(c)?
    });
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let counts: std::collections::HashMap<i64, i64> = group_memberships::table
        .filter(group_memberships::group_id.eq_any(&ids))
        .group_by(group_memberships::group_id)
        .select((group_memberships::group_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let rows = rows
        .into_iter()
        .map(
            |(id, name, description, profile_id, profile_name)| GroupListRow {
                members: counts.get(&id).copied().unwrap_or(0),
                id,
                name,
                description,
                profile_id,
                profile_name,
            },
        )
        .collect();
    Ok(Window::of(rows, at, limit))
}

/// How many groups the filter matches.
pub fn count_matching(conn: &mut DbConnection, filter: &GroupFilter) -> QueryResult<i64> {
    let pattern = contains_pattern(filter.needle);
    with_backend!(conn, |c| {
        let mut q = directory_groups::table.into_boxed();
        if let Some(p) = filter.profile {
            q = q.filter(directory_groups::profile_id.eq(p));
        }
        if !filter.needle.trim().is_empty() {
            q = q.filter(lower(directory_groups::name).like(pattern).escape('\\'));
        }
        q.count().get_result(c)
    })
}

/// The sort key of a group (its name), where a page starts or ends.
pub fn name_of(conn: &mut DbConnection, id: i64) -> QueryResult<Option<String>> {
    directory_groups::table
        .find(id)
        .select(directory_groups::name)
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<GroupListRow>> {
    let row: Option<(i64, String, String, ProfileId, String)> = directory_groups::table
        .inner_join(directory_profiles::table)
        .filter(directory_groups::id.eq(id))
        .select((
            directory_groups::id,
            directory_groups::name,
            directory_groups::description,
            directory_groups::profile_id,
            directory_profiles::name,
        ))
        .first(conn)
        .optional()?;
    let Some((id, name, description, profile_id, profile_name)) = row else {
        return Ok(None);
    };
    let members = group_memberships::table
        .filter(group_memberships::group_id.eq(id))
        .count()
        .get_result(conn)?;
    Ok(Some(GroupListRow {
        id,
        name,
        description,
        profile_id,
        profile_name,
        members,
    }))
}

/// A member as a group's page lists them.
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub id: UserId,
    pub login_name: String,
    pub full_name: String,
}

/// One page of a group's members whose name, full name or address contains `needle`,
/// ordered by user name then id.
pub fn members_page(
    conn: &mut DbConnection,
    group_id: i64,
    needle: &str,
    at: &Keyset<String>,
    limit: i64,
) -> QueryResult<Window<MemberRow>> {
    let pattern = contains_pattern(&super::users::fold(needle));
    let rows: Vec<(UserId, String, String, String)> = with_backend!(conn, |c| {
        let mut q = group_memberships::table
            .inner_join(users::table)
            .filter(group_memberships::group_id.eq(group_id))
            .into_boxed();
        if !needle.trim().is_empty() {
            q = q.filter(users::search_text.like(pattern).escape('\\'));
        }
        q = match at {
            Keyset::First => q.order((users::username_key.asc(), users::id.asc())),
            Keyset::After(key, id) => q
                .filter(
                    users::username_key
                        .gt(key.clone())
                        .or(users::username_key.eq(key.clone()).and(users::id.gt(*id))),
                )
                .order((users::username_key.asc(), users::id.asc())),
            Keyset::Before(key, id) => q
                .filter(
                    users::username_key
                        .lt(key.clone())
                        .or(users::username_key.eq(key.clone()).and(users::id.lt(*id))),
                )
                .order((users::username_key.desc(), users::id.desc())),
        };
        q.limit(limit + 1)
            .select((users::id, users::username, users::domain, users::full_name))
            .load(c)?
    });
    let rows = rows
        .into_iter()
        .map(|(id, username, domain, full_name)| MemberRow {
            id,
            login_name: if domain.is_empty() {
                username
            } else {
                format!("{username}@{domain}")
            },
            full_name,
        })
        .collect();
    Ok(Window::of(rows, at, limit))
}

/// How many of a group's members match `needle`.
pub fn count_members(conn: &mut DbConnection, group_id: i64, needle: &str) -> QueryResult<i64> {
    let pattern = contains_pattern(&super::users::fold(needle));
    with_backend!(conn, |c| {
        let mut q = group_memberships::table
            .inner_join(users::table)
            .filter(group_memberships::group_id.eq(group_id))
            .into_boxed();
        if !needle.trim().is_empty() {
            q = q.filter(users::search_text.like(pattern).escape('\\'));
        }
        q.count().get_result(c)
    })
}

/// A user's groups, (id, name), by name.
pub fn of_user(conn: &mut DbConnection, user_id: UserId) -> QueryResult<Vec<(i64, String)>> {
    group_memberships::table
        .inner_join(directory_groups::table)
        .filter(group_memberships::user_id.eq(user_id))
        .order(directory_groups::name)
        .select((directory_groups::id, directory_groups::name))
        .load(conn)
}
