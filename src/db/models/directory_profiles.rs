//! Directory profiles: one row per configured directory. Type-specific settings are JSON
//! (secrets only by reference to `secrets`); the kind never changes after creation.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::schema::{dependent_configurations, directory_profiles, schedules, users};
use crate::with_backend;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileKind {
    EntraId,
    GoogleWorkspace,
    ActiveDirectory,
    GenericLdap,
    ApplicationIntegration,
    IceWarp,
}

impl ProfileKind {
    pub const ALL: [ProfileKind; 6] = [
        ProfileKind::EntraId,
        ProfileKind::GoogleWorkspace,
        ProfileKind::ActiveDirectory,
        ProfileKind::GenericLdap,
        ProfileKind::ApplicationIntegration,
        ProfileKind::IceWarp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProfileKind::EntraId => "entra_id",
            ProfileKind::GoogleWorkspace => "google_workspace",
            ProfileKind::ActiveDirectory => "active_directory",
            ProfileKind::GenericLdap => "generic_ldap",
            ProfileKind::ApplicationIntegration => "application_integration",
            ProfileKind::IceWarp => "icewarp",
        }
    }

    /// The names FEATURES.md uses, shown in the type chooser.
    pub fn label(self) -> &'static str {
        match self {
            ProfileKind::EntraId => "Microsoft Entra ID",
            ProfileKind::GoogleWorkspace => "Google Workspace",
            ProfileKind::ActiveDirectory => "Active Directory",
            ProfileKind::GenericLdap => "Generic LDAP",
            ProfileKind::ApplicationIntegration => "Application Integration",
            ProfileKind::IceWarp => "IceWarp Server",
        }
    }

    /// One line for the type chooser: what it connects to and how its users sign in.
    pub fn description(self) -> &'static str {
        match self {
            ProfileKind::EntraId => {
                "Microsoft 365 tenants through Microsoft Graph; users sign in with Microsoft."
            }
            ProfileKind::GoogleWorkspace => {
                "A Workspace domain through the Admin SDK; users sign in with Google."
            }
            ProfileKind::ActiveDirectory => {
                "Windows domain controllers over LDAP(S); users sign in with their domain password."
            }
            ProfileKind::GenericLdap => {
                "Any LDAP directory (OpenLDAP, 389 DS, …); users sign in with their directory password."
            }
            ProfileKind::ApplicationIntegration => {
                "A MailStore Application Integration endpoint over HTTP(S); it checks the passwords."
            }
            ProfileKind::IceWarp => {
                "An IceWarp server's domains, groups and mailing lists; it checks the passwords."
            }
        }
    }

    pub fn parse(s: &str) -> Option<ProfileKind> {
        ProfileKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kinds whose users type their password into Roster, which asks the directory
    /// (the other two send them to their OpenID provider).
    pub const CHECKING_PASSWORDS: [ProfileKind; 4] = [
        ProfileKind::ActiveDirectory,
        ProfileKind::GenericLdap,
        ProfileKind::ApplicationIntegration,
        ProfileKind::IceWarp,
    ];

    pub fn checks_passwords(self) -> bool {
        ProfileKind::CHECKING_PASSWORDS.contains(&self)
    }
}

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = directory_profiles)]
pub struct DirectoryProfile {
    pub id: ProfileId,
    pub name: String,
    pub kind: String,
    pub settings: String,
    pub delete_users: bool,
    pub delete_groups: bool,
    pub groups_to_sync: String,
    pub domain: String,
    pub use_local_part: bool,
    pub mfa_by_default: bool,
    pub default_privileges: String,
    pub delete_threshold_count: i32,
    pub delete_threshold_percent: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

impl DirectoryProfile {
    pub fn kind(&self) -> Option<ProfileKind> {
        ProfileKind::parse(&self.kind)
    }
}

/// Everything an admin sets on a profile except its kind (fixed at creation).
#[derive(AsChangeset, Insertable, Clone, Debug)]
#[diesel(table_name = directory_profiles)]
pub struct ProfileChanges {
    pub name: String,
    pub name_key: String,
    pub settings: String,
    pub delete_users: bool,
    pub delete_groups: bool,
    pub groups_to_sync: String,
    pub domain: String,
    pub use_local_part: bool,
    pub mfa_by_default: bool,
    pub default_privileges: String,
    pub delete_threshold_count: i32,
    pub delete_threshold_percent: i32,
}

/// Names are unique regardless of case.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

pub fn create(
    conn: &mut DbConnection,
    kind: ProfileKind,
    changes: &ProfileChanges,
) -> QueryResult<ProfileId> {
    let now = crate::db::now();
    with_backend!(conn, |c| diesel::insert_into(directory_profiles::table)
        .values((
            directory_profiles::kind.eq(kind.as_str()),
            changes,
            directory_profiles::created_at.eq(now),
            directory_profiles::updated_at.eq(now),
        ))
        .returning(directory_profiles::id)
        .get_result(c))
}

/// Updates everything but the kind.
pub fn update(
    conn: &mut DbConnection,
    id: ProfileId,
    changes: &ProfileChanges,
) -> QueryResult<usize> {
    diesel::update(directory_profiles::table.find(id))
        .set((changes, directory_profiles::updated_at.eq(crate::db::now())))
        .execute(conn)
}

pub fn find(conn: &mut DbConnection, id: ProfileId) -> QueryResult<Option<DirectoryProfile>> {
    directory_profiles::table
        .find(id)
        .select(DirectoryProfile::as_select())
        .first(conn)
        .optional()
}

/// Whether another profile already has this name (case-insensitive).
pub fn name_taken(
    conn: &mut DbConnection,
    name: &str,
    except_id: Option<ProfileId>,
) -> QueryResult<bool> {
    // Ids start at 1, so -1 excludes nothing.
    diesel::select(diesel::dsl::exists(
        directory_profiles::table
            .filter(directory_profiles::name_key.eq(name_key(name)))
            .filter(directory_profiles::id.ne(except_id.unwrap_or(ProfileId(-1)))),
    ))
    .get_result(conn)
}

/// The profiles list: the search matches the name as a case-insensitive substring OR the
/// id exactly; sorted by name.
pub fn list(
    conn: &mut DbConnection,
    search: &str,
    descending: bool,
) -> QueryResult<Vec<DirectoryProfile>> {
    let needle = search.trim().to_lowercase();
    let mut q = directory_profiles::table.into_boxed();
    if !needle.is_empty() {
        let pattern = format!(
            "%{}%",
            needle
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let by_name = directory_profiles::name_key.like(pattern).escape('\\');
        q = match needle.parse::<i64>() {
            Ok(id) => q.filter(by_name.or(directory_profiles::id.eq(id))),
            Err(_) => q.filter(by_name),
        };
    }
    q = if descending {
        q.order((
            directory_profiles::name_key.desc(),
            directory_profiles::id.desc(),
        ))
    } else {
        q.order((
            directory_profiles::name_key.asc(),
            directory_profiles::id.asc(),
        ))
    };
    q.select(DirectoryProfile::as_select()).load(conn)
}

/// Every profile of these kinds, oldest first (the sign-in page's providers).
pub fn of_kinds(
    conn: &mut DbConnection,
    kinds: &[ProfileKind],
) -> QueryResult<Vec<DirectoryProfile>> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    directory_profiles::table
        .filter(directory_profiles::kind.eq_any(kinds))
        .order(directory_profiles::id.asc())
        .select(DirectoryProfile::as_select())
        .load(conn)
}

/// Whether a profile whose users sign in with a password here puts its users in this domain.
pub fn password_domain_exists(conn: &mut DbConnection, domain: &str) -> QueryResult<bool> {
    let kinds = ProfileKind::CHECKING_PASSWORDS.map(ProfileKind::as_str);
    diesel::select(diesel::dsl::exists(
        directory_profiles::table
            .filter(directory_profiles::kind.eq_any(kinds))
            .filter(directory_profiles::domain.eq(domain.to_lowercase())),
    ))
    .get_result(conn)
}

/// A profile by its name (case-insensitive) or its id, as the command line names it.
pub fn find_by_name_or_id(
    conn: &mut DbConnection,
    name_or_id: &str,
) -> QueryResult<Option<DirectoryProfile>> {
    let by_name = directory_profiles::table
        .filter(directory_profiles::name_key.eq(name_key(name_or_id)))
        .select(DirectoryProfile::as_select())
        .first(conn)
        .optional()?;
    match (by_name, name_or_id.trim().parse::<ProfileId>()) {
        (Some(p), _) => Ok(Some(p)),
        (None, Ok(id)) => find(conn, id),
        (None, Err(_)) => Ok(None),
    }
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    directory_profiles::table.count().get_result(conn)
}

pub fn name(conn: &mut DbConnection, id: ProfileId) -> QueryResult<Option<String>> {
    directory_profiles::table
        .find(id)
        .select(directory_profiles::name)
        .first(conn)
        .optional()
}

/// What still uses a profile; a profile in use cannot be deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProfileUsers {
    pub schedules: i64,
    /// Names of the dependent archiving / folder-synchronisation configurations.
    pub configurations: Vec<String>,
    /// Users synchronised from the profile: deleted with it.
    pub synchronised_users: i64,
}

