//! Users: people from a directory profile or created in Roster.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::db::schema::{directory_profiles, user_emails, users};
use crate::db::{Backend, DbConnection, models};
use crate::with_backend;

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
    pub id: i64,
    pub profile_id: Option<i64>,
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
}

impl User {
    pub fn auth_method(&self) -> AuthMethod {
        AuthMethod::parse(&self.auth_method)
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

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    profile_id: Option<i64>,
    external_id: Option<&'a str>,
    username: &'a str,
    username_key: &'a str,
    domain: &'a str,
    full_name: &'a str,
    auth_method: &'a str,
    password_hash: Option<&'a str>,
    mfa_required: bool,
    search_text: &'a str,
    created_at: i64,
    updated_at: i64,
}

/// A user created by an admin (or the first-start setup) with a local password.
pub struct NewLocalUser<'a> {
    pub username: &'a str,
    pub full_name: &'a str,
    pub emails: &'a [String],
    pub password_hash: &'a str,
    pub privileges: &'a [models::user_privileges::Privilege],
}

/// The lower-cased key users are looked up and ordered by.
pub fn username_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// What the users-list search matches: user name, full name and e-mail addresses.
pub fn search_text(username: &str, full_name: &str, emails: &[String]) -> String {
    let mut text = format!("{username} {full_name}");
    for e in emails {
        text.push(' ');
        text.push_str(e);
    }
    text.to_lowercase()
}

pub fn create_local(conn: &mut DbConnection, new: &NewLocalUser) -> QueryResult<i64> {
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
        created_at: now,
        updated_at: now,
    };
    conn.transaction(|conn| {
        let id: i64 = with_backend!(conn, |c| diesel::insert_into(users::table)
            .values(&row)
            .returning(users::id)
            .get_result(c))?;
        models::user_emails::replace(conn, id, new.emails)?;
        models::user_privileges::replace(conn, id, new.privileges)?;
        Ok(id)
    })
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
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

pub fn exists_with_username(conn: &mut DbConnection, name: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::username_key.eq(username_key(name))),
    ))
    .get_result(conn)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

pub fn set_password_hash(conn: &mut DbConnection, id: i64, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(drop)
}

pub fn record_sign_in(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_sign_in_at.eq(crate::db::now()))
        .execute(conn)
        .map(drop)
}

/// One row of the users list.
pub struct UserListRow {
    pub id: i64,
    pub login_name: String,
    pub full_name: String,
    pub email: String,
    pub source: String,
    pub disabled: bool,
}

pub struct UserPage {
    pub rows: Vec<UserListRow>,
    pub total: i64,
}

/// Case-insensitive substring search over user name, full name and e-mail addresses,
/// ordered by user name. On SQLite a trigram FTS5 index answers needles of three or more
/// characters; on PostgreSQL a pg_trgm GIN index serves the same LIKE.
pub fn search(
    conn: &mut DbConnection,
    query: &str,
    offset: i64,
    limit: i64,
) -> QueryResult<UserPage> {
    let needle = query.trim().to_lowercase();
    let use_fts = conn.backend() == Backend::Sqlite && needle.chars().count() >= 3;
    let like = format!("%{}%", escape_like(&needle));
    let phrase = format!("\"{}\"", needle.replace('"', "\"\""));

    // Builds the same filter for the count and for the page.
    macro_rules! filtered {
        ($q:expr) => {{
            let q = $q;
            if needle.is_empty() {
                q
            } else if use_fts {
                q.filter(
                    sql::<Bool>(
                        "users.id IN (SELECT rowid FROM users_search WHERE users_search MATCH ",
                    )
                    .bind::<Text, _>(phrase.clone())
                    .sql(")"),
                )
            } else {
                q.filter(users::search_text.like(like.clone()).escape('\\'))
            }
        }};
    }

    type Row = (i64, String, String, String, bool, Option<String>);
    let (rows, total): (Vec<Row>, i64) = with_backend!(conn, |c| {
        let total = filtered!(users::table.into_boxed()).count().get_result(c)?;
        let rows = filtered!(
            users::table
                .left_join(directory_profiles::table)
                .into_boxed()
        )
        .order((users::username_key, users::domain, users::id))
        .offset(offset)
        .limit(limit)
        .select((
            users::id,
            users::username,
            users::domain,
            users::full_name,
            users::disabled,
            directory_profiles::name.nullable(),
        ))
        .load(c)?;
        (rows, total)
    });

    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let emails: Vec<(i64, String)> = user_emails::table
        .filter(user_emails::user_id.eq_any(&ids))
        .order((user_emails::user_id, user_emails::position))
        .select((user_emails::user_id, user_emails::address))
        .load(conn)?;
    let rows = rows
        .into_iter()
        .map(
            |(id, username, domain, full_name, disabled, profile)| UserListRow {
                id,
                login_name: if domain.is_empty() {
                    username
                } else {
                    format!("{username}@{domain}")
                },
                full_name,
                email: emails
                    .iter()
                    .find(|(uid, _)| *uid == id)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default(),
                source: profile.unwrap_or_else(|| "Roster".into()),
                disabled,
            },
        )
        .collect();
    Ok(UserPage { rows, total })
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}
