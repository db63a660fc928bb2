//! Directory connectors: one module per kind, each implementing the `Directory` trait, and
//! `Connector`, the one value every caller holds. Each connector owns its client, takes its
//! server or base URL from the profile (so tests point it at local servers) and keeps the
//! directory's own technical error text for the admin; explanations of a kind's errors
//! (Active Directory's sub-codes, TLS hints) live in its module too.
//!
//! This file holds what every kind shares; `ldap/` serves generic LDAP and Active Directory,
//! `entra/` Microsoft Entra ID, `google/` Google Workspace, `app_integration.rs`
//! MailStore's Application Integration, `icewarp/` IceWarp Server, `rest` what the HTTP
//! ones share. A new kind adds a variant to `Connector` and a branch to
//! `profiles::connector`. Callers build a
//! connector only through `profiles::connector` (stored profile or posted form).

pub mod app_integration;
pub mod chunked;
pub mod entra;
pub mod google;
pub mod icewarp;
pub mod ldap;
pub mod names;
pub mod rest;

use std::sync::Mutex;

pub use chunked::Chunked;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a snapshot has done so far, for the live run page. The connector counts; the sync
/// engine copies the figures into the run's row every second.
#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<&'static str>,
    users: AtomicU64,
    groups: AtomicU64,
}

impl Progress {
    pub fn set_phase(&self, phase: &'static str) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    pub fn user_read(&self) {
        self.users.fetch_add(1, Ordering::Relaxed);
    }

    pub fn group_read(&self) {
        self.groups.fetch_add(1, Ordering::Relaxed);
    }

    /// (phase, users read, groups read)
    pub fn now(&self) -> (&'static str, u64, u64) {
        let phase = self.phase.lock().map(|p| *p).unwrap_or("");
        (
            phase,
            self.users.load(Ordering::Relaxed),
            self.groups.load(Ordering::Relaxed),
        )
    }
}

/// The result of "Test connection": a real round trip, summarised for the dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionReport {
    /// Who Roster signed in as, as the directory knows it.
    pub bound_as: String,
    /// What else the round trip proved ("Base DN found").
    pub checked: &'static str,
    pub users_matched: usize,
    pub groups_matched: usize,
    /// What the counts are ("matching the filter").
    pub counted: &'static str,
    pub elapsed: Duration,
}

/// A group offered by the group picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// The directory's stable id for the group (DN for LDAP, as the picker stores names).
    pub id: String,
    pub name: String,
    pub description: String,
}

/// A user as the directory has it. The sync engine applies the profile's domain and the
/// "use only local part" rule to `username`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceUser {
    /// Stable across renames and moves (objectGUID, entryUUID, Graph id, …).
    pub external_id: String,
    pub username: String,
    pub full_name: String,
    /// The primary address first, no duplicates.
    pub emails: Vec<String>,
    pub disabled: bool,
    /// Another name the user signs in with: Active Directory's userPrincipalName.
    #[serde(default)]
    pub sign_in_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceGroup {
    pub external_id: String,
    pub name: String,
    pub description: String,
    /// External ids of the member users that are in the snapshot.
    pub members: Vec<String>,
}

/// The complete set of in-scope users and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Chunked: the plan moves them out one by one and the chunks are freed as it goes.
    pub users: Chunked<SourceUser>,
    pub groups: Vec<SourceGroup>,
    /// Entries left out for a reason the admin should see (e.g. no user name).
    pub warnings: Vec<String>,
    /// How the chosen groups narrowed the users ("N of M users are in the chosen groups").
    pub scope: Option<String>,
    /// Kinds whose users sign in at an OpenID provider: the domains of the users' sign-in
    /// names, so `user@domain` on the sign-in form goes to that provider.
    pub sign_in_domains: Option<Vec<String>>,
    /// Disabled users are listed so the ones already synchronised become disabled, but no
    /// new user is made of them.
    pub skip_new_disabled: bool,
}

