//! The admin users list: a capped, case-insensitive search (`search`) and the SQLite
//! full-text index it reads (`index_search`, called by every insert). Separate from the row
//! because the query planning here is its own concern and grows with the backends.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::{Standing, parse_emails};
use crate::db::ids::{ProfileId, UserId};
use crate::db::paging::{Keyset, Window};
use crate::db::schema::users;
use crate::db::{Backend, DbConnection};
use crate::with_backend;

/// One row of the users list.
pub struct UserListRow {
    pub id: UserId,
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
    /// Whether pages precede and follow this one.
    pub has_previous: bool,
    pub has_next: bool,
}

/// The users list counts this many matches at most; beyond it the page says "more than".
pub const SEARCH_COUNT_CAP: i64 = 1_000;

/// Where a page of the users list starts: after a number of rows (a numbered page), or
/// right after or before a user (the next and previous links). From a user a page costs
/// what the first one does however deep it is, and users added or removed meanwhile
/// neither repeat nor go missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Offset(i64),
    After(UserId),
    Before(UserId),
}

/// Case-insensitive substring search over user name, full name and e-mail addresses,
/// ordered by user name (the `users_login` index order). Nothing here is proportional to
/// the number of users unless a search matches most of them.
///
/// SQLite answers needles of three or more characters from a trigram FTS5 index,
/// PostgreSQL serves the LIKE from a pg_trgm GIN index. One statement collects at most
/// `count_cap + 1` matches and, when that is all of them, sorts them and returns the page;
/// a broader search (at least one user in a hundred matches) walks the user-name index
/// from the page's start instead, testing `search_text`, and finds its page within a few
/// thousand rows.
pub fn search(
    conn: &mut DbConnection,
    query: &str,
    start: Start,
    limit: i64,
    count_cap: i64,
) -> QueryResult<UserPage> {
    search_filtered(conn, query, &UserFilter::default(), start, limit, count_cap)
}

/// Which users the list shows besides the search: of one source, standing, MFA state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// `Some(None)`: created in Roster; `Some(Some(p))`: synchronised by profile `p`.
    pub source: Option<Option<ProfileId>>,
    pub standing: Option<Standing>,
    pub mfa: Option<MfaState>,
}

/// A user's MFA as the list filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MfaState {
    Enrolled,
    /// Required, not enrolled yet: they enrol at the next sign-in.
    Pending,
    NotRequired,
}

impl UserFilter {
    pub fn is_empty(&self) -> bool {
        *self == UserFilter::default()
    }

    /// The filter as SQL over `users`, or `None`. Only numbers and fixed words go into it
    /// (a profile id is an integer), so there is nothing to bind.
    fn condition(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        match self.source {
            Some(Some(p)) => parts.push(format!("users.profile_id = {}", p.0)),
            Some(None) => parts.push("users.profile_id IS NULL".into()),
            None => {}
        }
        match self.standing {
            Some(Standing::Enabled) => {
                parts.push("NOT users.disabled AND NOT users.directory_disabled".into())
            }
            Some(Standing::DisabledInRoster) => parts.push("users.disabled".into()),
            Some(Standing::DisabledInDirectory) => {
                parts.push("users.directory_disabled AND NOT users.disabled".into())
            }
            None => {}
        }
        match self.mfa {
            Some(MfaState::Enrolled) => parts.push("users.mfa_enrolled_at IS NOT NULL".into()),
            Some(MfaState::Pending) => {
                parts.push("users.mfa_required AND users.mfa_enrolled_at IS NULL".into())
            }
            Some(MfaState::NotRequired) => {
                parts.push("NOT users.mfa_required AND users.mfa_enrolled_at IS NULL".into())
            }
            None => {}
        }
        (!parts.is_empty()).then(|| format!("({})", parts.join(") AND (")))
    }
}

