//! The sync engine: snapshot → plan → guard → apply → record (DESIGN.md).
//!
//! A run reads the whole in-scope directory (or fails with the directory's own error and
//! changes nothing), diffs it against the database by (profile, stable id), and either
//! stores the plan (dry run), holds it for an admin (guard), or applies it in one
//! transaction. One profile syncs on one instance at a time: a lease row with an expiry.
//!
//! By concern: `lifecycle` (starting a run under the profile's lease, watching it while it
//! lives), `execute` (read, plan, guard, apply, and record the run), `approval` (held runs
//! approved or discarded), `plan` (the diff), `guard` (the deletion threshold), `apply`
//! (the one write transaction).

pub mod apply;
mod approval;
mod changes;
mod execute;
pub mod guard;
mod lifecycle;
pub mod plan;

use std::sync::Arc;

use rustls::ClientConfig;

use crate::crypto::MasterKey;
use crate::db::Db;
use crate::db::ids::{ProfileId, RunId};
use crate::db::models::directory_profiles::ProfileKind;
pub use crate::db::models::sync_runs::RunStatus;
use crate::profiles::connector::{ConnectorError, Connectors};
use plan::Plan;

pub use approval::{approve, discard, discard_recorded};
pub use execute::{counts, execute};
pub use lifecycle::{start, start_recorded};

/// What a run needs from the application.
#[derive(Clone)]
pub struct SyncContext {
    pub db: Db,
    pub master_key: MasterKey,
    pub tls: Arc<ClientConfig>,
    /// How long a lease lives without renewal (`sync_lease_seconds`); a running sync renews
    /// it every third of that, and a run silent for that long counts as abandoned.
    pub lease_seconds: i64,
}

impl SyncContext {
    /// A run reads with its own connection; no service connection is kept.
    fn connectors(&self) -> Connectors {
        Connectors {
            db: self.db.clone(),
            master_key: self.master_key.clone(),
            tls: self.tls.clone(),
            pool: Default::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Admin,
    Cli,
    Schedule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Admin => "admin",
            Trigger::Cli => "cli",
            Trigger::Schedule => "schedule",
        }
    }
}

/// Why a run failed, in words for the admin (recorded on the run): the directory's own,
/// or what went wrong around it. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading the profile failed: {0}")]
    ReadProfile(SyncError),
    #[error("the directory profile was deleted")]
    ProfileDeleted,
    #[error(transparent)]
    Settings(#[from] crate::profiles::BadSettings),
    #[error("synchronising {} profiles is not available in this version of Roster", .0.label())]
    NotAvailable(ProfileKind),
    #[error(transparent)]
    Connector(ConnectorError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error("reading the synchronised users failed: {0}")]
    ReadExisting(SyncError),
    #[error(
        "the database's disk is full ({0}): nothing was changed; free some space and run the synchronisation again"
    )]
    DiskFull(SyncError),
    #[error("writing the changes failed, nothing was changed: {0}")]
    Write(SyncError),
    #[error(
        "the directory changed since this run was planned; nothing was applied. Start a new run."
    )]
    DirectoryChanged,
    #[error(
        "this run's lease on the profile ran out (its renewals failed for longer than sync_lease_seconds) and another Roster instance took the profile over; nothing was applied"
    )]
    LeaseLost,
    #[error(transparent)]
    Database(SyncError),
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the directory profile does not exist")]
    NotFound,
    #[error("a synchronisation of this profile is already running")]
    Busy,
    #[error("this run is not waiting for approval")]
    NotHeld,
    /// The run's lease is another instance's now (`RunError::LeaseLost`).
    #[error("the run's lease was taken over by another instance")]
    LeaseLost,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for SyncError {
    fn from(e: diesel::result::Error) -> Self {
        SyncError::Internal(e.into())
    }
}

impl From<crate::db::DbError> for SyncError {
    fn from(e: crate::db::DbError) -> Self {
        SyncError::Internal(e.into())
    }
}

/// A started run: the caller may show it at once and let `execute` finish it.
pub struct Started {
    pub run_id: RunId,
    pub profile_id: ProfileId,
    pub dry_run: bool,
    /// The lease owner token (apply runs only).
    pub(crate) lease: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: RunId,
    /// Succeeded, failed, held or cancelled.
    pub status: RunStatus,
    pub plan: Option<Plan>,
    pub error: Option<String>,
}

/// Starts and finishes a run (the CLI and the schedules).
pub async fn run(
    ctx: &SyncContext,
    profile_id: ProfileId,
    trigger: Trigger,
    started_by: &str,
    dry_run: bool,
) -> Result<Outcome, SyncError> {
    let started = start(ctx, profile_id, trigger, started_by, dry_run).await?;
    Ok(execute(ctx, started).await)
}
