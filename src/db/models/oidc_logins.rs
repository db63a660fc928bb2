//! OpenID Connect sign-ins in flight: what Roster sent the provider (state, nonce, PKCE
//! verifier), kept until the provider's answer comes back once.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::schema::oidc_logins;

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = oidc_logins)]
pub struct OidcLogin {
    pub id: i64,
    pub state_hash: String,
    pub binding_hash: String,
    pub profile_id: ProfileId,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
    pub redirect_uri: String,
    pub client_ip: String,
    pub expires_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = oidc_logins)]
pub struct NewOidcLogin<'a> {
    pub state_hash: &'a str,
    pub binding_hash: &'a str,
    pub profile_id: ProfileId,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub next: &'a str,
    pub redirect_uri: &'a str,
    pub client_ip: &'a str,
    pub expires_at: i64,
}

pub fn create(conn: &mut DbConnection, login: &NewOidcLogin) -> QueryResult<()> {
    diesel::insert_into(oidc_logins::table)
        .values(login)
        .execute(conn)
        .map(drop)
}

/// Takes the sign-in with this state out, so it can be answered only once: of two
/// callbacks with the same state, only the one whose delete removed the row gets it.
pub fn take(conn: &mut DbConnection, state_hash: &str) -> QueryResult<Option<OidcLogin>> {
    conn.transaction(|c| {
        let found = oidc_logins::table
            .filter(oidc_logins::state_hash.eq(state_hash))
            .select(OidcLogin::as_select())
            .first(c)
            .optional()?;
        let Some(login) = found else {
            return Ok(None);
        };
        let removed = diesel::delete(oidc_logins::table.find(login.id)).execute(c)?;
        Ok((removed == 1).then_some(login))
    })
}

/// Whose sign-ins in flight `keep_latest` bounds.
pub enum Of<'a> {
    Binding(&'a str),
    Address(&'a str),
}

/// Drops all but the `keep` newest sign-ins of one browser or one client address.
pub fn keep_latest(conn: &mut DbConnection, of: Of, keep: i64) -> QueryResult<usize> {
    let mine = || {
        let q = oidc_logins::table.into_boxed();
        match of {
            Of::Binding(b) => q.filter(oidc_logins::binding_hash.eq(b)),
            Of::Address(a) => q.filter(oidc_logins::client_ip.eq(a)),
        }
    };
    let newest: Vec<i64> = mine()
        .order(oidc_logins::id.desc())
        .limit(keep)
        .select(oidc_logins::id)
        .load(conn)?;
    let older: Vec<i64> = mine()
        .filter(oidc_logins::id.ne_all(newest))
        .select(oidc_logins::id)
        .load(conn)?;
    diesel::delete(oidc_logins::table.filter(oidc_logins::id.eq_any(older))).execute(conn)
}

/// Forgets sign-ins nobody finished.
pub fn delete_expired(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    diesel::delete(oidc_logins::table.filter(oidc_logins::expires_at.le(now))).execute(conn)
}
