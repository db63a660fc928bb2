//! Which master key the database's secrets are sealed with (by id, never the key).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::master_keys;

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = master_keys)]
pub struct MasterKeyRow {
    pub key_id: String,
    pub verifier: String,
}

pub fn active(conn: &mut DbConnection) -> QueryResult<Option<MasterKeyRow>> {
    master_keys::table
        .filter(master_keys::active.eq(true))
        .select(MasterKeyRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_active(conn: &mut DbConnection, key_id: &str, verifier: &str) -> QueryResult<()> {
    diesel::insert_into(master_keys::table)
        .values((
            master_keys::key_id.eq(key_id),
            master_keys::verifier.eq(verifier),
            master_keys::active.eq(true),
            master_keys::created_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(drop)
}

/// Makes `key_id` the only active key (after every secret was re-sealed with it).
pub fn switch_active(conn: &mut DbConnection, key_id: &str, verifier: &str) -> QueryResult<()> {
    diesel::update(master_keys::table)
        .set(master_keys::active.eq(false))
        .execute(conn)?;
    insert_active(conn, key_id, verifier)
}
