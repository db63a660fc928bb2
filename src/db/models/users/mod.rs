//! Users: people from a directory profile or created in Roster.
//!
//! This file holds the `users` row (`User`), its enums (`AuthMethod`, `Standing`), the
//! column helpers every writer shares (`username_key`, `emails_column`, `search_text`) and
//! the lookups sign-in needs. The rest is split by who calls it:
//! - `admin`: creating local users and what an admin does to one (disable, switch
//!   authentication, delete);
//! - `search`: the admin users list (`search`) and SQLite's search index;
//! - `sync`: the bulk reads and writes of the sync engine (`sync/plan.rs`, `sync/apply.rs`);
//! - `mfa`: the TOTP and MFA columns (enrolment, replay guard, reset).
//!
//! The submodules are private: every item is re-exported here, so callers keep using
//! `db::models::users::NAME` whatever file it lives in.

mod admin;
mod counts;
mod mfa;
mod search;
mod sync;

pub use admin::{
    DirectoryAccount, NewLocalUser, create_local, delete, identity_taken, set_disabled,
    switch_to_directory, switch_to_local,
};
pub use mfa::{
    accept_totp_step, mark_mfa_enrolled, reset_mfa, set_mfa_required, set_totp_secret,
    totp_secret_id,
};
pub use search::{
    MfaState, SEARCH_COUNT_CAP, Start, UserFilter, UserListRow, UserPage, index_search,
    merge_pending_search, search, search_filtered,
};
pub use sync::{
    NewDirectoryUser, NewUsersOf, SyncedUser, count_of_profile, delete_directory_users,
    ids_by_external_id, insert_directory_users, names_taken_elsewhere, park_username,
    synced_by_profile, update_directory_user,
};

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::{ProfileId, UserId};
use crate::db::models::user_privileges::Privilege;
use crate::db::schema::users;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Local,
    Directory,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Local => "local",
            AuthMethod::Directory => "directory",
        }
    }
    pub fn parse(s: &str) -> AuthMethod {
        if s == "directory" {
            AuthMethod::Directory
        } else {
            AuthMethod::Local
        }
    }
}

/// A user row. No `Debug`: it carries the password hash.
#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub profile_id: Option<ProfileId>,
    pub external_id: Option<String>,
    pub username: String,
    pub domain: String,
    pub full_name: String,
    pub auth_method: String,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub directory_disabled: bool,
    pub mfa_required: bool,
    pub mfa_enrolled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_sign_in_at: Option<i64>,
    emails: String,
    privileges: String,
    directory_name: String,
}

impl User {
    /// The user's name as their directory knows it (for directories that check passwords
    /// by name): as last synchronised, else the user name.
    pub fn directory_name(&self) -> &str {
        if self.directory_name.is_empty() {
            &self.username
        } else {
            &self.directory_name
        }
    }

    pub fn emails(&self) -> Vec<String> {
        parse_emails(&self.emails)
    }

    pub fn privileges(&self) -> Vec<Privilege> {
        Privilege::split(&self.privileges)
    }

    pub fn auth_method(&self) -> AuthMethod {
        AuthMethod::parse(&self.auth_method)
    }

    /// Asked for a one-time code at every sign-in: required by an admin or the profile, or
    /// enrolled by the user's own choice.
    pub fn needs_mfa(&self) -> bool {
        self.mfa_required || self.mfa_enrolled_at.is_some()
    }

    pub fn standing(&self) -> Standing {
        Standing::of(self.disabled, self.directory_disabled)
    }
    /// `name` or `name@domain`, how the user is shown and signs in.
    pub fn login_name(&self) -> String {
        if self.domain.is_empty() {
            self.username.clone()
        } else {
            format!("{}@{}", self.username, self.domain)
        }
    }
}

/// Whether a user may sign in, and if not who said so: the one notion every page, list and
/// filter shows (an admin's "disable" in Roster, or the account disabled at the directory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Enabled,
    DisabledInRoster,
    DisabledInDirectory,
}

impl Standing {
    pub fn of(disabled: bool, directory_disabled: bool) -> Standing {
        match (disabled, directory_disabled) {
            (true, _) => Standing::DisabledInRoster,
            (false, true) => Standing::DisabledInDirectory,
            (false, false) => Standing::Enabled,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Standing::Enabled => "Enabled",
            Standing::DisabledInRoster => "Disabled in Roster",
            Standing::DisabledInDirectory => "Disabled in the directory",
        }
    }

    pub fn is_enabled(self) -> bool {
        self == Standing::Enabled
    }
}

/// The lower-cased key users are looked up and ordered by.
pub fn username_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// The `users.emails` column: the addresses as a JSON array, in the directory's order (one
/// column rather than a table of rows: see `user_privileges` for why).
pub fn emails_column(addresses: &[String]) -> String {
    serde_json::to_string(addresses).unwrap_or_else(|_| "[]".into())
}

/// Reads the `users.emails` column; anything unreadable is no addresses.
pub fn parse_emails(column: &str) -> Vec<String> {
    serde_json::from_str(column).unwrap_or_default()
}

/// What the users-list search matches: user name, full name and e-mail addresses.
pub fn search_text(username: &str, full_name: &str, emails: &[String]) -> String {
    let mut text = format!("{username} {full_name}");
    for e in emails {
        text.push(' ');
        text.push_str(e);
    }
    fold(&text)
}

