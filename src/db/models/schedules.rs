//! Schedules: when a profile synchronises on its own. The next run time is stored, so any
//! instance's scheduler finds what is due with one indexed query, and claims it with a
//! compare-and-set on that time (two schedulers never both start the same occurrence).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::{ProfileId, RunId, ScheduleId};
use crate::db::schema::{directory_profiles, schedules};
use crate::schedules::When;
use crate::with_backend;

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = schedules)]
pub struct Schedule {
    pub id: ScheduleId,
    pub profile_id: ProfileId,
    pub kind: String,
    pub interval_minutes: Option<i32>,
    pub time_of_day: Option<String>,
    pub weekdays: String,
    pub time_zone: String,
    pub enabled: bool,
    pub next_run_at: Option<i64>,
    pub last_run_at: Option<i64>,
    pub last_run_id: Option<RunId>,
}

impl Schedule {
    pub fn when(&self) -> Option<When> {
        When::from_stored(
            &self.kind,
            self.interval_minutes,
            self.time_of_day.as_deref(),
            &self.weekdays,
            &self.time_zone,
        )
    }

    /// "Daily at 03:00 (UTC)", or "unreadable" for a row no release could have written.
    pub fn describe(&self) -> String {
        self.when()
            .map(|w| w.describe())
            .unwrap_or_else(|| "unreadable".into())
    }
}

/// A schedule as the list shows it, with its profile's name.
#[derive(Queryable, Clone, Debug)]
pub struct ScheduleListRow {
    pub schedule: Schedule,
    pub profile_name: String,
}

/// What the form sets; `next_run_at` is computed by the caller from its clock.
pub struct ScheduleChanges<'a> {
    pub profile_id: ProfileId,
    pub when: &'a When,
    pub enabled: bool,
    pub next_run_at: Option<i64>,
}

/// The columns the form sets, for both insert and update.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = schedules, treat_none_as_null = true)]
struct ScheduleRow<'a> {
    profile_id: ProfileId,
    kind: &'a str,
    interval_minutes: Option<i32>,
    time_of_day: Option<&'a str>,
    weekdays: &'a str,
    time_zone: &'a str,
    enabled: bool,
    next_run_at: Option<i64>,
    updated_at: i64,
}

impl ScheduleChanges<'_> {
    fn with_row<T>(&self, f: impl FnOnce(&ScheduleRow) -> T) -> T {
        let stored = self.when.to_stored();
        f(&ScheduleRow {
            profile_id: self.profile_id,
            kind: stored.kind,
            interval_minutes: stored.interval_minutes,
            time_of_day: stored.time_of_day.as_deref(),
            weekdays: &stored.weekdays,
            time_zone: &stored.time_zone,
            enabled: self.enabled,
            next_run_at: self.next_run_at,
            updated_at: crate::db::now(),
        })
    }
}

pub fn create(conn: &mut DbConnection, changes: &ScheduleChanges) -> QueryResult<ScheduleId> {
    changes.with_row(|row| {
        with_backend!(conn, |c| diesel::insert_into(schedules::table)
            .values((row, schedules::created_at.eq(row.updated_at)))
            .returning(schedules::id)
            .get_result(c))
    })
}

/// Returns false if the schedule does not exist.
pub fn update(
    conn: &mut DbConnection,
    id: ScheduleId,
    changes: &ScheduleChanges,
) -> QueryResult<bool> {
    let n = changes.with_row(|row| {
        diesel::update(schedules::table.find(id))
            .set(row)
            .execute(conn)
    })?;
    Ok(n == 1)
}

pub fn set_enabled(
    conn: &mut DbConnection,
    id: ScheduleId,
    enabled: bool,
    next_run_at: Option<i64>,
) -> QueryResult<bool> {
    let n = diesel::update(schedules::table.find(id))
        .set((
            schedules::enabled.eq(enabled),
            schedules::next_run_at.eq(next_run_at),
            schedules::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

pub fn delete(conn: &mut DbConnection, id: ScheduleId) -> QueryResult<bool> {
    Ok(diesel::delete(schedules::table.find(id)).execute(conn)? == 1)
}

pub fn find(conn: &mut DbConnection, id: ScheduleId) -> QueryResult<Option<Schedule>> {
    schedules::table
        .find(id)
        .select(Schedule::as_select())
        .first(conn)
        .optional()
}

/// Every schedule, by profile name, or those of one profile.
pub fn list(
    conn: &mut DbConnection,
    profile_id: Option<ProfileId>,
) -> QueryResult<Vec<ScheduleListRow>> {
    let mut query = schedules::table
        .inner_join(directory_profiles::table)
        .order((directory_profiles::name, schedules::id))
        .select((Schedule::as_select(), directory_profiles::name))
        .into_boxed();
    if let Some(profile_id) = profile_id {
        query = query.filter(schedules::profile_id.eq(profile_id));
    }
    query.load(conn)
}

/// Each profile's next scheduled run (of its enabled schedules).
pub fn next_run_per_profile(
    conn: &mut DbConnection,
) -> QueryResult<std::collections::HashMap<ProfileId, i64>> {
    let rows: Vec<(ProfileId, Option<i64>)> = schedules::table
        .filter(schedules::enabled.eq(true))
        .group_by(schedules::profile_id)
        .select((
            schedules::profile_id,
            diesel::dsl::min(schedules::next_run_at),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(p, next)| Some((p, next?)))
        .collect())
}

/// Enabled schedules whose next run is at or before `now`.
pub fn due(conn: &mut DbConnection, now: i64) -> QueryResult<Vec<Schedule>> {
    schedules::table
        .filter(schedules::enabled.eq(true))
        .filter(schedules::next_run_at.le(now))
        .order(schedules::next_run_at)
        .select(Schedule::as_select())
        .load(conn)
}

/// Takes the occurrence due at `due_at` for this scheduler: moves the schedule to its next
/// run, unless another scheduler already did (then false). The database serialises the two
/// updates, so exactly one of them matches.
pub fn claim(
    conn: &mut DbConnection,
    id: ScheduleId,
    due_at: i64,
    next_run_at: i64,
    now: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        schedules::table
            .find(id)
            .filter(schedules::enabled.eq(true))
            .filter(schedules::next_run_at.eq(due_at)),
    )
    .set((
        schedules::next_run_at.eq(next_run_at),
        schedules::last_run_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn record_run(conn: &mut DbConnection, id: ScheduleId, run_id: RunId) -> QueryResult<()> {
    diesel::update(schedules::table.find(id))
        .set(schedules::last_run_id.eq(run_id))
        .execute(conn)
        .map(drop)
}
