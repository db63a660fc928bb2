//! The archiving and folder-synchronisation configurations an Entra ID or Google Workspace
//! profile can create at its creation. They keep a copy of the profile's settings (later
//! edits of the profile do not change them) and block deleting the profile.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::schema::dependent_configurations;

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = dependent_configurations)]
pub struct DependentConfiguration {
    pub id: i64,
    pub profile_id: ProfileId,
    pub kind: String,
    pub name: String,
    pub settings: String,
    pub created_at: i64,
}

/// The two kinds, with the words their names end in.
pub const KINDS: [(&str, &str); 2] = [
    ("archiving", "archiving"),
    ("folder_sync", "folder synchronisation"),
];

pub fn insert(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    kind: &str,
    name: &str,
    settings: &str,
) -> QueryResult<usize> {
    diesel::insert_into(dependent_configurations::table)
        .values((
            dependent_configurations::profile_id.eq(profile_id),
            dependent_configurations::kind.eq(kind),
            dependent_configurations::name.eq(name),
            dependent_configurations::settings.eq(settings),
            dependent_configurations::created_at.eq(crate::db::now()),
        ))
        .execute(conn)
}

pub fn for_profile(
    conn: &mut DbConnection,
    profile_id: ProfileId,
) -> QueryResult<Vec<DependentConfiguration>> {
    dependent_configurations::table
        .filter(dependent_configurations::profile_id.eq(profile_id))
        .order(dependent_configurations::name)
        .select(DependentConfiguration::as_select())
        .load(conn)
}

/// Removes one configuration of a profile; returns its name if it existed.
pub fn delete(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    id: i64,
) -> QueryResult<Option<String>> {
    let target = dependent_configurations::table
        .filter(dependent_configurations::id.eq(id))
        .filter(dependent_configurations::profile_id.eq(profile_id));
    let name = target
        .select(dependent_configurations::name)
        .first::<String>(conn)
        .optional()?;
    diesel::delete(target).execute(conn)?;
    Ok(name)
}
