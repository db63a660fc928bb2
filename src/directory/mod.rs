//! Directory connectors: one file per kind behind one `Directory` trait. Each connector owns
//! its client, takes its server or base URL from the profile (so tests point it at local
//! servers) and keeps the directory's own technical error text for the admin.
//!
//! This file holds what every kind shares; `ldap.rs` serves generic LDAP and Active
//! Directory. The cloud kinds come with their issues.

pub mod ldap;
pub mod names;

use std::sync::Mutex;
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
    pub users_matched: usize,
    pub groups_matched: usize,
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    pub users: Vec<SourceUser>,
    pub groups: Vec<SourceGroup>,
    /// Entries left out for a reason the admin should see (e.g. no user name).
    pub warnings: Vec<String>,
    /// How the chosen groups narrowed the users ("N of M users are in the chosen groups").
    pub scope: Option<String>,
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

    /// The one user with this user name (the profile's user name attribute), if any.
    async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError>;

    /// Checks a user's password at the directory. `external_id` is the user's stable id
    /// from the last synchronisation (so renames and the local-part rule do not matter).
    async fn authenticate(
        &self,
        external_id: &str,
        password: &secrecy::SecretString,
    ) -> Result<PasswordCheck, DirectoryError>;
}
