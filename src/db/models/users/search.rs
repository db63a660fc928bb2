//! The admin users list: a capped, case-insensitive search (`search`) and the SQLite
//! full-text index it reads (`index_search`, called by every insert). Separate from the row
//! because the query planning here is its own concern and grows with the backends.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use super::{Standing, parse_emails};
use crate::db::ids::{ProfileId, UserId};
use crate::db::schema::{directory_profiles, users};
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
    search_filtered(
        conn,
        query,
        &UserFilter::default(),
        offset,
        limit,
        count_cap,
    )
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
    offset: i64,
    limit: i64,
    count_cap: i64,
) -> QueryResult<UserPage> {
    let condition = filter.condition();
    let needle = super::fold(query.trim());
    let like = format!("%{}%", escape_like(&needle));
    let phrase = format!("\"{}\"", needle.replace('"', "\"\""));
    let fts = conn.backend() == Backend::Sqlite && needle.chars().count() >= 3;

    let stop_at = if needle.is_empty() {
        i64::MAX
    } else {
        count_cap + 1
    };
    let mut count = |stop_at: i64| {
        count_matches(
            conn,
            &needle,
            condition.as_deref(),
            fts,
            &phrase,
            &like,
            stop_at,
        )
    };
    let counted = count(stop_at)?;
    let capped = !needle.is_empty() && counted > count_cap;
    let deep_page = offset + limit > 2 * limit;
    let sort_matches = !needle.is_empty()
        && (!capped || (deep_page && count(10 * count_cap + 1)? <= 10 * count_cap));
    let total = if capped { count_cap } else { counted };

    type Row = (
        UserId,
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
        if let Some(condition) = &condition {
            q = q.filter(sql::<Bool>(condition));
        }
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
    condition: Option<&str>,
    fts: bool,
    phrase: &str,
    like: &str,
    stop_at: i64,
) -> QueryResult<i64> {
    let and = condition.map(|c| format!(" AND {c}")).unwrap_or_default();
    if needle.is_empty() {
        let filter = condition.map(|c| format!(" WHERE {c}")).unwrap_or_default();
        sql::<BigInt>(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM users{filter} LIMIT "
        ))
        .bind::<BigInt, _>(stop_at)
        .sql(") AS capped")
        .get_result(conn)
    } else if fts && condition.is_none() {
        sql::<BigInt>("SELECT count(*) FROM (SELECT 1 FROM users_search WHERE users_search MATCH ")
            .bind::<Text, _>(phrase)
            .sql(" LIMIT ")
            .bind::<BigInt, _>(stop_at)
            .sql(") AS capped")
            .get_result(conn)
    } else if fts {
        sql::<BigInt>("SELECT count(*) FROM (SELECT 1 FROM users WHERE users.id IN (SELECT rowid FROM users_search WHERE users_search MATCH ")
            .bind::<Text, _>(phrase)
            .sql(&format!("){and} LIMIT "))
            .bind::<BigInt, _>(stop_at)
            .sql(") AS capped")
            .get_result(conn)
    } else {
        sql::<BigInt>("SELECT count(*) FROM (SELECT 1 FROM users WHERE search_text LIKE ")
            .bind::<Text, _>(like)
            .sql(&format!(" ESCAPE '\\'{and} LIMIT "))
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
