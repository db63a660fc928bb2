//! One synchronisation per profile at a time, across instances: a lease row with an expiry,
//! so a killed process cannot block its profile for longer than the lease.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::{ProfileId, RunId};
use crate::db::schema::sync_leases;
use crate::with_backend;

/// Takes the profile's lease for `owner` (unique per attempt) if it is free or expired;
/// false if someone holds it.
pub fn acquire(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    owner: &str,
    seconds: i64,
) -> QueryResult<bool> {
    let now = crate::db::now();
    // An expired lease is removed first; then of two instances racing to insert, the
    // primary key lets exactly one win (the other inserts nothing).
    diesel::delete(
        sync_leases::table
            .filter(sync_leases::profile_id.eq(profile_id))
            .filter(sync_leases::expires_at.lt(now)),
    )
    .execute(conn)?;
    let taken = with_backend!(conn, |c| diesel::insert_into(sync_leases::table)
        .values((
            sync_leases::profile_id.eq(profile_id),
            sync_leases::run_id.eq(0),
            sync_leases::owner.eq(owner),
            sync_leases::expires_at.eq(now + seconds),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(taken == 1)
}

/// Extends `owner`'s lease; false when it is not theirs any more (it ran out and another
/// instance took the profile).
pub fn renew(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    owner: &str,
    seconds: i64,
) -> QueryResult<bool> {
    let renewed = diesel::update(
        sync_leases::table
            .filter(sync_leases::profile_id.eq(profile_id))
            .filter(sync_leases::owner.eq(owner)),
    )
    .set(sync_leases::expires_at.eq(crate::db::now() + seconds))
    .execute(conn)?;
    Ok(renewed == 1)
}

/// Records which run holds the lease (the run row is made once the lease is won).
pub fn attach(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    owner: &str,
    run_id: RunId,
) -> QueryResult<()> {
    diesel::update(
        sync_leases::table
            .filter(sync_leases::profile_id.eq(profile_id))
            .filter(sync_leases::owner.eq(owner)),
    )
    .set(sync_leases::run_id.eq(run_id))
    .execute(conn)?;
    Ok(())
}

pub fn release(conn: &mut DbConnection, profile_id: ProfileId, owner: &str) -> QueryResult<()> {
    diesel::delete(
        sync_leases::table
            .filter(sync_leases::profile_id.eq(profile_id))
            .filter(sync_leases::owner.eq(owner)),
    )
    .execute(conn)?;
    Ok(())
}
