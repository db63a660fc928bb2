//! Groups synchronised from directory profiles, and a user's memberships.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{directory_groups, group_memberships};

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    directory_groups::table.count().get_result(conn)
}

pub fn names_for_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<String>> {
    group_memberships::table
        .inner_join(directory_groups::table)
        .filter(group_memberships::user_id.eq(user_id))
        .order(directory_groups::name)
        .select(directory_groups::name)
        .load(conn)
}
