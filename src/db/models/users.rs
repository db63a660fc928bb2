//! Users: people from a directory profile or created in Roster.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use crate::db::models::user_privileges::Privilege;
use crate::db::schema::{directory_profiles, users};
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
    emails: String,
    privileges: String,
}

impl User {
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
        emails: emails_column(new.emails),
        privileges: Privilege::join(new.privileges),
        created_at: now,
        updated_at: now,
    };
    conn.transaction(|conn| {
        let id: i64 = with_backend!(conn, |c| diesel::insert_into(users::table)
            .values(&row)
            .returning(users::id)
            .get_result(c))?;
        index_search(conn, id - 1)?;
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

/// Whether a user other than `except` already has this name, or this directory identity.
pub fn identity_taken(
    conn: &mut DbConnection,
    except: i64,
    username: &str,
    domain: &str,
    profile_id: i64,
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

/// A local user signs in at a directory from now on: the profile's next sync owns the row
/// (it finds it by stable id). The Roster password is forgotten.
pub fn switch_to_directory(
    conn: &mut DbConnection,
    id: i64,
    profile_id: i64,
    external_id: &str,
    username: &str,
    domain: &str,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::auth_method.eq(AuthMethod::Directory.as_str()),
            users::password_hash.eq(None::<String>),
            users::profile_id.eq(Some(profile_id)),
            users::external_id.eq(Some(external_id)),
            users::username.eq(username),
            users::username_key.eq(username_key(username)),
            users::domain.eq(domain),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(drop)
}

/// A directory user gets a Roster password and leaves its profile (its syncs no longer
/// touch it; its name stays).
pub fn switch_to_local(conn: &mut DbConnection, id: i64, hash: &str) -> QueryResult<()> {
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
    pub standing: Standing,
}

pub struct UserPage {
    pub rows: Vec<UserListRow>,
    /// Matching users, counted up to the cap.
    pub total: i64,
    /// True when `total` is only a lower bound ("more than 1,000").
    pub total_is_lower_bound: bool,
    /// Whether a page follows this one.
    pub has_more: bool,
}

/// The users list counts this many matches at most; beyond it the page says "more than".
pub const SEARCH_COUNT_CAP: i64 = 1_000;

/// Case-insensitive substring search over user name, full name and e-mail addresses,
/// ordered by user name (the `users_login` index order). Nothing here is proportional to
/// the number of users unless a search matches most of them.
///
/// SQLite answers needles of three or more characters from a trigram FTS5 index,
/// PostgreSQL serves the LIKE from a pg_trgm GIN index; the plan follows the number of
/// matches, counted only up to `count_cap` (an exact count of a broad search costs as much
/// as reading every match):
/// - up to the cap, the matches are fetched and sorted;
/// - past it, at least one user in a hundred matches, so walking the user-name index and
///   testing `search_text` finds the first pages within a few thousand rows;
/// - for a deeper page, counting goes on to ten times the cap: below that, sorting the
///   matches is still cheap; above it, one user in ten matches and the walk stays short.
pub fn search(
    conn: &mut DbConnection,
    query: &str,
    offset: i64,
    limit: i64,
    count_cap: i64,
) -> QueryResult<UserPage> {
    let needle = query.trim().to_lowercase();
    let like = format!("%{}%", escape_like(&needle));
    let phrase = format!("\"{}\"", needle.replace('"', "\"\""));
    let fts = conn.backend() == Backend::Sqlite && needle.chars().count() >= 3;

    let counted = count_matches(conn, &needle, fts, &phrase, &like, count_cap + 1)?;
    let capped = counted > count_cap;
    let deep_page = offset + limit > 2 * limit;
    let sort_matches = !needle.is_empty()
        && (!capped
            || (deep_page
                && count_matches(conn, &needle, fts, &phrase, &like, 10 * count_cap + 1)?
                    <= 10 * count_cap));
    let total = counted.min(count_cap);

    type Row = (
        i64,
        String,
        String,
        String,
        bool,
        bool,
        String,
        Option<String>,
    );
    let mut rows: Vec<Row> = with_backend!(conn, |c| {
        let mut q = users::table
            .left_join(directory_profiles::table)
            .into_boxed();
        if fts && sort_matches {
            q = q.filter(
                sql::<Bool>(
                    "users.id IN (SELECT rowid FROM users_search WHERE users_search MATCH ",
                )
                .bind::<Text, _>(phrase.clone())
                .sql(")"),
            );
        } else if !needle.is_empty() {
            q = q.filter(users::search_text.like(like.clone()).escape('\\'));
        }
        q = if sort_matches {
            // The same order, but as an expression no index supplies: both planners would
            // otherwise walk the user-name index testing every row, although the matches
            // are few and cheap to sort.
            q.order((sql::<Text>("users.username_key || ''"), users::domain))
        } else {
            q.order((users::username_key, users::domain))
        };
        q.offset(offset)
            .limit(limit + 1)
            .select((
                users::id,
                users::username,
                users::domain,
                users::full_name,
                users::disabled,
                users::directory_disabled,
                users::emails,
                directory_profiles::name.nullable(),
            ))
            .load(c)?
    });
    let has_more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));

    let rows = rows
        .into_iter()
        .map(
            |(id, username, domain, full_name, disabled, directory_disabled, emails, profile)| {
                UserListRow {
                    id,
                    login_name: if domain.is_empty() {
                        username
                    } else {
                        format!("{username}@{domain}")
                    },
                    full_name,
                    email: parse_emails(&emails).into_iter().next().unwrap_or_default(),
                    source: profile.unwrap_or_else(|| "Roster".into()),
                    standing: Standing::of(disabled, directory_disabled),
                }
            },
        )
        .collect();
    Ok(UserPage {
        rows,
        total,
        total_is_lower_bound: capped,
        has_more,
    })
}

/// How many users match, counting no further than `stop_at`.
fn count_matches(
    conn: &mut DbConnection,
    needle: &str,
    fts: bool,
    phrase: &str,
    like: &str,
    stop_at: i64,
) -> QueryResult<i64> {
    if needle.is_empty() {
        sql::<BigInt>("SELECT count(*) FROM (SELECT 1 FROM users LIMIT ")
            .bind::<BigInt, _>(stop_at)
            .sql(") AS capped")
            .get_result(conn)
    } else if fts {
        sql::<BigInt>("SELECT count(*) FROM (SELECT 1 FROM users_search WHERE users_search MATCH ")
            .bind::<Text, _>(phrase)
            .sql(" LIMIT ")
            .bind::<BigInt, _>(stop_at)
            .sql(") AS capped")
            .get_result(conn)
    } else {
        sql::<BigInt>("SELECT count(*) FROM (SELECT 1 FROM users WHERE search_text LIKE ")
            .bind::<Text, _>(like)
            .sql(" ESCAPE '\\' LIMIT ")
            .bind::<BigInt, _>(stop_at)
            .sql(") AS capped")
            .get_result(conn)
    }
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
}

/// The users a profile synchronised, with their addresses.
pub fn synced_by_profile(conn: &mut DbConnection, profile_id: i64) -> QueryResult<Vec<SyncedUser>> {
    type Row = (i64, Option<String>, String, String, bool, String, String);
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
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, external_id, username, full_name, directory_disabled, emails, sign_in)| {
                SyncedUser {
                    sign_in_name_key: sign_in,
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
    profile_id: i64,
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
}

#[derive(Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
struct DirectoryUserRow<'a> {
    profile_id: Option<i64>,
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
}

/// Adds users with an id above `after_id` (just inserted) to SQLite's search index (one
/// statement for a whole batch; see the migration that dropped the insert trigger).
/// PostgreSQL's trigram index is an ordinary index and needs nothing.
pub fn index_search(conn: &mut DbConnection, after_id: i64) -> QueryResult<()> {
    if let DbConnection::Sqlite(c) = conn {
        diesel::sql_query(
            "INSERT INTO users_search(rowid, search_text) SELECT id, search_text FROM users WHERE id > ?",
        )
        .bind::<BigInt, _>(after_id)
        .execute(c)?;
    }
    Ok(())
}

/// How a sync creates users: in its profile's domain, with its MFA-by-default and default
/// privileges.
pub struct NewUsersOf<'a> {
    pub profile_id: i64,
    pub domain: &'a str,
    pub mfa_required: bool,
    pub privileges: &'a [Privilege],
}

