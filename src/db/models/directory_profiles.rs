//! Directory profiles (the profiles issue adds the forms; the foundation only counts them).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::directory_profiles;

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    directory_profiles::table.count().get_result(conn)
}

pub fn name(conn: &mut DbConnection, id: i64) -> QueryResult<Option<String>> {
    directory_profiles::table
        .find(id)
        .select(directory_profiles::name)
        .first(conn)
        .optional()
}
