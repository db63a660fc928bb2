//! Schedules: when profiles synchronise on their own. Saving checks the form and that the
//! profile can synchronise; every change is audited in its transaction. The runs themselves
//! are started by the scheduler (`crate::jobs::scheduler`).

use crate::audit::{self, Action, Actor};
use crate::db::DbConnection;
use crate::db::ids::{ProfileId, RunId, ScheduleId};
use crate::db::models::schedules::{self, Schedule, ScheduleChanges, ScheduleListRow};
use crate::db::models::{directory_profiles, sync_runs};
use crate::error::AppError;
use crate::profiles::fields;
use crate::schedules::{ScheduleInput, When};
use crate::state::AppState;
use crate::validation::FieldErrors;

/// The schedules (all, or one profile's with its name) and their last runs' statuses.
pub struct Listing {
    pub profile: Option<(ProfileId, String)>,
    pub rows: Vec<ScheduleListRow>,
    /// (run id, status) of the rows' last runs.
    pub statuses: Vec<(RunId, crate::db::models::sync_runs::RunStatus)>,
}

pub async fn list(state: &AppState, only: Option<ProfileId>) -> Result<Listing, AppError> {
    state
        .db
        .run(move |c| {
            let profile = match only {
                Some(id) => Some((
                    id,
                    directory_profiles::name(c, id)?.ok_or(AppError::NotFound)?,
                )),
                None => None,
            };
            let rows = schedules::list(c, only)?;
            let run_ids: Vec<RunId> = rows.iter().filter_map(|r| r.schedule.last_run_id).collect();
            let statuses = sync_runs::statuses(c, &run_ids)?;
            Ok::<_, AppError>(Listing {
                profile,
                rows,
                statuses,
            })
        })
        .await
}

/// Profiles that can synchronise: (id, name). Only kinds with a connector can.
pub async fn syncable_profiles(state: &AppState) -> Result<Vec<(ProfileId, String)>, AppError> {
    state.db.run(syncable).await
}

fn syncable(c: &mut DbConnection) -> Result<Vec<(ProfileId, String)>, AppError> {
    Ok(directory_profiles::list(c, "", false)?
        .into_iter()
        .filter(|p| p.kind().is_some_and(fields::has_connector))
        .map(|p| (p.id, p.name))
        .collect())
}

pub async fn find(state: &AppState, id: ScheduleId) -> Result<Schedule, AppError> {
    state
        .db
        .run(move |c| schedules::find(c, id).map_err(AppError::from))
        .await?
        .ok_or(AppError::NotFound)
}

pub enum Saved {
    /// The schedule's profile (the list to go back to).
    Saved {
        profile_id: ProfileId,
    },
    Invalid(FieldErrors),
}

/// Creates a schedule (`id` = None) or changes one; the next run is worked out again.
pub async fn save(
    state: &AppState,
    actor: &Actor,
    id: Option<ScheduleId>,
    input: &ScheduleInput,
) -> Result<Saved, AppError> {
    let (profile_id, when) = match input.check() {
        Ok(ok) => ok,
        Err(errors) => return Ok(Saved::Invalid(errors)),
    };
    let (enabled, actor) = (input.enabled, actor.clone());
    state
        .db
        .write(move |c| -> Result<Saved, AppError> {
            if !syncable(c)?.iter().any(|(p, _)| *p == profile_id) {
                let mut errors = FieldErrors::default();
                errors.add(
                    "profile",
                    "Choose a profile from the list: that one no longer exists.",
                );
                return Ok(Saved::Invalid(errors));
            }
            let changes = changes(profile_id, &when, enabled);
            let (id, action) = match id {
                None => (schedules::create(c, &changes)?, Action::ScheduleCreated),
                Some(id) => {
                    if !schedules::update(c, id, &changes)? {
                        return Err(AppError::NotFound);
                    }
                    (id, Action::ScheduleUpdated)
                }
            };
            write_audit(c, &actor, action, id, profile_id, &when.describe())?;
            Ok(Saved::Saved { profile_id })
        })
        .await
}

pub async fn set_enabled(
    state: &AppState,
    actor: &Actor,
    id: ScheduleId,
    enabled: bool,
) -> Result<(), AppError> {
    let actor = actor.clone();
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            let schedule = schedules::find(c, id)?.ok_or(AppError::NotFound)?;
            let next = schedule.when().and_then(|w| next_run_of(&w, enabled));
            schedules::set_enabled(c, id, enabled, next)?;
            let action = if enabled {
                Action::ScheduleEnabled
            } else {
                Action::ScheduleDisabled
            };
            write_audit(c, &actor, action, id, schedule.profile_id, "")
        })
        .await
}

pub async fn delete(state: &AppState, actor: &Actor, id: ScheduleId) -> Result<(), AppError> {
    let actor = actor.clone();
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            let schedule = schedules::find(c, id)?.ok_or(AppError::NotFound)?;
            schedules::delete(c, id)?;
            let described = schedule.when().map(|w| w.describe()).unwrap_or_default();
            let action = Action::ScheduleDeleted;
            write_audit(c, &actor, action, id, schedule.profile_id, &described)
        })
        .await
}

/// What the form saves; an enabled schedule's next run counts from now.
fn changes(profile_id: ProfileId, when: &When, enabled: bool) -> ScheduleChanges<'_> {
    ScheduleChanges {
        profile_id,
        when,
        enabled,
        next_run_at: next_run_of(when, enabled),
    }
}

fn next_run_of(when: &When, enabled: bool) -> Option<i64> {
    enabled.then(|| when.next_after(chrono::Utc::now(), None).timestamp())
}

fn write_audit(
    c: &mut DbConnection,
    actor: &Actor,
    action: Action,
    id: ScheduleId,
    profile_id: ProfileId,
    detail: &str,
) -> Result<(), AppError> {
    let profile = directory_profiles::name(c, profile_id)?.unwrap_or_default();
    let target = format!("schedule {id} of {profile}");
    audit::write(c, actor, action, &target, detail)?;
    Ok(())
}
