//! What the sync engine reads and writes in bulk: a profile's synchronised users
//! (`synced_by_profile`, `names_taken_elsewhere`, for the plan) and the batched insert,
//! update, rename and delete its apply step runs in one transaction. Row ids here are raw
//! `i64`s: the bulk path moves hundreds of thousands of them between maps, vectors and
//! COPY buffers, all of them user ids.

use diesel::prelude::*;

use super::{AuthMethod, emails_column, index_search, parse_emails, search_text, username_key};
use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::models::user_privileges::Privilege;
use crate::db::schema::users;

/// A synchronised user as the sync engine compares it with the directory.
#[derive(Clone, Debug)]
pub struct SyncedUser {
    pub id: i64,
    pub external_id: String,
    pub username: String,
    pub full_name: String,
    pub directory_disabled: bool,
    pub emails: Vec<String>,
    pub sign_in_name_key: String,
    /// The name the directory sent (empty for users synchronised before it was kept).
    pub directory_name: String,
}

pub fn count_of_profile(conn: &mut DbConnection, profile_id: ProfileId) -> QueryResult<i64> {
    super::counts::total(conn, Some(Some(profile_id)))
}

/// The users a profile synchronised, with their addresses.
pub fn synced_by_profile(
    conn: &mut DbConnection,
    profile_id: ProfileId,
) -> QueryResult<Vec<SyncedUser>> {
    type Row = (
        i64,
        Option<String>,
        String,
        String,
        bool,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = users::table
        .filter(users::profile_id.eq(profile_id))
        .filter(users::auth_method.eq(AuthMethod::Directory.as_str()))
        .order(users::id)
        .select((
            users::id,
            users::external_id,
            users::username,
            users::full_name,
            users::directory_disabled,
            users::emails,
            users::sign_in_name_key,
            users::directory_name,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, external_id, username, full_name, directory_disabled, emails, sign_in, name)| {
                SyncedUser {
                    sign_in_name_key: sign_in,
                    directory_name: name,
                    emails: parse_emails(&emails),
                    id,
                    external_id: external_id.unwrap_or_default(),
                    username,
                    full_name,
                    directory_disabled,
                }
            },
        )
        .collect())
}

/// Login names in `domain` that belong to someone else than this profile's users.
pub fn names_taken_elsewhere(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    domain: &str,
) -> QueryResult<std::collections::HashSet<String>> {
    let keys: Vec<String> = users::table
        .filter(users::domain.eq(domain))
        .filter(
            users::profile_id
                .is_null()
                .or(users::profile_id.ne(profile_id))
                .or(users::auth_method.ne(AuthMethod::Directory.as_str())),
        )
        .select(users::username_key)
        .load(conn)?;
    Ok(keys.into_iter().collect())
}

/// A user a sync creates.
pub struct NewDirectoryUser<'a> {
    pub external_id: &'a str,
    pub username: &'a str,
    pub full_name: &'a str,
    pub emails: &'a [String],
    pub disabled: bool,
    /// Active Directory's userPrincipalName (empty for other kinds).
    pub sign_in_name: &'a str,
    /// The name as the directory sent it, before "use only the local part".
    pub directory_name: &'a str,
}

#[derive(Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
struct DirectoryUserRow<'a> {
    profile_id: Option<ProfileId>,
    external_id: Option<&'a str>,
    username: &'a str,
    username_key: String,
    domain: &'a str,
    full_name: &'a str,
    auth_method: &'a str,
    directory_disabled: bool,
    mfa_required: bool,
    search_text: String,
    emails: String,
    privileges: &'a str,
    created_at: i64,
    updated_at: i64,
    sign_in_name_key: String,
    directory_name: &'a str,
}

/// How a sync creates users: in its profile's domain, with its MFA-by-default and default
/// privileges.
pub struct NewUsersOf<'a> {
    pub profile_id: ProfileId,
    pub domain: &'a str,
    pub mfa_required: bool,
    pub privileges: &'a [Privilege],
}

