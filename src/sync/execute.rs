//! Executing a run: read the directory and the database side at once, plan, guard, apply,
//! and record the result whatever happens.

use std::sync::Arc;

use crate::db::ids::{ProfileId, RunId};
use crate::db::models::directory_profiles::{self, DirectoryProfile};
use crate::db::models::sync_runs::{self, Counts, RunStatus};
use crate::db::models::user_privileges::Privilege;
use crate::db::models::{directory_groups, sync_leases, users};
use crate::directory::Progress;
use crate::profiles::KindSettings;
use crate::profiles::connector::ConnectorError;

use super::changes;
use super::lifecycle::watch;
use super::plan::{self, Action, Existing, Plan, PlanOptions};
use super::{Outcome, RunError, Started, SyncContext, SyncError, apply};

/// Reads, plans, guards and applies; records the result whatever happens.
pub async fn execute(ctx: &SyncContext, started: Started) -> Outcome {
    let progress = Arc::new(Progress::default());
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let watcher = watch(ctx, &started, progress.clone(), cancel_tx);
    let result = plan_and_apply(ctx, &started, &progress, cancel_rx).await;
    watcher.abort();
    let run_id = started.run_id;
    let outcome = match result {
        Ok((status, plan)) => Outcome {
            run_id,
            status,
            plan,
            error: None,
        },
        Err(error) => Outcome {
            run_id,
            status: RunStatus::Failed,
            plan: None,
            error: Some(error.to_string()),
        },
    };
    let recording = std::time::Instant::now();
    // Only what is stored moves to the database thread: cloning the whole plan of a
    // 100,000-user first sync cost 0.1 s and 40 MB.
    let plan_json = outcome.plan.as_ref().and_then(|p| p.to_record());
    let counts = outcome.plan.as_ref().map(counts).unwrap_or_default();
    let (status, error) = (outcome.status, outcome.error.clone());
    let (lease, profile_id) = (started.lease, started.profile_id);
    let saved = ctx
        .db
        .run(move |c| {
            sync_runs::finish(
                c,
                run_id,
                status,
                counts,
                error.as_deref(),
                plan_json.as_deref(),
            )?;
            if let Some(owner) = lease {
                sync_leases::release(c, profile_id, &owner)?;
            }
            Ok::<_, SyncError>(())
        })
        .await;
    if let Err(e) = saved {
        tracing::error!(run_id = run_id.0, error = %e, "recording a synchronisation run failed");
    }
    tracing::info!(
        run_id = run_id.0,
        elapsed_ms = recording.elapsed().as_millis() as u64,
        "run recorded"
    );
    // What the run read, planned and loaded is gone: between runs the process holds only
    // the outcome (a profile's first sync beside a million users just synchronised started
    // from the earlier runs' 900 MB).
    crate::release_freed_memory();
    outcome
}