/// Text as searches compare it: lowercase, without diacritics (`Ångström` → `angstrom`),
/// and the letters Unicode does not decompose spelt out (`ø` → `o`, `ß` → `ss`).
pub fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    let mut out = String::with_capacity(text.len());
    for ch in text.to_lowercase().nfd().filter(|c| !is_combining_mark(*c)) {
        match ch {
            'ø' => out.push('o'),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ß' => out.push_str("ss"),
            'ł' => out.push('l'),
            'đ' | 'ð' => out.push('d'),
            'þ' => out.push_str("th"),
            'ı' => out.push('i'),
            c => out.push(c),
        }
    }
    out
}

/// Rewrites the `search_text` of rows written before it was folded (`search_version` 1),
/// a thousand a transaction; run after the migrations. The number of rows rewritten.
pub fn refold_search_text(conn: &mut DbConnection) -> QueryResult<usize> {
    let mut done = 0;
    loop {
        let rows: Vec<(UserId, String, String, String)> = users::table
            .filter(users::search_version.eq(1))
            .select((users::id, users::username, users::full_name, users::emails))
            .limit(1000)
            .load(conn)?;
        if rows.is_empty() {
            return Ok(done);
        }
        conn.transaction(|c| {
            for (id, username, full_name, emails) in &rows {
                let text = search_text(username, full_name, &parse_emails(emails));
                diesel::update(users::table.find(*id))
                    .set((users::search_text.eq(text), users::search_version.eq(2)))
                    .execute(c)?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        done += rows.len();
    }
}

pub fn find(conn: &mut DbConnection, id: UserId) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The user a profile synchronised with this stable id (an OpenID sign-in's `oid`).
pub fn find_by_external_id(
    conn: &mut DbConnection,
    profile: crate::db::ids::ProfileId,
    external_id: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::profile_id.eq(profile))
        .filter(users::external_id.eq(external_id))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Users whose user name matches `name` (any domain): sign-in decides what to do with
/// more than one.
pub fn find_by_username(conn: &mut DbConnection, name: &str) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::username_key.eq(username_key(name)))
        .select(User::as_select())
        .limit(2)
        .load(conn)
}

/// The users a typed login name can mean: `user` (any domain), `user@domain`, `DOMAIN\user`
/// (the first label of a profile's domain, as Active Directory's NetBIOS name usually is) and
/// names that themselves contain `@` (a directory without "use only local part").
/// Sign-in refuses a name that means more than one.
pub fn find_for_login(conn: &mut DbConnection, login: &str) -> QueryResult<Vec<User>> {
    let login = login.trim();
    let by_key = |conn: &mut DbConnection, key: String| -> QueryResult<Vec<User>> {
        users::table
            .filter(users::username_key.eq(key))
            .select(User::as_select())
            .limit(20)
            .load(conn)
    };
    let mut found: Vec<User> = Vec::new();
    if let Some((netbios, name)) = login.split_once('\\') {
        let netbios = netbios.to_lowercase();
        found.extend(by_key(conn, username_key(name))?.into_iter().filter(|u| {
            !u.domain.is_empty() && u.domain.split('.').next() == Some(netbios.as_str())
        }));
    } else if let Some((name, domain)) = login.rsplit_once('@') {
        let domain = domain.to_lowercase();
        found.extend(
            by_key(conn, username_key(name))?
                .into_iter()
                .filter(|u| u.domain.to_lowercase() == domain),
        );
        found.extend(by_key(conn, username_key(login))?);
        // An Active Directory user's userPrincipalName, whatever its prefix.
        found.extend(
            users::table
                .filter(users::sign_in_name_key.eq(username_key(login)))
                // Spelt out so both planners use the partial index.
                .filter(users::sign_in_name_key.ne(""))
                .select(User::as_select())
                .limit(20)
                .load(conn)?,
        );
    } else {
        found.extend(by_key(conn, username_key(login))?);
    }
    found.sort_by_key(|u| u.id);
    found.dedup_by_key(|u| u.id);
    Ok(found)
}

pub fn exists_with_username(conn: &mut DbConnection, name: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::username_key.eq(username_key(name))),
    ))
    .get_result(conn)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    counts::total(conn, None)
}

pub fn set_password_hash(conn: &mut DbConnection, id: UserId, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(drop)
}

pub fn record_sign_in(conn: &mut DbConnection, id: UserId) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_sign_in_at.eq(crate::db::now()))
        .execute(conn)
        .map(drop)
}

/// A user's sort key in lists (`username_key`), where a page of members starts or ends.
pub fn username_key_of(conn: &mut DbConnection, id: UserId) -> QueryResult<Option<String>> {
    users::table
        .find(id)
        .select(users::username_key)
        .first(conn)
        .optional()
}

/// How many users each profile holds.
pub fn count_per_profile(
    conn: &mut DbConnection,
) -> QueryResult<std::collections::HashMap<crate::db::ids::ProfileId, i64>> {
    counts::per_profile(conn)
}

/// Which of these users still exist.
pub fn existing(
    conn: &mut DbConnection,
    ids: &[UserId],
) -> QueryResult<std::collections::HashSet<UserId>> {
    let mut found = std::collections::HashSet::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<UserId> = users::table
            .filter(users::id.eq_any(chunk))
            .select(users::id)
            .load(conn)?;
        found.extend(rows);
    }
    Ok(found)
}
