//! Where a profile's last read left off, for directories that report changes (Entra ID's
//! delta links): see the migration `change_cursors`.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::schema::change_cursors;
use crate::with_backend;

#[derive(Queryable, Selectable, Insertable, AsChangeset, Debug, Clone, PartialEq, Eq)]
#[diesel(table_name = change_cursors)]
pub struct ChangeCursor {
    pub profile_id: ProfileId,
    pub users_link: String,
    pub groups_link: String,
    /// When the profile's directory was last read completely (Unix seconds).
    pub full_read_at: i64,
}

pub fn find(conn: &mut DbConnection, profile: ProfileId) -> QueryResult<Option<ChangeCursor>> {
    change_cursors::table
        .find(profile)
        .select(ChangeCursor::as_select())
        .first(conn)
        .optional()
}

/// Keeps `cursor` as the profile's (replacing what was there).
pub fn save(conn: &mut DbConnection, cursor: &ChangeCursor) -> QueryResult<()> {
    with_backend!(conn, |c| diesel::insert_into(change_cursors::table)
        .values(cursor)
        .on_conflict(change_cursors::profile_id)
        .do_update()
        .set(cursor)
        .execute(c))?;
    Ok(())
}

/// The next run of the profile reads everything.
pub fn clear(conn: &mut DbConnection, profile: ProfileId) -> QueryResult<()> {
    diesel::delete(change_cursors::table.find(profile)).execute(conn)?;
    Ok(())
}