pub fn usage(conn: &mut DbConnection, id: ProfileId) -> QueryResult<ProfileUsers> {
    Ok(ProfileUsers {
        schedules: schedules::table
            .filter(schedules::profile_id.eq(id))
            .count()
            .get_result(conn)?,
        configurations: dependent_configurations::table
            .filter(dependent_configurations::profile_id.eq(id))
            .order(dependent_configurations::name)
            .select(dependent_configurations::name)
            .load(conn)?,
        synchronised_users: users::table
            .filter(users::profile_id.eq(id))
            .count()
            .get_result(conn)?,
    })
}

#[derive(Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted {
        users_deleted: i64,
    },
    /// Still used: nothing was deleted.
    InUse(ProfileUsers),
    NotFound,
}

/// Deletes a profile with its users, groups and run history, in one transaction; refused
/// while schedules or dependent configurations use it.
pub fn delete(conn: &mut DbConnection, id: ProfileId) -> QueryResult<DeleteOutcome> {
    conn.transaction(|c| {
        if find(c, id)?.is_none() {
            return Ok(DeleteOutcome::NotFound);
        }
        let usage = usage(c, id)?;
        if usage.schedules > 0 || !usage.configurations.is_empty() {
            return Ok(DeleteOutcome::InUse(usage));
        }
        // Cascades (users → sessions, e-mails, privileges, memberships; groups; runs)
        // are declared in the schema; users are removed explicitly so the count is exact.
        let users_deleted =
            diesel::delete(users::table.filter(users::profile_id.eq(id))).execute(c)?;
        diesel::delete(directory_profiles::table.find(id)).execute(c)?;
        Ok(DeleteOutcome::Deleted {
            users_deleted: users_deleted as i64,
        })
    })
}
