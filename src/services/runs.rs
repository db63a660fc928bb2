//! Synchronisation runs as an admin handles them: start (or test), approve or discard a
//! held run, cancel, and what a run's page and the lists show. The sync engine itself is
//! `crate::sync`; this layer names the profile, audits, and reads runs for the pages.

use crate::audit::{self, Action, Actor};
use crate::db::ids::{ProfileId, RunId};
use crate::db::models::sync_runs::{self, RunFilter, RunListRow, SyncRun};
use crate::db::models::{change_cursors, directory_profiles};
use crate::error::AppError;
use crate::state::AppState;
use crate::sync::plan::Plan;
use crate::sync::{self, Trigger};

/// What "Synchronise now" and "Test settings" lead to.
pub enum Start {
    Started(RunId),
    /// A synchronisation of the profile is already going (this one, if it can be found).
    AlreadyRunning(Option<RunId>),
}

/// How a run reads the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Only what changed, where the directory reports changes ("Synchronise now").
    Changes,
    /// Everything ("Full synchronisation"): the profile's change cursor is dropped.
    Everything,
}

/// Starts a run of the profile in the background (`dry_run`: "Test settings").
pub async fn start(
    state: &AppState,
    actor: &Actor,
    profile_id: ProfileId,
    dry_run: bool,
    read: Read,
) -> Result<Start, AppError> {
    let ctx = state.sync_context();
    let started_by = actor.name.clone();
    let actor = actor.clone();
    let record = move |c: &mut crate::db::DbConnection, run_id: RunId| {
        let name = directory_profiles::name(c, profile_id)?.unwrap_or_default();
        let (action, mut detail) = if dry_run {
            (Action::SyncTested, format!("dry run {run_id}"))
        } else {
            (Action::SyncStarted, format!("run {run_id}"))
        };
        // Under the profile's lease, so no run going on keeps a cursor after this.
        if read == Read::Everything && !dry_run {
            change_cursors::clear(c, profile_id)?;
            detail.push_str(", everything read again");
        }
        audit::write(c, &actor, action, &name, &detail)
    };
    let started = sync::start_recorded(
        &ctx,
        profile_id,
        Trigger::Admin,
        &started_by,
        dry_run,
        record,
    )
    .await;
    let started = match started {
        Ok(started) => started,
        Err(sync::SyncError::Busy) => {
            let running = state
                .db
                .run(move |c| sync_runs::running_of_profile(c, profile_id).map_err(AppError::from))
                .await?;
            return Ok(Start::AlreadyRunning(running));
        }
        Err(e) => return Err(e.into()),
    };
    let run_id = started.run_id;
    tokio::spawn(async move {
        sync::execute(&ctx, started).await;
    });
    Ok(Start::Started(run_id))
}

/// Applies a held run's plan if the directory still agrees (see `sync::approve`).
pub async fn approve(state: &AppState, actor: &Actor, run_id: RunId) -> Result<(), AppError> {
    let outcome = sync::approve(&state.sync_context(), run_id).await?;
    let detail = match &outcome.error {
        None => format!("run {run_id} approved and applied"),
        Some(e) => format!("run {run_id} approved, not applied: {e}"),
    };
    let target = format!("run {run_id}");
    audit::record(&state.db, actor, Action::SyncApproved, &target, &detail).await?;
    Ok(())
}

pub async fn discard(state: &AppState, actor: &Actor, run_id: RunId) -> Result<(), AppError> {
    let actor = actor.clone();
    let record = move |c: &mut crate::db::DbConnection| {
        let target = format!("run {run_id}");
        let detail = "held plan discarded";
        audit::write(c, &actor, Action::SyncDiscarded, &target, detail)
    };
    sync::discard_recorded(&state.sync_context(), run_id, record).await?;
    Ok(())
}

/// A run stops before it applies anything; once it is applying, it finishes.
pub async fn cancel(state: &AppState, actor: &Actor, run_id: RunId) -> Result<(), AppError> {
    let actor = actor.clone();
    let accepted = state
        .db
        .write(move |c| -> Result<bool, AppError> {
            let accepted = sync_runs::request_cancel(c, run_id)?;
            if accepted {
                let target = format!("run {run_id}");
                audit::write(c, &actor, Action::SyncCancelled, &target, "")?;
            }
            Ok(accepted)
        })
        .await?;
    if !accepted {
        return Err(AppError::BadRequest(
            "This run can no longer be cancelled: it has finished or is already applying its changes."
                .into(),
        ));
    }
    Ok(())
}

/// A run with what its page shows.
pub struct RunView {
    /// The row without its stored plan (megabytes of JSON for a large run), which is
    /// `plan` now.
    pub run: SyncRun,
    pub profile_name: String,
    /// The stored plan; empty while running, for failed runs, or if it cannot be read.
    pub plan: Plan,
    /// The run had stored a plan.
    pub stored_plan: bool,
}

pub async fn view(state: &AppState, run_id: RunId) -> Result<RunView, AppError> {
    let (mut run, profile_name) = state
        .db
        .run(move |c| -> Result<_, AppError> {
            let run = sync_runs::find(c, run_id)?.ok_or(AppError::NotFound)?;
            let name = directory_profiles::name(c, run.profile_id)?.unwrap_or_default();
            Ok((run, name))
        })
        .await?;
    let stored = run.plan.take();
    let plan = match stored.as_deref().map(serde_json::from_str::<Plan>) {
        None => Plan::default(),
        Some(Ok(plan)) => plan,
        Some(Err(e)) => {
            // The counts in the row are still right; only the list of changes is lost.
            tracing::error!(run_id = run_id.0, error = %e, "a stored plan cannot be read");
            Plan::default()
        }
    };
    Ok(RunView {
        stored_plan: stored.is_some(),
        run,
        profile_name,
        plan,
    })
}

/// Runs matching `filter`, newest first, at most `limit`; with the profile's name when the
/// list is one profile's.
pub async fn list(
    state: &AppState,
    filter: RunFilter,
    limit: i64,
) -> Result<(Option<(ProfileId, String)>, Vec<RunListRow>), AppError> {
    state
        .db
        .run(move |c| {
            let profile = match filter.profile_id {
                Some(id) => Some((
                    id,
                    directory_profiles::name(c, id)?.ok_or(AppError::NotFound)?,
                )),
                None => None,
            };
            Ok::<_, AppError>((profile, sync_runs::list(c, &filter, limit)?))
        })
        .await
}

/// The profile's name and its current or last run.
pub async fn latest_of_profile(
    state: &AppState,
    profile_id: ProfileId,
) -> Result<(String, Option<SyncRun>), AppError> {
    state
        .db
        .run(move |c| {
            let name = directory_profiles::name(c, profile_id)?.ok_or(AppError::NotFound)?;
            Ok::<_, AppError>((name, sync_runs::latest_of_profile(c, profile_id)?))
        })
        .await
}