impl Snapshot {
    /// A cloud directory's snapshot: every user read, narrowed to the chosen groups'
    /// members when groups were chosen (`in_chosen`: their indexes in `all_users`), with
    /// the domains of the users' names, by which sign-ins are sent to the provider.
    pub fn narrowed(
        all_users: Vec<SourceUser>,
        groups: Vec<SourceGroup>,
        warnings: Vec<String>,
        in_chosen: Option<std::collections::HashSet<usize>>,
        skip_new_disabled: bool,
    ) -> Snapshot {
        let total = all_users.len();
        let (users, scope) = match in_chosen {
            None => (Chunked::from(all_users), None),
            Some(in_chosen) => {
                let users: Chunked<SourceUser> = all_users
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| in_chosen.contains(i))
                    .map(|(_, u)| u)
                    .collect();
                let scope = format!(
                    "{} of {total} users are in the chosen groups; only they are synchronised",
                    users.len()
                );
                (users, Some(scope))
            }
        };
        let domains: std::collections::BTreeSet<String> = users
            .iter()
            .filter_map(|u| u.username.rsplit_once('@'))
            .map(|(_, domain)| domain.trim().to_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        Snapshot {
            users,
            groups,
            warnings,
            scope,
            sign_in_domains: Some(domains.into_iter().collect()),
            skip_new_disabled,
        }
    }
}

/// Where the last complete read of a directory that reports changes left off (Entra ID's
/// `@odata.deltaLink`s of users and groups). Opaque to all but the connector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeCursor {
    pub users: String,
    pub groups: String,
}

/// The answer to "what changed since this cursor".
#[derive(Debug)]
pub enum Changes {
    Since(Delta),
    /// Changes will not do; the run reads everything (the cursor expired, or so much
    /// changed that reading it piecemeal costs more). Why, for the log.
    ReadEverything(String),
}

/// What changed in a directory since a cursor.
#[derive(Debug, Default)]
pub struct Delta {
    /// Users added, changed or gone (`None`: deleted, or out of scope now), in the order
    /// the directory sent them: a later entry for the same id wins.
    pub users: Vec<(String, Option<SourceUser>)>,
    /// Groups added, changed, deleted, or with members added or removed (ids, each once).
    pub changed_groups: Vec<String>,
    /// As `Snapshot::skip_new_disabled`.
    pub skip_new_disabled: bool,
    pub warnings: Vec<String>,
    /// Where the next run starts.
    pub cursor: ChangeCursor,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.changed_groups.is_empty()
    }
}

/// Groups read again after a delta, instead of all of them.
#[derive(Debug, Default)]
pub struct GroupPatch {
    /// The changed groups and every group they are nested in, as they are now (`None`:
    /// deleted), members kept to the run's users.
    pub groups: Vec<(String, Option<SourceGroup>)>,
    /// Users new to Roster and the groups (ids) they are in, nesting included.
    pub newcomers: Vec<(String, Vec<String>)>,
    pub warnings: Vec<String>,
}

/// The user named `wanted`: exactly so (case-insensitively), or, for a bare name, the one
/// user whose address-like name has it as local part. Two such users are an error.
pub fn one_named<'a>(
    users: impl Iterator<Item = &'a SourceUser> + Clone,
    wanted: &str,
) -> Result<Option<&'a SourceUser>, DirectoryError> {
    let wanted = wanted.trim().to_lowercase();
    if let Some(exact) = users.clone().find(|u| u.username.to_lowercase() == wanted) {
        return Ok(Some(exact));
    }
    if wanted.contains('@') {
        return Ok(None);
    }
    let mut by_local_part =
        users.filter(|u| names::local_part(&u.username).is_ok_and(|l| l.to_lowercase() == wanted));
    match (by_local_part.next(), by_local_part.next()) {
        (Some(_), Some(_)) => Err(DirectoryError::Protocol {
            detail: format!("more than one user's name starts with `{wanted}@`"),
        }),
        (one, _) => Ok(one),
    }
}

