//! The domains of each OpenID profile's users, so that `user@domain` on the sign-in form
//! can go to the right provider without looking the user up.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::schema::sign_in_domains;
use crate::with_backend;

/// Makes `domains` (lower-case) the profile's set.
pub fn replace(conn: &mut DbConnection, profile: ProfileId, domains: &[String]) -> QueryResult<()> {
    conn.transaction(|c| {
        diesel::delete(sign_in_domains::table.filter(sign_in_domains::profile_id.eq(profile)))
            .execute(c)?;
        for chunk in domains.chunks(500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|d| {
                    (
                        sign_in_domains::domain.eq(d.as_str()),
                        sign_in_domains::profile_id.eq(profile),
                    )
                })
                .collect();
            with_backend!(c, |b| diesel::insert_into(sign_in_domains::table)
                .values(&rows)
                .execute(b))?;
        }
        Ok(())
    })
}

/// The profiles whose users have this domain, oldest profile first.
pub fn profiles_for(conn: &mut DbConnection, domain: &str) -> QueryResult<Vec<ProfileId>> {
    sign_in_domains::table
        .filter(sign_in_domains::domain.eq(domain.to_lowercase()))
        .select(sign_in_domains::profile_id)
        .order(sign_in_domains::profile_id.asc())
        .load(conn)
}
