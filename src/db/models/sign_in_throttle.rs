//! Failed sign-in counters per account and per client address, in fixed windows.
//! An attempt is counted *before* the password is checked, in one atomic upsert, so
//! parallel attempts can never slip past the limit.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

use crate::db::DbConnection;
use crate::db::schema::sign_in_throttle;
use crate::with_backend;

#[derive(QueryableByName)]
struct Failures {
    #[diesel(sql_type = Integer)]
    failures: i32,
}

/// Counts one attempt for `key` and returns the attempts in the current window,
/// this one included. A window older than `window_seconds` starts afresh.
pub fn count_attempt(
    conn: &mut DbConnection,
    key: &str,
    now: i64,
    window_seconds: i64,
) -> QueryResult<i32> {
    // The same statement on both backends; SQLite spells numbered parameters `?N`.
    const SQL: &str = "INSERT INTO sign_in_throttle (throttle_key, failures, window_started_at) \
         VALUES ($1, 1, $2) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
           failures = CASE WHEN sign_in_throttle.window_started_at <= $3 THEN 1 \
                      ELSE sign_in_throttle.failures + 1 END, \
           window_started_at = CASE WHEN sign_in_throttle.window_started_at <= $3 THEN $2 \
                      ELSE sign_in_throttle.window_started_at END \
         RETURNING failures";
    let cutoff = now - window_seconds;
    let row: Failures = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(SQL.replace('$', "?"))
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(cutoff)
            .get_result(c)?,
        DbConnection::Pg(c) => diesel::sql_query(SQL)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(cutoff)
            .get_result(c)?,
    };
    Ok(row.failures)
}

/// Takes back one counted attempt (a sign-in that succeeded was not a failure).
pub fn uncount_attempt(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::update(
        sign_in_throttle::table
            .filter(sign_in_throttle::throttle_key.eq(key))
            .filter(sign_in_throttle::failures.gt(0)),
    )
    .set(sign_in_throttle::failures.eq(sign_in_throttle::failures - 1))
    .execute(conn)
    .map(drop)
}

/// Forgets all failures for `key` (an account that signed in successfully).
pub fn clear(conn: &mut DbConnection, key: &str) -> QueryResult<()> {
    diesel::delete(sign_in_throttle::table.filter(sign_in_throttle::throttle_key.eq(key)))
        .execute(conn)
        .map(drop)
}

/// When the window of `key` ends, for the "try again in …" message.
pub fn window_started_at(conn: &mut DbConnection, key: &str) -> QueryResult<Option<i64>> {
    with_backend!(conn, |c| sign_in_throttle::table
        .filter(sign_in_throttle::throttle_key.eq(key))
        .select(sign_in_throttle::window_started_at)
        .first(c)
        .optional())
}

/// Forgets every counter whose window ended before `cutoff`: typed names must not pile up.
pub fn prune(conn: &mut DbConnection, cutoff: i64) -> QueryResult<usize> {
    diesel::delete(sign_in_throttle::table.filter(sign_in_throttle::window_started_at.le(cutoff)))
        .execute(conn)
}
