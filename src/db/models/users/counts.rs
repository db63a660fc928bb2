//! User totals: every user, a profile's, Roster's own. PostgreSQL reads them from
//! `user_counts`, which its triggers keep (see the migration `user_counts`: its count(*)
//! reads every row); SQLite counts, which costs it little.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::schema::users;

/// The users of one source (`Some(None)`: created in Roster; `Some(Some(p))`: profile
/// `p`'s), or of all (`None`).
pub fn total(conn: &mut DbConnection, source: Option<Option<ProfileId>>) -> QueryResult<i64> {
    match conn {
        DbConnection::Pg(c) => {
            let filter = match source {
                None => String::new(),
                Some(p) => format!(" WHERE profile_id = {}", p.map_or(0, |p| p.0)),
            };
            let row: Total = diesel::sql_query(format!(
                "SELECT CAST(sum(n) AS BIGINT) AS n FROM user_counts{filter}"
            ))
            .get_result(c)?;
            Ok(row.n.unwrap_or(0))
        }
        DbConnection::Sqlite(c) => match source {
            None => users::table.count().get_result(c),
            Some(None) => users::table
                .filter(users::profile_id.is_null())
                .count()
                .get_result(c),
            Some(Some(p)) => users::table
                .filter(users::profile_id.eq(p))
                .count()
                .get_result(c),
        },
    }
}

/// How many users each profile holds (profiles without users may be missing).
pub fn per_profile(conn: &mut DbConnection) -> QueryResult<HashMap<ProfileId, i64>> {
    let rows: Vec<(Option<ProfileId>, i64)> = match conn {
        DbConnection::Pg(c) => diesel::sql_query(
            "SELECT profile_id AS p, n FROM user_counts WHERE profile_id <> 0 AND n > 0",
        )
        .load::<ProfileTotal>(c)?
        .into_iter()
        .map(|r| (Some(ProfileId(r.p)), r.n))
        .collect(),
        DbConnection::Sqlite(c) => users::table
            .filter(users::profile_id.is_not_null())
            .group_by(users::profile_id)
            .select((users::profile_id, diesel::dsl::count_star()))
            .load(c)?,
    };
    Ok(rows
        .into_iter()
        .filter_map(|(p, n)| Some((p?, n)))
        .collect())
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = Nullable<BigInt>)]
    n: Option<i64>,
}

#[derive(QueryableByName)]
struct ProfileTotal {
    #[diesel(sql_type = BigInt)]
    p: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}
