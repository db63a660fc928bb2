//! Held runs: an admin approves (the plan is applied exactly, if a fresh read agrees) or
//! discards them.

use std::sync::Arc;

use crate::db::ids::RunId;
use crate::db::models::sync_leases;
use crate::db::models::sync_runs::{self, Counts, RunStatus};
use crate::directory::Progress;

use super::execute::{apply_plan, counts, fresh_plan, load_profile, set_phase};
use super::lifecycle::watch;
use super::plan::Plan;
use super::{Outcome, RunError, Started, SyncContext, SyncError};

/// An admin approves a held run: its plan is applied exactly, if the directory still
/// agrees (a fresh plan has the same changes); otherwise nothing is applied.
pub async fn approve(ctx: &SyncContext, run_id: RunId) -> Result<Outcome, SyncError> {
    let run = ctx
        .db
        .run(move |c| sync_runs::find(c, run_id).map_err(SyncError::from))
        .await?
        .ok_or(SyncError::NotFound)?;
    if run.status != RunStatus::Held {
        return Err(SyncError::NotHeld);
    }
    let held: Plan = match run.plan.as_deref().map(serde_json::from_str) {
        Some(Ok(plan)) => plan,
        Some(Err(e)) => {
            return Err(anyhow::anyhow!("the held run's plan cannot be read: {e}").into());
        }
        None => return Err(anyhow::anyhow!("the held run has no plan").into()),
    };
    let profile_id = run.profile_id;
    let owner = crate::crypto::random_token();
    let lease_owner = owner.clone();
    let lease_seconds = ctx.lease_seconds;
    let won = ctx
        .db
        .run(move |c| {
            if !sync_leases::acquire(c, profile_id, &lease_owner, lease_seconds)? {
                return Ok::<_, SyncError>(false);
            }
            sync_leases::attach(c, profile_id, &lease_owner, run_id)?;
            Ok(sync_runs::settle_held(c, run_id, RunStatus::Running)?)
        })
        .await?;
    let release = |ctx: &SyncContext| {
        let (db, owner) = (ctx.db.clone(), owner.clone());
        async move {
            let released = db
                .run(move |c| sync_leases::release(c, profile_id, &owner).map_err(SyncError::from))
                .await;
            // An unreleased lease expires on its own; the next run waits until then.
            if let Err(e) = released {
                tracing::warn!(run_id = run_id.0, error = %e, "releasing a synchronisation lease failed");
            }
        }
    };
    if !won {
        release(ctx).await;
        return Err(SyncError::Busy);
    }
    // The approval reads the directory again: its lease is renewed (and its progress shown)
    // as a run's is, or a read slower than the lease would let another instance start.
    let progress = Arc::new(Progress::default());
    let (cancel, _) = tokio::sync::watch::channel(false);
    let started = Started {
        run_id,
        profile_id,
        dry_run: false,
        lease: Some(owner.clone()),
    };
    let watcher = watch(ctx, &started, progress.clone(), cancel);
    // The stored plan lists at most `STORED_CHANGES` of each kind: a run that applies
    // records the fresh, complete plan; one that fails keeps what the held run recorded.
    let result = async {
        let (profile, settings) = load_profile(ctx, profile_id).await?;
        let fresh = fresh_plan(ctx, &profile, &settings, &progress).await?;
        if fresh.compute_digest() != held.digest {
            return Err(RunError::DirectoryChanged);
        }
        progress.set_phase("applying");
        set_phase(ctx, run_id, "applying").await;
        let fresh = Arc::new(fresh);
        apply_plan(ctx, &profile, fresh.clone(), &owner).await?;
        Ok(Arc::try_unwrap(fresh).unwrap_or_else(|shared| (*shared).clone()))
    }
    .await;
    watcher.abort();
    let (status, error, counts, plan_json, plan) = match result {
        Ok(fresh) => (
            RunStatus::Succeeded,
            None,
            counts(&fresh),
            fresh.to_record(),
            fresh,
        ),
        Err(e) => (
            RunStatus::Failed,
            Some(e.to_string()),
            Counts::of(&run),
            run.plan.clone(),
            held,
        ),
    };
    let recorded_error = error.clone();
    ctx.db
        .run(move |c| {
            sync_runs::finish(
                c,
                run_id,
                status,
                counts,
                recorded_error.as_deref(),
                plan_json.as_deref(),
            )
            .map_err(SyncError::from)
        })
        .await?;
    release(ctx).await;
    Ok(Outcome {
        run_id,
        status,
        plan: Some(plan),
        error,
    })
}

/// An admin discards a held run: nothing is applied.
pub async fn discard(ctx: &SyncContext, run_id: RunId) -> Result<(), SyncError> {
    discard_recorded(ctx, run_id, |_| Ok(())).await
}

/// Like `discard`; `record` runs in the transaction that discards (the admin's audit event).
pub async fn discard_recorded(
    ctx: &SyncContext,
    run_id: RunId,
    record: impl FnOnce(&mut crate::db::DbConnection) -> diesel::QueryResult<()> + Send + 'static,
) -> Result<(), SyncError> {
    ctx.db
        .write(move |c| {
            if !sync_runs::settle_held(c, run_id, RunStatus::Discarded)? {
                return Err(SyncError::NotHeld);
            }
            record(c)?;
            Ok(())
        })
        .await
}
