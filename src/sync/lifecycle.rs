//! A run's lifecycle: it starts under the profile's lease (apply runs), and while it lives
//! a watcher copies its progress into its row, notices a cancel request and renews the lease.

use std::sync::Arc;

use crate::db::DbConnection;
use crate::db::ids::{ProfileId, RunId};
use crate::db::models::{directory_profiles, sync_leases, sync_runs};
use crate::directory::Progress;

use super::{Started, SyncContext, SyncError, Trigger};

/// Creates the run (after winning the profile's lease, for runs that apply).
pub async fn start(
    ctx: &SyncContext,
    profile_id: ProfileId,
    trigger: Trigger,
    started_by: &str,
    dry_run: bool,
) -> Result<Started, SyncError> {
    start_recorded(ctx, profile_id, trigger, started_by, dry_run, |_, _| Ok(())).await
}

/// Like `start`; `record` runs in the transaction that creates the run (an admin's start
/// is audited with it, the new run's id in hand).
pub async fn start_recorded(
    ctx: &SyncContext,
    profile_id: ProfileId,
    trigger: Trigger,
    started_by: &str,
    dry_run: bool,
    record: impl FnOnce(&mut DbConnection, RunId) -> diesel::QueryResult<()> + Send + 'static,
) -> Result<Started, SyncError> {
    let started_by = started_by.to_owned();
    let lease_seconds = ctx.lease_seconds;
    ctx.db
        .run(move |c| {
            // One transaction: a scheduler's reaper never sees the run without its lease.
            c.write_transaction(|c| {
                let started =
                    start_in(c, profile_id, trigger, &started_by, dry_run, lease_seconds)?;
                record(c, started.run_id)?;
                Ok(started)
            })
        })
        .await
}

fn start_in(
    c: &mut DbConnection,
    profile_id: ProfileId,
    trigger: Trigger,
    started_by: &str,
    dry_run: bool,
    lease_seconds: i64,
) -> Result<Started, SyncError> {
    if directory_profiles::find(c, profile_id)?.is_none() {
        return Err(SyncError::NotFound);
    }
    // A dry run changes nothing, so it needs no lease.
    let lease = if dry_run {
        None
    } else {
        let owner = crate::crypto::random_token();
        if !sync_leases::acquire(c, profile_id, &owner, lease_seconds)? {
            return Err(SyncError::Busy);
        }
        Some(owner)
    };
    let run_id = sync_runs::start(c, profile_id, trigger.as_str(), started_by, dry_run)?;
    if let Some(owner) = &lease {
        sync_leases::attach(c, profile_id, owner, run_id)?;
        // Whoever held the lease before us is gone: its run never finished.
        sync_runs::fail_stale(c, profile_id, run_id)?;
    }
    Ok(Started {
        run_id,
        profile_id,
        dry_run,
        lease,
    })
}

/// While a run lives: copies its progress into its row every second (the run page polls
/// it), notices an admin's cancel request, and renews the lease.
pub(super) fn watch(
    ctx: &SyncContext,
    started: &Started,
    progress: Arc<Progress>,
    cancel: tokio::sync::watch::Sender<bool>,
) -> tokio::task::JoinHandle<()> {
    let (db, run_id, profile_id) = (ctx.db.clone(), started.run_id, started.profile_id);
    let lease = started.lease.clone();
    let lease_seconds = ctx.lease_seconds;
    tokio::spawn(async move {
        let renew_every = (lease_seconds / 3).max(1) as u64;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        for second in 0u64.. {
            tick.tick().await;
            let (phase, users, groups) = progress.now();
            let renew = lease
                .clone()
                .filter(|_| second > 0 && second % renew_every == 0);
            let cancelled = db
                .run(move |c| {
                    // While applying, the run's own write transaction owns SQLite: the
                    // renewal does not wait for it (it held a pooled connection for the
                    // 10 s busy wait, then failed), and no other instance can take the
                    // lease, a write too, until that transaction ends.
                    if phase == "applying" {
                        if let Some(owner) = renew {
                            c.write_unless_busy(|c| {
                                sync_leases::renew(c, profile_id, &owner, lease_seconds)
                            })?;
                        }
                        return Ok(false);
                    }
                    if let Some(owner) = renew {
                        // A lease lost meanwhile stops the run at its apply (`apply`).
                        sync_leases::renew(c, profile_id, &owner, lease_seconds)?;
                    }
                    sync_runs::report_progress(c, run_id, phase, users, groups)
                        .map_err(SyncError::from)
                })
                .await;
            match cancelled {
                // The receiver is gone only when the run has finished.
                Ok(true) => drop(cancel.send(true)),
                Ok(false) => {}
                // The lease may lapse if this goes on; the next tick tries again.
                Err(e) => {
                    tracing::warn!(run_id = run_id.0, error = %e, "renewing a run's lease or progress failed")
                }
            }
        }
    })
}