/// What went wrong, in the directory's own words where it gave any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("the server name `{server}` is unknown: {detail}")]
    ServerUnknown { server: String, detail: String },
    #[error("cannot reach {server}: {detail}")]
    Unreachable { server: String, detail: String },
    #[error("TLS failure with {server}: {detail}")]
    Tls { server: String, detail: String },
    #[error("the directory refused the credentials: {detail}")]
    InvalidCredentials {
        detail: String,
        /// Active Directory's sub-code (`52e` bad password, `533` disabled, …).
        sub_code: Option<String>,
    },
    #[error("the base DN `{base_dn}` does not exist: {detail}")]
    BaseDnNotFound { base_dn: String, detail: String },
    #[error("the connection to the directory {server} was lost")]
    ConnectionLost { server: String },
    #[error("no answer from {server} within {} s{hint}", .timeout.as_secs())]
    Timeout {
        server: String,
        timeout: Duration,
        /// What may be wrong, for the admin (empty, or starting with "; ").
        hint: &'static str,
    },
    #[error("the directory answered with an error: {detail}")]
    Protocol { detail: String },
    #[error("the directory's answer is incomplete: {detail}")]
    Incomplete { detail: String },
    #[error("the settings are not usable: {0}")]
    Settings(String),
}

/// The directory's answer to a password (infrastructure failures are `DirectoryError`s,
/// and sign-in treats them as a refusal too: it fails closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    Accepted,
    /// Wrong password, disabled or expired account…: the reason goes to the audit log only.
    Refused {
        reason: String,
    },
}

/// What every directory kind can do.
#[allow(async_fn_in_trait)]
pub trait Directory {
    /// Signs in with the service credentials and checks the settings match something.
    async fn test_connection(&self) -> Result<ConnectionReport, DirectoryError>;

    /// The groups the directory offers (for the group picker), optionally only those whose
    /// name contains `search` (case-insensitive), sorted by name.
    async fn list_groups(&self, search: &str) -> Result<Vec<DirectoryGroup>, DirectoryError>;

    /// Every in-scope user and group, complete — or an error, never a partial list.
    /// Counts what it reads into `progress` as it goes.
    async fn snapshot(&self, progress: &Progress) -> Result<Snapshot, DirectoryError>;

    /// The one user with this user name (the profile's user name attribute), if any. Where
    /// names are addresses (Application Integration, IceWarp), a bare name matches the one
    /// user whose local part it is, as "use only the local part" maps them.
    async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError>;

    /// Checks a user's password at the directory, for the account synchronised last.
    async fn authenticate(
        &self,
        account: &Account<'_>,
        password: &secrecy::SecretString,
    ) -> Result<PasswordCheck, DirectoryError>;
}

/// A synchronised user as the directory knew them at the last synchronisation.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// The stable id (so renames and the local-part rule do not matter where the
    /// directory can find a user by it).
    pub external_id: &'a str,
    /// The name the directory sent, for directories that check passwords by name.
    pub name: &'a str,
}

/// How a kind's users prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// Roster checks the password at the directory (`Connector::authenticate`).
    Password,
    /// The user signs in at the directory's OpenID provider (Entra ID, Google Workspace).
    OpenIdConnect,
}

/// Every directory kind, as one value.
///
/// An enum rather than `Box<dyn Directory>`: the operations are `async fn`s, which a trait
/// object can only offer by boxing every future; the set of kinds is closed and known here;
/// and a new kind that lacks an operation fails to compile at the `match`, not at run time.
pub enum Connector {
    Ldap(ldap::LdapDirectory),
    Entra(entra::EntraDirectory),
    Google(google::GoogleDirectory),
    AppIntegration(app_integration::AppIntegrationDirectory),
    IceWarp(icewarp::IceWarpDirectory),
}

impl Connector {
    pub fn sign_in_method(&self) -> SignInMethod {
        match self {
            Connector::Ldap(_) | Connector::AppIntegration(_) | Connector::IceWarp(_) => {
                SignInMethod::Password
            }
            Connector::Entra(_) | Connector::Google(_) => SignInMethod::OpenIdConnect,
        }
    }

    pub async fn test_connection(&self) -> Result<ConnectionReport, DirectoryError> {
        match self {
            Connector::Ldap(d) => d.test_connection().await,
            Connector::Entra(d) => d.test_connection().await,
            Connector::Google(d) => d.test_connection().await,
            Connector::AppIntegration(d) => d.test_connection().await,
            Connector::IceWarp(d) => d.test_connection().await,
        }
    }

