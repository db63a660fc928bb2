//! Local users and admin actions on one user: creation (admin page, first-start setup),
//! the name/identity check and the switch between local and directory authentication,
//! disabling, and deletion.

use diesel::prelude::*;

use super::{AuthMethod, emails_column, index_search, search_text, totp_secret_id, username_key};
use crate::db::ids::{ProfileId, UserId};
use crate::db::models::user_privileges::Privilege;
use crate::db::schema::users;
use crate::db::{DbConnection, models};
use crate::with_backend;

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    profile_id: Option<ProfileId>,
    external_id: Option<&'a str>,
    username: &'a str,
    username_key: &'a str,
    domain: &'a str,
    full_name: &'a str,
    auth_method: &'a str,
    password_hash: Option<&'a str>,
    mfa_required: bool,
    search_text: &'a str,
    emails: String,
    privileges: String,
    created_at: i64,
    updated_at: i64,
}

/// A user created by an admin (or the first-start setup) with a local password.
pub struct NewLocalUser<'a> {
    pub username: &'a str,
    pub full_name: &'a str,
    pub emails: &'a [String],
    pub password_hash: &'a str,
    pub privileges: &'a [Privilege],
}

pub fn create_local(conn: &mut DbConnection, new: &NewLocalUser) -> QueryResult<UserId> {
    let now = crate::db::now();
    let key = username_key(new.username);
    let search = search_text(new.username, new.full_name, new.emails);
    let row = NewUserRow {
        profile_id: None,
        external_id: None,
        username: new.username.trim(),
        username_key: &key,
        domain: "",
        full_name: new.full_name.trim(),
        auth_method: AuthMethod::Local.as_str(),
        password_hash: Some(new.password_hash),
        mfa_required: false,
        search_text: &search,
        emails: emails_column(new.emails),
        privileges: Privilege::join(new.privileges),
        created_at: now,
        updated_at: now,
    };
    conn.transaction(|conn| {
        let id: UserId = with_backend!(conn, |c| diesel::insert_into(users::table)
            .values(&row)
            .returning(users::id)
            .get_result(c))?;
        index_search(conn, id.0 - 1)?;
        Ok(id)
    })
}

/// Whether a user other than `except` already has this name, or this directory identity.
pub fn identity_taken(
    conn: &mut DbConnection,
    except: UserId,
    username: &str,
    domain: &str,
    profile_id: ProfileId,
    external_id: &str,
) -> QueryResult<Option<String>> {
    let by_name = users::username_key
        .eq(username_key(username))
        .and(users::domain.eq(domain));
    let by_identity = users::profile_id
        .eq(profile_id)
        .and(users::external_id.eq(external_id));
    let other: Option<(String, String)> = users::table
        .filter(users::id.ne(except))
        .filter(by_name.or(by_identity))
        .select((users::username, users::domain))
        .first(conn)
        .optional()?;
    Ok(other.map(|(name, domain)| {
        if domain.is_empty() {
            name
        } else {
            format!("{name}@{domain}")
        }
    }))
}

/// Where a local user moves to: the profile, the directory's stable id and name for them, and
/// their name in Roster.
pub struct DirectoryAccount<'a> {
    pub profile_id: ProfileId,
    pub external_id: &'a str,
    pub username: &'a str,
    pub domain: &'a str,
    pub directory_name: &'a str,
}

/// A local user signs in at a directory from now on: the profile's next sync owns the row
/// (it finds it by stable id). The Roster password is forgotten.
pub fn switch_to_directory(
    conn: &mut DbConnection,
    id: UserId,
    to: &DirectoryAccount,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::auth_method.eq(AuthMethod::Directory.as_str()),
            users::password_hash.eq(None::<String>),
            users::profile_id.eq(Some(to.profile_id)),
            users::external_id.eq(Some(to.external_id)),
            users::username.eq(to.username),
            users::username_key.eq(username_key(to.username)),
            users::domain.eq(to.domain),
            users::directory_name.eq(to.directory_name),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(drop)
}

/// A directory user gets a Roster password and leaves its profile (its syncs no longer
/// touch it; its name stays).
pub fn switch_to_local(conn: &mut DbConnection, id: UserId, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::auth_method.eq(AuthMethod::Local.as_str()),
            users::password_hash.eq(Some(hash)),
            users::profile_id.eq(None::<i64>),
            users::external_id.eq(None::<String>),
            users::directory_disabled.eq(false),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(drop)
}

pub fn set_disabled(conn: &mut DbConnection, id: UserId, disabled: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::disabled.eq(disabled))
        .execute(conn)
}

/// Deletes a user with everything that hangs off it (cascades) and its TOTP secret.
pub fn delete(conn: &mut DbConnection, id: UserId) -> QueryResult<usize> {
    conn.transaction(|c| {
        let secret = totp_secret_id(c, id).optional()?.flatten();
        let n = diesel::delete(users::table.find(id)).execute(c)?;
        if let Some(secret) = secret {
            models::secrets::delete(c, secret)?;
        }
        Ok(n)
    })
}
