//! Sealed secrets (bind passwords, client secrets, private keys, TOTP seeds). Rows hold
//! only ciphertext and the id of the key that sealed it; `crate::secrets` seals and opens.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::secrets;
use crate::with_backend;

#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = secrets)]
pub struct SealedSecret {
    pub id: i64,
    pub purpose: String,
    pub key_id: String,
    pub sealed: String,
}

pub fn insert(
    conn: &mut DbConnection,
    purpose: &str,
    key_id: &str,
    sealed: &str,
) -> QueryResult<i64> {
    let now = crate::db::now();
    with_backend!(conn, |c| diesel::insert_into(secrets::table)
        .values((
            secrets::purpose.eq(purpose),
            secrets::key_id.eq(key_id),
            secrets::sealed.eq(sealed),
            secrets::created_at.eq(now),
            secrets::updated_at.eq(now),
        ))
        .returning(secrets::id)
        .get_result(c))
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<SealedSecret>> {
    secrets::table
        .find(id)
        .select(SealedSecret::as_select())
        .first(conn)
        .optional()
}

/// The oldest secret stored for `purpose` (for Roster's own keys, one per database).
pub fn first_for(conn: &mut DbConnection, purpose: &str) -> QueryResult<Option<SealedSecret>> {
    secrets::table
        .filter(secrets::purpose.eq(purpose))
        .order(secrets::id)
        .select(SealedSecret::as_select())
        .first(conn)
        .optional()
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<SealedSecret>> {
    secrets::table
        .order(secrets::id)
        .select(SealedSecret::as_select())
        .load(conn)
}

pub fn update(conn: &mut DbConnection, id: i64, key_id: &str, sealed: &str) -> QueryResult<usize> {
    diesel::update(secrets::table.find(id))
        .set((
            secrets::key_id.eq(key_id),
            secrets::sealed.eq(sealed),
            secrets::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)
}

pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(secrets::table.find(id)).execute(conn)
}
