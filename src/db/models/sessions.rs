//! Server-side sessions. Only the SHA-256 of the cookie's token is stored.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::UserId;
use crate::db::models::users::User;
use crate::db::schema::{sessions, users};
use crate::with_backend;

crate::text_enum! {
    pub enum Stage {
        /// Password accepted, second factor still owed: no data may be served.
        MfaPending => "mfa",
        Full => "full",
    }
}

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: i64,
    pub user_id: UserId,
    pub stage: Stage,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: UserId,
    pub stage: Stage,
    pub client_ip: &'a str,
    pub user_agent: &'a str,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub fn create(conn: &mut DbConnection, new: &NewSession) -> QueryResult<i64> {
    with_backend!(conn, |c| diesel::insert_into(sessions::table)
        .values(new)
        .returning(sessions::id)
        .get_result(c))
}

/// The live session for a token hash with its user; expired sessions count as absent.
pub fn find_live(
    conn: &mut DbConnection,
    token_hash: &str,
    now: i64,
    idle_seconds: i64,
) -> QueryResult<Option<(Session, User)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - idle_seconds))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()
}

pub fn touch(conn: &mut DbConnection, id: i64, now: i64) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)
        .map(drop)
}

pub fn delete_by_hash(conn: &mut DbConnection, token_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_hash))).execute(conn)
}

pub fn delete_for_user(conn: &mut DbConnection, user_id: UserId) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

pub fn delete_expired(conn: &mut DbConnection, now: i64, idle_seconds: i64) -> QueryResult<usize> {
    diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(now - idle_seconds)),
        ),
    )
    .execute(conn)
}

pub fn count_live(conn: &mut DbConnection, now: i64, idle_seconds: i64) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - idle_seconds))
        .count()
        .get_result(conn)
}

/// Counts a wrong MFA code on a half-signed-in session; returns the count so far.
pub fn record_mfa_failure(conn: &mut DbConnection, id: i64) -> QueryResult<i32> {
    diesel::update(sessions::table.find(id))
        .set(sessions::mfa_failures.eq(sessions::mfa_failures + 1))
        .execute(conn)?;
    sessions::table
        .find(id)
        .select(sessions::mfa_failures)
        .first(conn)
}

pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(id)).execute(conn)
}

/// What My account shows of a session.
#[derive(Queryable)]
pub struct LiveSession {
    pub id: i64,
    pub client_ip: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// A user's live sessions, newest first, for My account.
pub fn live_for_user(
    conn: &mut DbConnection,
    user_id: UserId,
    now: i64,
    idle_seconds: i64,
) -> QueryResult<Vec<LiveSession>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::stage.eq(Stage::Full))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - idle_seconds))
        .order(sessions::last_seen_at.desc())
        .select((
            sessions::id,
            sessions::client_ip,
            sessions::user_agent,
            sessions::created_at,
            sessions::last_seen_at,
        ))
        .load(conn)
}

/// Signs a user out everywhere but in `keep`.
pub fn delete_others(conn: &mut DbConnection, user_id: UserId, keep: i64) -> QueryResult<usize> {
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.ne(keep)),
    )
    .execute(conn)
}

/// Puts a session back to the MFA step (re-enrolment): it opens only `/mfa` until a code.
pub fn back_to_mfa(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id))
        .set((
            sessions::stage.eq(Stage::MfaPending),
            sessions::mfa_failures.eq(0),
        ))
        .execute(conn)
}