/// Inserts users in batches; returns nothing (ids are looked up by external id after).
pub fn insert_directory_users(
    conn: &mut DbConnection,
    of: &NewUsersOf,
    new: &[NewDirectoryUser],
) -> QueryResult<()> {
    let privileges = Privilege::join(of.privileges);
    let now = crate::db::now();
    let before: i64 = users::table
        .select(diesel::dsl::max(users::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    // 14 columns × 2,000 rows stays under SQLite's 32,766 bound parameters; PostgreSQL
    // takes larger batches by COPY (a 100,000-user sync: 2.7 s of multi-row INSERTs).
    let batch = match conn {
        DbConnection::Sqlite(_) => 2_000,
        DbConnection::Pg(_) => 20_000,
    };
    for chunk in new.chunks(batch) {
        let rows: Vec<DirectoryUserRow> = chunk
            .iter()
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
            })
            .collect();
        match &mut *conn {
            DbConnection::Pg(c) => {
                diesel::copy_from(users::table)
                    .from_insertable(&rows)
                    .execute(c)?;
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
    profile_id: i64,
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
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes directory users of one profile (and nobody else, whatever the ids say).
pub fn delete_directory_users(
    conn: &mut DbConnection,
    profile_id: i64,
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

/// The user's TOTP secret (sealed, in `secrets`) while enrolling or enrolled.
pub fn totp_secret_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<i64>> {
    users::table
        .find(id)
        .select(users::totp_secret_id)
        .first(conn)
}

pub fn set_totp_secret(
    conn: &mut DbConnection,
    id: i64,
    secret_id: Option<i64>,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::totp_secret_id.eq(secret_id))
        .execute(conn)?;
    Ok(())
}

/// Accepts a TOTP time step once: compare-and-set on the last accepted step, so the same
/// code in two browsers at the same moment works for one of them.
pub fn accept_totp_step(conn: &mut DbConnection, id: i64, step: i64) -> QueryResult<bool> {
    let n = diesel::update(
        users::table.find(id).filter(
            users::totp_last_step
                .is_null()
                .or(users::totp_last_step.lt(step)),
        ),
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn mark_mfa_enrolled(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::mfa_enrolled_at.eq(crate::db::now()))
        .execute(conn)?;
    Ok(())
}

pub fn set_disabled(conn: &mut DbConnection, id: i64, disabled: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::disabled.eq(disabled))
        .execute(conn)
}

pub fn set_mfa_required(conn: &mut DbConnection, id: i64, required: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::mfa_required.eq(required))
        .execute(conn)
}

/// Forgets a user's TOTP enrolment: secret, last step, recovery codes. The next sign-in
/// enrols again (when MFA is required). Returns the secret's id for deletion.
pub fn reset_mfa(conn: &mut DbConnection, id: i64) -> QueryResult<Option<i64>> {
    let secret = totp_secret_id(conn, id)?;
    diesel::update(users::table.find(id))
        .set((
            users::totp_secret_id.eq(None::<i64>),
            users::totp_last_step.eq(None::<i64>),
            users::mfa_enrolled_at.eq(None::<i64>),
        ))
        .execute(conn)?;
    models::recovery_codes::replace(conn, id, &[])?;
    if let Some(secret) = secret {
        models::secrets::delete(conn, secret)?;
    }
    Ok(secret)
}

/// Deletes a user with everything that hangs off it (cascades) and its TOTP secret.
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    conn.transaction(|c| {
        let secret = totp_secret_id(c, id).optional()?.flatten();
        let n = diesel::delete(users::table.find(id)).execute(c)?;
        if let Some(secret) = secret {
            models::secrets::delete(c, secret)?;
        }
        Ok(n)
    })
}
