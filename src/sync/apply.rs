//! Applies a plan in one transaction, in batches: a failure anywhere leaves the database as
//! it was. New users get the profile's default privileges and MFA-by-default; existing
//! users keep theirs (a rename is an update of the same row).

use diesel::prelude::*;

use super::SyncError;
use super::plan::{Action, Plan};
use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::models::user_privileges::Privilege;
use crate::db::models::users::{self, NewDirectoryUser, NewUsersOf};
use crate::db::models::{
    change_cursors, directory_groups, sign_in_domains, sync_leases, sync_memberships,
};
use crate::db::schema::sessions;

/// A run that writes at least this many users and groups, and a tenth of the profile's
/// users or more, changes the tables enough to plan them afresh (`db::refresh_statistics`);
/// autovacuum takes care of smaller changes.
const BULK_ROWS: usize = 1_000;

pub struct ApplyOptions<'a> {
    pub profile_id: ProfileId,
    /// The lease the run holds, and for how long a renewal extends it.
    pub lease: (&'a str, i64),
    pub domain: &'a str,
    pub mfa_by_default: bool,
    pub default_privileges: &'a [Privilege],
}

pub fn apply(
    conn: &mut DbConnection,
    options: &ApplyOptions,
    plan: &Plan,
) -> Result<(), SyncError> {
    // Not diesel's `transaction`: when SQLite has already rolled back by itself (a full
    // disk), its failed ROLLBACK ("no transaction is active") would hide the real error.
    conn.write_transaction(|c| {
        // In the transaction that writes: an instance whose lease ran out while it read
        // (renewals failing for longer than the lease) must not apply beside the instance
        // that took the profile over. Holding it, the lease is extended until the commit
        // (PostgreSQL: the row stays locked, so nobody takes it meanwhile).
        let (owner, seconds) = options.lease;
        if !sync_leases::renew(c, options.profile_id, owner, seconds)? {
            return Err(SyncError::LeaseLost);
        }
        Ok(apply_in(c, options, plan)?)
    })
}

fn apply_in(c: &mut DbConnection, options: &ApplyOptions, plan: &Plan) -> QueryResult<()> {
    let profile = options.profile_id;
    let mut clock = std::time::Instant::now();
    let mut step = |what: &str| {
        tracing::debug!(
            step = what,
            elapsed_ms = clock.elapsed().as_millis() as u64,
            "apply step"
        );
        clock = std::time::Instant::now();
    };
    let of = |action: Action| plan.users.iter().filter(move |u| u.action == action);

    // Deletes first, so their names are free for creates and renames.
    let deleted: Vec<i64> = of(Action::Delete).filter_map(|u| u.id).collect();
    users::delete_directory_users(c, profile, &deleted)?;

    // Renames may swap names: park every renamed user's key, then set the new ones.
    for user in of(Action::Update).filter(|u| u.previous_username.is_some()) {
        if let Some(id) = user.id {
            users::park_username(c, id)?;
        }
    }
    let mut disabled_now: Vec<i64> = Vec::new();
    for user in of(Action::Update) {
        let Some(id) = user.id else { continue };
        users::update_directory_user(
            c,
            id,
            &NewDirectoryUser {
                external_id: &user.external_id,
                username: &user.username,
                full_name: &user.full_name,
                emails: &user.emails,
                disabled: user.disabled,
                sign_in_name: &user.sign_in_name,
                directory_name: &user.directory_name,
            },
        )?;
        if user.disabled {
            disabled_now.push(id);
        }
    }

    let created = of(Action::Create).map(|u| NewDirectoryUser {
        external_id: &u.external_id,
        username: &u.username,
        full_name: &u.full_name,
        emails: &u.emails,
        disabled: u.disabled,
        sign_in_name: &u.sign_in_name,
        directory_name: &u.directory_name,
    });
    step("deletes and updates");
    let new_users = NewUsersOf {
        profile_id: profile,
        domain: options.domain,
        mfa_required: options.mfa_by_default,
        privileges: options.default_privileges,
    };
    users::insert_directory_users(c, &new_users, created)?;
    step("users inserted");
    // A user disabled in the directory is signed out at once.
    for chunk in disabled_now.chunks(500) {
        diesel::delete(sessions::table.filter(sessions::user_id.eq_any(chunk))).execute(c)?;
    }

    // Groups.
    let deleted_groups: Vec<i64> = plan
        .groups
        .iter()
        .filter(|g| g.action == Action::Delete)
        .filter_map(|g| g.id)
        .collect();
    directory_groups::delete_groups(c, profile, &deleted_groups)?;
    for group in plan.groups.iter().filter(|g| g.action == Action::Update) {
        if let Some(id) = group.id {
            directory_groups::update_group(c, id, &group.name, &group.description)?;
        }
    }
    let new_groups: Vec<(&str, &str, &str)> = plan
        .groups
        .iter()
        .filter(|g| g.action == Action::Create)
        .map(|g| {
            (
                g.external_id.as_str(),
                g.name.as_str(),
                g.description.as_str(),
            )
        })
        .collect();
    directory_groups::insert_groups(c, profile, &new_groups)?;
    step("groups");
    // Before the memberships: their checks join the users just written.
    let written = plan.users.len() + plan.groups.len();
    if written >= BULK_ROWS && written >= plan.existing_users / 10 {
        crate::db::refresh_statistics(c)?;
        step("statistics");
    }

    // Joined with the users and groups in the database: the ones a run deleted, or never
    // created (left out), drop out there.
    sync_memberships::remove_memberships_by_external_id(c, profile, &plan.memberships_removed)?;
    sync_memberships::add_memberships_by_external_id(c, profile, &plan.memberships_added)?;
    step("memberships");
    if let Some(domains) = &plan.sign_in_domains {
        sign_in_domains::replace(c, profile, domains)?;
    }
    // With the changes it led to: a failed run leaves the old cursor, read again next time.
    if let Some(cursor) = &plan.next_cursor {
        change_cursors::save(c, cursor)?;
    }
    Ok(())
}