/// `search` with a filter. Without a search the total is exact (counting every user is
/// cheap); a search is counted up to the cap, as `search` explains.
pub fn search_filtered(
    conn: &mut DbConnection,
    query: &str,
    filter: &UserFilter,
    start: Start,
    limit: i64,
    count_cap: i64,
) -> QueryResult<UserPage> {
    let (at, offset) = match start {
        Start::Offset(n) => (Keyset::First, n.max(0)),
        Start::After(id) => (
            key_of(conn, id)?.map_or(Keyset::First, |k| Keyset::After(k, id.0)),
            0,
        ),
        Start::Before(id) => (
            key_of(conn, id)?.map_or(Keyset::First, |k| Keyset::Before(k, id.0)),
            0,
        ),
    };
    let needle = super::fold(query.trim());
    let matching = Matching {
        condition: filter.condition(),
        like: (!needle.is_empty()).then(|| format!("%{}%", escape_like(&needle))),
        fts_phrase: (conn.backend() == Backend::Sqlite && needle.chars().count() >= 3)
            .then(|| format!("\"{}\"", needle.replace('"', "\"\""))),
    };
    let page = Page {
        at: &at,
        offset,
        limit,
    };
    let (total, capped, rows) = if matching.like.is_none() {
        let total = if filter.standing.is_none() && filter.mfa.is_none() {
            super::counts::total(conn, filter.source)?
        } else {
            count_all(conn, matching.condition.as_deref())?
        };
        (total, false, walk(conn, &matching, &page)?)
    } else {
        let (counted, rows) = sorted_matches(conn, &matching, &page, count_cap)?;
        if counted > count_cap {
            (count_cap, true, walk(conn, &matching, &page)?)
        } else {
            (counted, false, rows)
        }
    };
    let window = Window::of(rows, &at, limit);
    Ok(UserPage {
        rows: window.rows.into_iter().map(ListRow::into_row).collect(),
        total,
        total_is_lower_bound: capped,
        has_previous: window.has_previous || offset > 0,
        has_next: window.has_next,
    })
}

/// A user's place in the list order (user-name key, domain: unique, see `users_login`).
fn key_of(conn: &mut DbConnection, id: UserId) -> QueryResult<Option<(String, String)>> {
    users::table
        .find(id)
        .select((users::username_key, users::domain))
        .first(conn)
        .optional()
}

/// Which users a search wants, as SQL pieces bound by the caller.
struct Matching {
    /// The filter's condition (no user input in it).
    condition: Option<String>,
    /// `%needle%` for LIKE over `search_text`; `None` without a search.
    like: Option<String>,
    /// The needle as an FTS5 phrase, when SQLite's trigram index can answer it.
    fts_phrase: Option<String>,
}

/// Which page of the ordered matches.
struct Page<'a> {
    at: &'a Keyset<(String, String)>,
    offset: i64,
    limit: i64,
}

impl Page<'_> {
    /// The order of the read: backwards for a page before a row (`Window::of` turns it
    /// round).
    fn direction(&self) -> &'static str {
        if matches!(self.at, Keyset::Before(..)) {
            "DESC"
        } else {
            "ASC"
        }
    }
}

const LIST_COLUMNS: &str = "users.id, users.username, users.domain, users.full_name, users.disabled, \
     users.directory_disabled, users.emails, directory_profiles.name AS profile_name";
const LIST_FROM: &str =
    "FROM users LEFT JOIN directory_profiles ON directory_profiles.id = users.profile_id";

/// One row as the list statements return it; every column but `total` is empty on the
/// one row `sorted_matches` returns when no match is on the page.
#[derive(QueryableByName)]
struct ListRow {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    domain: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    full_name: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    disabled: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    directory_disabled: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    emails: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    profile_name: Option<String>,
}