/// Inserts users in batches; returns nothing (ids are looked up by external id after).
/// Takes the users one by one: only a batch of rows is ever built at once.
pub fn insert_directory_users<'a>(
    conn: &mut DbConnection,
    of: &NewUsersOf,
    new: impl IntoIterator<Item = impl std::borrow::Borrow<NewDirectoryUser<'a>>>,
) -> QueryResult<()> {
    let privileges = Privilege::join(of.privileges);
    let now = crate::db::now();
    let before: i64 = users::table
        .select(diesel::dsl::max(users::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    // 16 columns × 2,000 rows stays under SQLite's 32,766 bound parameters; PostgreSQL
    // takes larger batches by COPY (a 100,000-user sync: 2.7 s of multi-row INSERTs).
    let batch = match conn {
        DbConnection::Sqlite(_) => 2_000,
        DbConnection::Pg(_) => 20_000,
    };
    let mut new = new.into_iter().peekable();
    while new.peek().is_some() {
        let chunk: Vec<_> = new.by_ref().take(batch).collect();
        let rows: Vec<DirectoryUserRow> = chunk
            .iter()
            .map(|u| u.borrow())
            .map(|u| DirectoryUserRow {
                profile_id: Some(of.profile_id),
                external_id: Some(u.external_id),
                username: u.username,
                username_key: username_key(u.username),
                domain: of.domain,
                full_name: u.full_name,
                auth_method: AuthMethod::Directory.as_str(),
                directory_disabled: u.disabled,
                mfa_required: of.mfa_required,
                search_text: search_text(u.username, u.full_name, u.emails),
                emails: emails_column(u.emails),
                privileges: &privileges,
                created_at: now,
                updated_at: now,
                sign_in_name_key: username_key(u.sign_in_name),
                directory_name: u.directory_name,
            })
            .collect();
        match &mut *conn {
            DbConnection::Pg(c) => {
                diesel::copy_from(users::table)
                    .from_insertable(&rows)
                    .execute(c)?;
                // Readers, during the sync too, never search more than one batch's pending
                // trigram entries.
                super::merge_pending_search(c)?;
            }
            DbConnection::Sqlite(c) => {
                diesel::insert_into(users::table).values(&rows).execute(c)?;
            }
        }
    }
    index_search(conn, before)?;
    Ok(())
}

/// External id → user id for a profile's users.
pub fn ids_by_external_id(
    conn: &mut DbConnection,
    profile_id: ProfileId,
) -> QueryResult<std::collections::HashMap<String, i64>> {
    let rows: Vec<(Option<String>, i64)> = users::table
        .filter(users::profile_id.eq(profile_id))
        .select((users::external_id, users::id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(ext, id)| ext.map(|e| (e, id)))
        .collect())
}

/// Gives a user a throwaway login key so renames that swap names never collide.
pub fn park_username(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::username_key.eq(format!("\u{1}renaming-{id}")))
        .execute(conn)?;
    Ok(())
}

pub fn update_directory_user(
    conn: &mut DbConnection,
    id: i64,
    user: &NewDirectoryUser,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::username.eq(user.username),
            users::username_key.eq(username_key(user.username)),
            users::full_name.eq(user.full_name),
            users::directory_disabled.eq(user.disabled),
            users::search_text.eq(search_text(user.username, user.full_name, user.emails)),
            users::emails.eq(emails_column(user.emails)),
            users::sign_in_name_key.eq(username_key(user.sign_in_name)),
            users::directory_name.eq(user.directory_name),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes directory users of one profile (and nobody else, whatever the ids say).
pub fn delete_directory_users(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    ids: &[i64],
) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in ids.chunks(500) {
        n += diesel::delete(
            users::table
                .filter(users::profile_id.eq(profile_id))
                .filter(users::auth_method.eq(AuthMethod::Directory.as_str()))
                .filter(users::id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(n)
}
