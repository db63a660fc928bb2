//! One-time tokens of the first-start setup link (only their hashes are stored).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::setup_tokens;

pub fn create(conn: &mut DbConnection, token_hash: &str, expires_at: i64) -> QueryResult<()> {
    diesel::insert_into(setup_tokens::table)
        .values((
            setup_tokens::token_hash.eq(token_hash),
            setup_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(drop)
}

pub fn is_valid(conn: &mut DbConnection, token_hash: &str, now: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        setup_tokens::table
            .filter(setup_tokens::token_hash.eq(token_hash))
            .filter(setup_tokens::expires_at.gt(now)),
    ))
    .get_result(conn)
}

/// Removes every token: the first admin exists, so no link may work any more.
pub fn clear(conn: &mut DbConnection) -> QueryResult<()> {
    diesel::delete(setup_tokens::table).execute(conn).map(drop)
}
