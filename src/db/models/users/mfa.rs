//! The MFA columns of a user: the sealed TOTP secret, the last accepted time step (replay
//! guard), enrolment, the admin's "MFA required" flag, and resetting all of it (with the
//! recovery codes and the secret).

use diesel::prelude::*;

use crate::db::ids::UserId;
use crate::db::schema::users;
use crate::db::{DbConnection, models};

/// The user's TOTP secret (sealed, in `secrets`) while enrolling or enrolled.
pub fn totp_secret_id(conn: &mut DbConnection, id: UserId) -> QueryResult<Option<i64>> {
    users::table
        .find(id)
        .select(users::totp_secret_id)
        .first(conn)
}

pub fn set_totp_secret(
    conn: &mut DbConnection,
    id: UserId,
    secret_id: Option<i64>,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::totp_secret_id.eq(secret_id))
        .execute(conn)?;
    Ok(())
}

/// Accepts a TOTP time step once: compare-and-set on the last accepted step, so the same
/// code in two browsers at the same moment works for one of them.
pub fn accept_totp_step(conn: &mut DbConnection, id: UserId, step: i64) -> QueryResult<bool> {
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

pub fn mark_mfa_enrolled(conn: &mut DbConnection, id: UserId) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::mfa_enrolled_at.eq(crate::db::now()))
        .execute(conn)?;
    Ok(())
}

pub fn set_mfa_required(conn: &mut DbConnection, id: UserId, required: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::mfa_required.eq(required))
        .execute(conn)
}

/// Forgets a user's TOTP enrolment: secret, last step, recovery codes. The next sign-in
/// enrols again (when MFA is required). Returns the secret's id for deletion.
pub fn reset_mfa(conn: &mut DbConnection, id: UserId) -> QueryResult<Option<i64>> {
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