/// Errors here are for the admin: the directory's own words, or what went wrong.
async fn plan_and_apply(
    ctx: &SyncContext,
    started: &Started,
    progress: &Progress,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<(RunStatus, Option<Plan>), RunError> {
    let profile_id = started.profile_id;
    let (profile, settings) = load_profile(ctx, profile_id).await?;
    // Dropping the read stops it: nothing has been written yet.
    let plan = tokio::select! {
        plan = fresh_plan(ctx, &profile, &settings, progress) => plan?,
        _ = cancel.wait_for(|c| *c) => return Ok((RunStatus::Cancelled, None)),
    };
    if started.dry_run {
        return Ok((RunStatus::Succeeded, Some(plan)));
    }
    if plan.held.is_some() {
        return Ok((RunStatus::Held, Some(plan)));
    }
    let run_id = started.run_id;
    let planned = counts(&plan);
    let applying = ctx
        .db
        .run(move |c| sync_runs::begin_applying(c, run_id, &planned).map_err(SyncError::from))
        .await
        .map_err(RunError::Database)?;
    if !applying {
        return Ok((RunStatus::Cancelled, Some(plan)));
    }
    progress.set_phase("applying");
    let elapsed = std::time::Instant::now();
    let plan = Arc::new(plan);
    // Runs that apply hold the profile's lease (`lifecycle::start`).
    let lease = started.lease.as_deref().unwrap_or_default();
    apply_plan(ctx, &profile, plan.clone(), lease).await?;
    let plan = Arc::try_unwrap(plan).unwrap_or_else(|shared| (*shared).clone());
    tracing::info!(
        profile = profile_id.0,
        elapsed_ms = elapsed.elapsed().as_millis() as u64,
        "applied"
    );
    Ok((RunStatus::Succeeded, Some(plan)))
}

pub(super) async fn load_profile(
    ctx: &SyncContext,
    profile_id: ProfileId,
) -> Result<(DirectoryProfile, KindSettings), RunError> {
    let profile = ctx
        .db
        .run(move |c| directory_profiles::find(c, profile_id).map_err(SyncError::from))
        .await
        .map_err(RunError::ReadProfile)?
        .ok_or(RunError::ProfileDeleted)?;
    let settings = KindSettings::of(&profile)?;
    Ok((profile, settings))
}

/// Takes a snapshot and diffs it against the database. The database's side is loaded
/// while the directory is read. Where the profile has a change cursor, only the changes
/// are read (`changes`).
pub(super) async fn fresh_plan(
    ctx: &SyncContext,
    profile: &DirectoryProfile,
    settings: &KindSettings,
    progress: &Progress,
) -> Result<Plan, RunError> {
    let directory = match ctx.connectors().for_profile(profile, settings).await {
        Ok(directory) => directory,
        Err(ConnectorError::NotAvailable(kind)) => return Err(RunError::NotAvailable(kind)),
        Err(e) => return Err(RunError::Connector(e)),
    };
    let options = PlanOptions {
        use_local_part: profile.use_local_part,
        delete_users: profile.delete_users,
        delete_groups: profile.delete_groups,
        threshold_count: i64::from(profile.delete_threshold_count),
        threshold_percent: i64::from(profile.delete_threshold_percent),
    };
    if let Some(plan) = changes::plan_changes(ctx, profile, &directory, &options, progress).await? {
        return Ok(plan);
    }
    // Before the read: what changes while it runs comes again in the next round.
    let cursor = directory.change_cursor().await?;
    let read = async {
        let started = std::time::Instant::now();
        let snapshot = directory.snapshot(progress).await?;
        tracing::info!(
            profile = profile.id.0,
            users = snapshot.users.len(),
            groups = snapshot.groups.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "directory read"
        );
        Ok::<_, RunError>(snapshot)
    };
    let (snapshot, existing) = tokio::try_join!(read, load_existing(ctx, profile))?;
    progress.set_phase("planning");
    // What the read decoded and indexed is gone; the plan comes next.
    crate::release_freed_memory();
    let planning = std::time::Instant::now();
    let mut plan = plan::plan(&options, snapshot, &existing);
    plan.next_cursor = cursor.map(|c| changes::stored(profile.id, c, crate::db::now()));
    tracing::info!(
        profile = profile.id.0,
        elapsed_ms = planning.elapsed().as_millis() as u64,
        "planned"
    );
    Ok(plan)
}

/// What Roster holds of the profile, for the plan.
pub(super) async fn load_existing(
    ctx: &SyncContext,
    profile: &DirectoryProfile,
) -> Result<Existing, RunError> {
    let started = std::time::Instant::now();
    let (profile_id, domain) = (profile.id, profile.domain.clone());
    let existing = ctx
        .db
        .run(move |c| {
            Ok::<_, SyncError>(Existing {
                users: users::synced_by_profile(c, profile_id)?,
                groups: directory_groups::synced_by_profile(c, profile_id)?,
                memberships: directory_groups::memberships_of_profile(c, profile_id)?,
                names_taken: users::names_taken_elsewhere(c, profile_id, &domain)?,
            })
        })
        .await
        .map_err(RunError::ReadExisting)?;
    tracing::info!(
        profile = profile_id.0,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "synchronised state loaded"
    );
    Ok(existing)
}

pub(super) async fn apply_plan(
    ctx: &SyncContext,
    profile: &DirectoryProfile,
    plan: Arc<Plan>,
    lease: &str,
) -> Result<(), RunError> {
    let privileges = Privilege::split(&profile.default_privileges);
    let (profile_id, domain, mfa) = (profile.id, profile.domain.clone(), profile.mfa_by_default);
    let (lease, lease_seconds) = (lease.to_owned(), ctx.lease_seconds);
    ctx.db
        .run(move |c| {
            apply::apply(
                c,
                &apply::ApplyOptions {
                    profile_id,
                    lease: (&lease, lease_seconds),
                    domain: &domain,
                    mfa_by_default: mfa,
                    default_privileges: &privileges,
                },
                &plan,
            )
        })
        .await
        .map_err(|e| {
            if let SyncError::LeaseLost = e {
                return RunError::LeaseLost;
            }
            let text = e.to_string();
            if text.contains("disk is full") || text.contains("No space left") {
                RunError::DiskFull(e)
            } else {
                RunError::Write(e)
            }
        })
}

pub(super) async fn set_phase(ctx: &SyncContext, run_id: RunId, phase: &'static str) {
    let set = ctx
        .db
        .run(move |c| sync_runs::set_phase(c, run_id, phase).map_err(SyncError::from))
        .await;
    // Only the live page's phase line is behind: the run goes on.
    if let Err(e) = set {
        tracing::warn!(run_id = run_id.0, error = %e, "recording a run's phase failed");
    }
}

pub fn counts(plan: &Plan) -> Counts {
    let n = |x: usize| i32::try_from(x).unwrap_or(i32::MAX);
    Counts {
        users_created: n(plan.count(Action::Create)),
        users_updated: n(plan.count(Action::Update)),
        users_deleted: n(plan.count(Action::Delete)),
        users_unchanged: n(plan.users_unchanged),
        groups_created: n(plan.group_count(Action::Create)),
        groups_updated: n(plan.group_count(Action::Update)),
        groups_deleted: n(plan.group_count(Action::Delete)),
        memberships_added: n(plan.memberships_added.len()),
        memberships_removed: n(plan.memberships_removed.len()),
    }
}
