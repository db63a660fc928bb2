//! A user's e-mail addresses, in the directory's order.

use diesel::ExecuteCopyFromDsl;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::user_emails;
use crate::with_backend;

#[derive(Insertable)]
#[diesel(table_name = user_emails, treat_none_as_default_value = false)]
struct NewEmail<'a> {
    user_id: i64,
    address: &'a str,
    position: i32,
}

pub fn replace(conn: &mut DbConnection, user_id: i64, addresses: &[String]) -> QueryResult<()> {
    diesel::delete(user_emails::table.filter(user_emails::user_id.eq(user_id))).execute(conn)?;
    let rows: Vec<NewEmail> = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| NewEmail {
            user_id,
            address: a.as_str(),
            position: i32::try_from(i).unwrap_or(i32::MAX),
        })
        .collect();
    if !rows.is_empty() {
        with_backend!(conn, |c| diesel::insert_into(user_emails::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

pub fn for_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<String>> {
    user_emails::table
        .filter(user_emails::user_id.eq(user_id))
        .order(user_emails::position)
        .select(user_emails::address)
        .load(conn)
}

/// Replaces the addresses of many users at once (batched deletes and inserts).
pub fn replace_many(conn: &mut DbConnection, lists: &[(i64, &[String])]) -> QueryResult<()> {
    for chunk in lists.chunks(5_000) {
        let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        diesel::delete(user_emails::table.filter(user_emails::user_id.eq_any(&ids)))
            .execute(conn)?;
        let rows: Vec<NewEmail> = chunk
            .iter()
            .flat_map(|(user_id, addresses)| {
                addresses.iter().enumerate().map(move |(i, a)| NewEmail {
                    user_id: *user_id,
                    address: a.as_str(),
                    position: i32::try_from(i).unwrap_or(i32::MAX),
                })
            })
            .collect();
        match &mut *conn {
            DbConnection::Pg(c) => {
                diesel::copy_from(user_emails::table)
                    .from_insertable(&rows)
                    .execute(c)?;
            }
            DbConnection::Sqlite(c) => {
                for rows in rows.chunks(10_000) {
                    diesel::insert_into(user_emails::table)
                        .values(rows)
                        .execute(c)?;
                }
            }
        }
    }
    Ok(())
}
