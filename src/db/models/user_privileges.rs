//! What a user may do: the `users.privileges` column, the privileges' names joined by commas
//! (as a profile's default privileges are). A column rather than a table of rows: a sync
//! creating 100,000 users spent a second of its PostgreSQL time on the rows' foreign keys.
//! Admins are users with the `admin` privilege.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::UserId;
use crate::db::schema::users;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    LogOn,
    ReadOwnArchive,
    ArchiveEmail,
    ChangeOwnPassword,
    Admin,
}

impl Privilege {
    pub const ALL: [Privilege; 5] = [
        Privilege::LogOn,
        Privilege::ReadOwnArchive,
        Privilege::ArchiveEmail,
        Privilege::ChangeOwnPassword,
        Privilege::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::LogOn => "log_on",
            Privilege::ReadOwnArchive => "read_own_archive",
            Privilege::ArchiveEmail => "archive_email",
            Privilege::ChangeOwnPassword => "change_own_password",
            Privilege::Admin => "admin",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Privilege::LogOn => "Log on",
            Privilege::ReadOwnArchive => "Read own archive",
            Privilege::ArchiveEmail => "Archive e-mail",
            Privilege::ChangeOwnPassword => "Change own password",
            Privilege::Admin => "Administrator",
        }
    }

    pub fn parse(s: &str) -> Option<Privilege> {
        Privilege::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The column's form: each privilege once, in `ALL`'s order.
    pub fn join(privileges: &[Privilege]) -> String {
        Privilege::ALL
            .into_iter()
            .filter(|p| privileges.contains(p))
            .map(Privilege::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the column's form; unknown names are left out.
    pub fn split(column: &str) -> Vec<Privilege> {
        let names: Vec<&str> = column.split(',').collect();
        Privilege::ALL
            .into_iter()
            .filter(|p| names.contains(&p.as_str()))
            .collect()
    }
}

pub fn replace(
    conn: &mut DbConnection,
    user_id: UserId,
    privileges: &[Privilege],
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::privileges.eq(Privilege::join(privileges)))
        .execute(conn)?;
    Ok(())
}

pub fn any_admin(conn: &mut DbConnection) -> QueryResult<bool> {
    // LIKE narrows the rows (no other name contains "admin"); `split` decides.
    let candidates: Vec<String> = users::table
        .filter(users::privileges.like("%admin%"))
        .select(users::privileges)
        .load(conn)?;
    Ok(candidates
        .iter()
        .any(|c| Privilege::split(c).contains(&Privilege::Admin)))
}