impl ListRow {
    fn into_row(self) -> UserListRow {
        let username = self.username.unwrap_or_default();
        let domain = self.domain.unwrap_or_default();
        UserListRow {
            id: UserId(self.id.unwrap_or_default()),
            login_name: if domain.is_empty() {
                username
            } else {
                format!("{username}@{domain}")
            },
            full_name: self.full_name.unwrap_or_default(),
            email: parse_emails(&self.emails.unwrap_or_default())
                .into_iter()
                .next()
                .unwrap_or_default(),
            source: self.profile_name.unwrap_or_else(|| "Roster".into()),
            standing: Standing::of(
                self.disabled.unwrap_or_default(),
                self.directory_disabled.unwrap_or_default(),
            ),
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every user the filter keeps, counted row by row.
fn count_all(conn: &mut DbConnection, condition: Option<&str>) -> QueryResult<i64> {
    let filter = condition.map(|c| format!(" WHERE {c}")).unwrap_or_default();
    sql::<BigInt>(&format!("SELECT count(*) FROM users{filter}")).get_result(conn)
}

/// Up to `cap + 1` matches counted and, when that is all of them, the page of them in list
/// order: one statement on PostgreSQL, where each costs a trigram index scan; SQLite counts
/// first and reads the page only if the count is within the cap (its statements are cheap,
/// and it would sort the capped matches even when the page is not wanted).
fn sorted_matches(
    conn: &mut DbConnection,
    m: &Matching,
    page: &Page,
    cap: i64,
) -> QueryResult<(i64, Vec<ListRow>)> {
    let needle = m
        .fts_phrase
        .clone()
        .or_else(|| m.like.clone())
        .unwrap_or_default();
    let ctes = capped_matches(m, conn.backend());
    if let DbConnection::Sqlite(c) = conn {
        let counted = diesel::sql_query(format!("WITH {ctes} SELECT count(*) AS n FROM capped"))
            .bind::<Text, _>(needle.clone())
            .bind::<BigInt, _>(cap + 1)
            .get_result::<Count>(c)?
            .n;
        if counted > cap {
            return Ok((counted, Vec::new()));
        }
    }
    let dir = page.direction();
    let (keyset, key) = keyset_condition(page.at);
    let text = placeholders(
        &format!(
            "WITH {ctes} \
             SELECT (SELECT count(*) FROM capped) AS total, page.* FROM (SELECT 1 AS one) AS one \
             LEFT JOIN (SELECT {LIST_COLUMNS}, users.username_key AS sort_key {LIST_FROM} \
             WHERE users.id IN (SELECT id FROM capped) AND (SELECT count(*) FROM capped) <= ?{keyset} \
             ORDER BY users.username_key || '' {dir}, users.domain {dir} LIMIT ? OFFSET ?) AS page \
             ON true ORDER BY page.sort_key {dir}, page.domain {dir}"
        ),
        conn.backend(),
    );
    let rows: Vec<ListRow> = with_backend!(conn, |c| {
        let mut q = diesel::sql_query(text.clone())
            .into_boxed()
            .bind::<Text, _>(needle.clone())
            .bind::<BigInt, _>(cap + 1)
            .bind::<BigInt, _>(cap);
        if let Some((name, domain)) = key.clone() {
            q = q.bind::<Text, _>(name).bind::<Text, _>(domain);
        }
        q.bind::<BigInt, _>(page.limit + 1)
            .bind::<BigInt, _>(page.offset)
            .load(c)?
    });
    let total = rows.first().map_or(0, |r| r.total);
    Ok((total, rows.into_iter().filter(|r| r.id.is_some()).collect()))
}

/// The CTE `capped`: the ids of at most `?` (bound second) users matching `?` (bound
/// first). PostgreSQL collects them in a CTE of its own, planned for reading every match
/// but read only as far as the cap: with the LIMIT beside the LIKE, it guesses from its
/// (poor) trigram statistics that a sequential scan finds 1,001 rows sooner, and reads half
/// the table for a search with 2,000 matches. SQLite would compute such a CTE whole.
fn capped_matches(m: &Matching, backend: Backend) -> String {
    let and = m
        .condition
        .as_deref()
        .map(|c| format!(" AND {c}"))
        .unwrap_or_default();
    match (&m.fts_phrase, backend) {
        (Some(_), _) if m.condition.is_none() => {
            "capped AS MATERIALIZED (SELECT rowid AS id FROM users_search \
             WHERE users_search MATCH ? LIMIT ?)"
                .to_owned()
        }
        (Some(_), _) => format!(
            "capped AS MATERIALIZED (SELECT users.id FROM users WHERE users.id IN \
             (SELECT rowid FROM users_search WHERE users_search MATCH ?){and} LIMIT ?)"
        ),
        (None, Backend::Sqlite) => format!(
            "capped AS MATERIALIZED (SELECT users.id FROM users \
             WHERE users.search_text LIKE ? ESCAPE '\\'{and} LIMIT ?)"
        ),
        (None, Backend::Postgres) => format!(
            "found AS MATERIALIZED (SELECT users.id FROM users \
             WHERE users.search_text LIKE ? ESCAPE '\\'{and}), \
             capped AS MATERIALIZED (SELECT id FROM found LIMIT ?)"
        ),
    }
}

/// The page read along the user-name index from its start, testing the search (if any) and
/// the filter on each row.
fn walk(conn: &mut DbConnection, m: &Matching, page: &Page) -> QueryResult<Vec<ListRow>> {
    let dir = page.direction();
    let mut conditions = Vec::new();
    if m.like.is_some() {
        conditions.push("users.search_text LIKE ? ESCAPE '\\'".to_owned());
    }
    conditions.extend(m.condition.clone());
    let (keyset, key) = keyset_condition(page.at);
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" AND {}", conditions.join(" AND "))
    };
    let text = format!(
        "SELECT CAST(0 AS BIGINT) AS total, {LIST_COLUMNS} {LIST_FROM} WHERE 1 = 1{filter}{keyset} \
         ORDER BY users.username_key {dir}, users.domain {dir} LIMIT ? OFFSET ?"
    );
    let text = placeholders(&text, conn.backend());
    let rows = with_backend!(conn, |c| {
        let mut q = diesel::sql_query(text.clone()).into_boxed();
        if let Some(like) = m.like.clone() {
            q = q.bind::<Text, _>(like);
        }
        if let Some((name, domain)) = key.clone() {
            q = q.bind::<Text, _>(name).bind::<Text, _>(domain);
        }
        q.bind::<BigInt, _>(page.limit + 1)
            .bind::<BigInt, _>(page.offset)
            .load(c)?
    });
    Ok(rows)
}

/// The statement with PostgreSQL's numbered placeholders for `?` (the statements here are
/// all ours: every value, the needle too, is bound).
fn placeholders(sql: &str, backend: Backend) -> String {
    if backend == Backend::Sqlite {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}

/// ` AND (key) > (?, ?)` (or `<`) for a page after (before) a row, and the key to bind.
fn keyset_condition(at: &Keyset<(String, String)>) -> (&'static str, Option<(String, String)>) {
    match at {
        Keyset::First => ("", None),
        Keyset::After(key, _) => (
            " AND (users.username_key, users.domain) > (?, ?)",
            Some(key.clone()),
        ),
        Keyset::Before(key, _) => (
            " AND (users.username_key, users.domain) < (?, ?)",
            Some(key.clone()),
        ),
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

/// Adds users with an id above `after_id` (just inserted) to SQLite's search index (one
/// statement for a whole batch; see the migration that dropped the insert trigger), or
/// merges PostgreSQL's pending trigram entries (`merge_pending_search`).
pub fn index_search(conn: &mut DbConnection, after_id: i64) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::sql_query(
                "INSERT INTO users_search(rowid, search_text) SELECT id, search_text FROM users WHERE id > ?",
            )
            .bind::<BigInt, _>(after_id)
            .execute(c)?;
        }
        DbConnection::Pg(c) => merge_pending_search(c)?,
    }
    Ok(())
}

/// Moves the trigram entries that writes left in the GIN index's pending list (kept large
/// for bulk inserts, migration `bulk_sync`) into the index proper. Every search reads the
/// whole pending list: 100,000 new users left in it made a one-match search take 26 ms
/// instead of 1.4 until autovacuum merged it, and merging each sync batch as it is written
/// costs less than one merge at the end (`cargo bench --bench sync`).
pub fn merge_pending_search(c: &mut diesel::PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT gin_clean_pending_list('users_search')").execute(c)?;
    Ok(())
}
