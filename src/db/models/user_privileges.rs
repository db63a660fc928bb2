//! What a user may do. Admins are users with the `admin` privilege.

use diesel::ExecuteCopyFromDsl;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::user_privileges;
use crate::with_backend;

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
}

#[derive(Insertable)]
#[diesel(table_name = user_privileges, treat_none_as_default_value = false)]
struct NewPrivilege {
    user_id: i64,
    privilege: &'static str,
}

pub fn replace(conn: &mut DbConnection, user_id: i64, privileges: &[Privilege]) -> QueryResult<()> {
    diesel::delete(user_privileges::table.filter(user_privileges::user_id.eq(user_id)))
        .execute(conn)?;
    let mut rows: Vec<NewPrivilege> = Vec::new();
    for p in privileges {
        if !rows.iter().any(|r| r.privilege == p.as_str()) {
            rows.push(NewPrivilege {
                user_id,
                privilege: p.as_str(),
            });
        }
    }
    if !rows.is_empty() {
        with_backend!(conn, |c| diesel::insert_into(user_privileges::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

pub fn for_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<Privilege>> {
    let names: Vec<String> = user_privileges::table
        .filter(user_privileges::user_id.eq(user_id))
        .select(user_privileges::privilege)
        .load(conn)?;
    Ok(Privilege::ALL
        .into_iter()
        .filter(|p| names.iter().any(|n| n == p.as_str()))
        .collect())
}

pub fn any_admin(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        user_privileges::table.filter(user_privileges::privilege.eq(Privilege::Admin.as_str())),
    ))
    .get_result(conn)
}

/// Gives each of many new users the same privileges (batched).
pub fn grant_many(
    conn: &mut DbConnection,
    user_ids: &[i64],
    privileges: &[Privilege],
) -> QueryResult<()> {
    let rows: Vec<NewPrivilege> = user_ids
        .iter()
        .flat_map(|id| {
            privileges.iter().map(move |p| NewPrivilege {
                user_id: *id,
                privilege: p.as_str(),
            })
        })
        .collect();
    match conn {
        // COPY: a 100,000-user sync spent a second on multi-row INSERTs here.
        DbConnection::Pg(c) => {
            diesel::copy_from(user_privileges::table)
                .from_insertable(&rows)
                .execute(c)?;
        }
        DbConnection::Sqlite(c) => {
            for chunk in rows.chunks(15_000) {
                diesel::insert_into(user_privileges::table)
                    .values(chunk)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}