    pub async fn list_groups(&self, search: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        match self {
            Connector::Ldap(d) => d.list_groups(search).await,
            Connector::Entra(d) => d.list_groups(search).await,
            Connector::Google(d) => d.list_groups(search).await,
            Connector::AppIntegration(d) => d.list_groups(search).await,
            Connector::IceWarp(d) => d.list_groups(search).await,
        }
    }

    pub async fn snapshot(&self, progress: &Progress) -> Result<Snapshot, DirectoryError> {
        match self {
            Connector::Ldap(d) => d.snapshot(progress).await,
            Connector::Entra(d) => d.snapshot(progress).await,
            Connector::Google(d) => d.snapshot(progress).await,
            Connector::AppIntegration(d) => d.snapshot(progress).await,
            Connector::IceWarp(d) => d.snapshot(progress).await,
        }
    }

    pub async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError> {
        match self {
            Connector::Ldap(d) => d.find_user(username).await,
            Connector::Entra(d) => d.find_user(username).await,
            Connector::Google(d) => d.find_user(username).await,
            Connector::AppIntegration(d) => d.find_user(username).await,
            Connector::IceWarp(d) => d.find_user(username).await,
        }
    }

    pub async fn authenticate(
        &self,
        account: &Account<'_>,
        password: &secrecy::SecretString,
    ) -> Result<PasswordCheck, DirectoryError> {
        match self {
            Connector::Ldap(d) => d.authenticate(account, password).await,
            Connector::Entra(d) => d.authenticate(account, password).await,
            Connector::Google(d) => d.authenticate(account, password).await,
            Connector::AppIntegration(d) => d.authenticate(account, password).await,
            Connector::IceWarp(d) => d.authenticate(account, password).await,
        }
    }
}

/// Reading only what changed, where the kind can (Entra ID); the others read everything.
impl Connector {
    /// A cursor from now on, taken before a complete read so that nothing changed during it
    /// is missed; `None` for kinds that cannot report changes.
    pub async fn change_cursor(&self) -> Result<Option<ChangeCursor>, DirectoryError> {
        match self {
            Connector::Entra(d) => d.latest_cursor().await.map(Some),
            _ => Ok(None),
        }
    }

    pub async fn changes(
        &self,
        since: &ChangeCursor,
        progress: &Progress,
    ) -> Result<Changes, DirectoryError> {
        match self {
            Connector::Entra(d) => d.changes(since, progress).await,
            _ => Ok(Changes::ReadEverything(
                "this kind of directory does not report changes".into(),
            )),
        }
    }

    /// The groups a delta touched, read again with the groups they are nested in, and the
    /// groups of users new to Roster; `None` when that is more than reading every group.
    pub async fn group_patch(
        &self,
        changed: &[String],
        newcomers: &[String],
        known: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Option<GroupPatch>, DirectoryError> {
        match self {
            Connector::Entra(d) => d.group_patch(changed, newcomers, known).await,
            _ => Ok(None),
        }
    }

    /// Every group in scope with its members among the users `known` says are in the
    /// run (after a delta whose changes `group_patch` would not cover).
    pub async fn groups(
        &self,
        known: &(dyn Fn(&str) -> bool + Sync),
        progress: &Progress,
    ) -> Result<(Vec<SourceGroup>, Vec<String>), DirectoryError> {
        match self {
            Connector::Entra(d) => {
                let mut warnings = Vec::new();
                let groups = d
                    .groups_of(&Default::default(), known, &mut warnings, progress)
                    .await?;
                Ok((groups, warnings))
            }
            _ => Err(DirectoryError::Settings(
                "this kind of directory does not report changes".into(),
            )),
        }
    }
}

impl DirectoryError {
    /// The error for an admin, with what the directory's codes mean (Active Directory's
    /// bind sub-codes).
    pub fn explained(&self) -> String {
        let text = self.to_string();
        match self {
            DirectoryError::InvalidCredentials {
                sub_code: Some(code),
                ..
            } => format!(
                "{text} (Active Directory sub-code {code}: {})",
                ldap::sub_code_meaning(code)
            ),
            _ => text,
        }
    }
}
