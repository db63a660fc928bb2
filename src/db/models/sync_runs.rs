//! Synchronisation runs: one row per dry run or apply, with its counts, the directory's
//! error text, and the plan (JSON) — the history page and held-run approval read it back.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::{ProfileId, RunId};
use crate::db::schema::{directory_profiles, sync_leases, sync_runs};
use crate::with_backend;

crate::text_enum! {
    /// Where a run is: `Running` until it ends in one of the others.
    pub enum RunStatus {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        /// Waiting for an admin: the deletion guard held the plan.
        Held => "held",
        Cancelled => "cancelled",
        /// A held run an admin discarded.
        Discarded => "discarded",
    }
}

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = sync_runs)]
pub struct SyncRun {
    pub id: RunId,
    pub profile_id: ProfileId,
    pub triggered_by: String,
    pub started_by: String,
    pub dry_run: bool,
    pub status: RunStatus,
    pub phase: String,
    pub progress_users: i32,
    pub progress_groups: i32,
    pub cancel_requested: bool,
    pub users_created: i32,
    pub users_updated: i32,
    pub users_deleted: i32,
    pub users_unchanged: i32,
    pub groups_created: i32,
    pub groups_updated: i32,
    pub groups_deleted: i32,
    pub memberships_added: i32,
    pub memberships_removed: i32,
    pub error: Option<String>,
    pub plan: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

pub fn start(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    triggered_by: &str,
    started_by: &str,
    dry_run: bool,
) -> QueryResult<RunId> {
    with_backend!(conn, |c| diesel::insert_into(sync_runs::table)
        .values((
            sync_runs::profile_id.eq(profile_id),
            sync_runs::triggered_by.eq(triggered_by),
            sync_runs::started_by.eq(started_by),
            sync_runs::dry_run.eq(dry_run),
            sync_runs::status.eq(RunStatus::Running),
            sync_runs::phase.eq("connecting"),
            sync_runs::started_at.eq(crate::db::now()),
        ))
        .returning(sync_runs::id)
        .get_result(c))
}

pub fn set_phase(conn: &mut DbConnection, id: RunId, phase: &str) -> QueryResult<()> {
    diesel::update(sync_runs::table.find(id))
        .set(sync_runs::phase.eq(phase))
        .execute(conn)?;
    Ok(())
}

/// Copies a live run's progress into its row and tells whether an admin asked to cancel it.
pub fn report_progress(
    conn: &mut DbConnection,
    id: RunId,
    phase: &str,
    users: u64,
    groups: u64,
) -> QueryResult<bool> {
    let n = |x: u64| i32::try_from(x).unwrap_or(i32::MAX);
    diesel::update(
        sync_runs::table
            .find(id)
            .filter(sync_runs::status.eq(RunStatus::Running))
            .filter(sync_runs::phase.ne("applying")),
    )
    .set((
        sync_runs::phase.eq(phase),
        sync_runs::progress_users.eq(n(users)),
        sync_runs::progress_groups.eq(n(groups)),
        sync_runs::heartbeat_at.eq(crate::db::now()),
    ))
    .execute(conn)?;
    sync_runs::table
        .find(id)
        .select(sync_runs::cancel_requested)
        .first(conn)
        .optional()
        .map(|c| c.unwrap_or(false))
}

/// An admin asks a running run to stop. Whether it stops is decided by `begin_applying`.
pub fn request_cancel(conn: &mut DbConnection, id: RunId) -> QueryResult<bool> {
    let n = diesel::update(
        sync_runs::table
            .find(id)
            .filter(sync_runs::status.eq(RunStatus::Running))
            .filter(sync_runs::phase.ne("applying")),
    )
    .set(sync_runs::cancel_requested.eq(true))
    .execute(conn)?;
    Ok(n == 1)
}

/// The point of no return: moves the run to `applying` unless a cancel came first. The two
/// conditional updates are serialised by the database, so exactly one of them wins. The
/// plan's counts are written now, so the run's page shows what is being applied.
pub fn begin_applying(conn: &mut DbConnection, id: RunId, planned: &Counts) -> QueryResult<bool> {
    let n = diesel::update(
        sync_runs::table
            .find(id)
            .filter(sync_runs::cancel_requested.eq(false)),
    )
    .set((sync_runs::phase.eq("applying"), planned))
    .execute(conn)?;
    Ok(n == 1)
}

/// The profile's synchronisation that is running now (not a dry run), if any.
pub fn running_of_profile(
    conn: &mut DbConnection,
    profile_id: ProfileId,
) -> QueryResult<Option<RunId>> {
    sync_runs::table
        .filter(sync_runs::profile_id.eq(profile_id))
        .filter(sync_runs::status.eq(RunStatus::Running))
        .filter(sync_runs::dry_run.eq(false))
        .order(sync_runs::id.desc())
        .select(sync_runs::id)
        .first(conn)
        .optional()
}

/// The counts a run reports (planned for dry runs and held runs, applied otherwise); a
/// changeset of the run's count columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = sync_runs)]
pub struct Counts {
    pub users_created: i32,
    pub users_updated: i32,
    pub users_deleted: i32,
    pub users_unchanged: i32,
    pub groups_created: i32,
    pub groups_updated: i32,
    pub groups_deleted: i32,
    pub memberships_added: i32,
    pub memberships_removed: i32,
}

impl Counts {
    /// The counts a run row holds.
    pub fn of(run: &SyncRun) -> Counts {
        Counts {
            users_created: run.users_created,
            users_updated: run.users_updated,
            users_deleted: run.users_deleted,
            users_unchanged: run.users_unchanged,
            groups_created: run.groups_created,
            groups_updated: run.groups_updated,
            groups_deleted: run.groups_deleted,
            memberships_added: run.memberships_added,
            memberships_removed: run.memberships_removed,
        }
    }
}

pub fn finish(
    conn: &mut DbConnection,
    id: RunId,
    status: RunStatus,
    counts: Counts,
    error: Option<&str>,
    plan: Option<&str>,
) -> QueryResult<()> {
    diesel::update(sync_runs::table.find(id))
        .set((
            sync_runs::status.eq(status),
            sync_runs::phase.eq(""),
            &counts,
            sync_runs::error.eq(error),
            sync_runs::plan.eq(plan),
            sync_runs::finished_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves a held run on (to succeeded or discarded) unless someone else already did.
pub fn settle_held(conn: &mut DbConnection, id: RunId, status: RunStatus) -> QueryResult<bool> {
    let n = diesel::update(
        sync_runs::table
            .find(id)
            .filter(sync_runs::status.eq(RunStatus::Held)),
    )
    .set((
        sync_runs::status.eq(status),
        sync_runs::finished_at.eq(crate::db::now()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn find(conn: &mut DbConnection, id: RunId) -> QueryResult<Option<SyncRun>> {
    sync_runs::table
        .find(id)
        .select(SyncRun::as_select())
        .first(conn)
        .optional()
}

/// A run as the history lists it: everything but its plan (which can be large).
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = sync_runs)]
pub struct RunSummary {
    pub id: RunId,
    pub triggered_by: String,
    pub started_by: String,
    pub dry_run: bool,
    pub status: RunStatus,
    pub users_created: i32,
    pub users_updated: i32,
    pub users_deleted: i32,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

pub fn for_profile(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    limit: i64,
) -> QueryResult<Vec<RunSummary>> {
    sync_runs::table
        .filter(sync_runs::profile_id.eq(profile_id))
        .order(sync_runs::id.desc())
        .limit(limit)
        .select(RunSummary::as_select())
        .load(conn)
}

/// Each profile's newest run.
pub fn latest_per_profile(
    conn: &mut DbConnection,
) -> QueryResult<std::collections::HashMap<ProfileId, RunSummary>> {
    let newest: Vec<Option<RunId>> = sync_runs::table
        .group_by(sync_runs::profile_id)
        .select(diesel::dsl::max(sync_runs::id))
        .load(conn)?;
    let ids: Vec<RunId> = newest.into_iter().flatten().collect();
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(ProfileId, RunSummary)> = sync_runs::table
            .filter(sync_runs::id.eq_any(chunk))
            .select((sync_runs::profile_id, RunSummary::as_select()))
            .load(conn)?;
        found.extend(rows);
    }
    Ok(found)
}

/// Runs left `running` by a process that died (its lease expired) are failed.
pub fn fail_stale(
    conn: &mut DbConnection,
    profile_id: ProfileId,
    except: RunId,
) -> QueryResult<usize> {
    diesel::update(
        sync_runs::table
            .filter(sync_runs::profile_id.eq(profile_id))
            .filter(sync_runs::status.eq(RunStatus::Running))
            .filter(sync_runs::dry_run.eq(false))
            .filter(sync_runs::id.ne(except)),
    )
    .set((
        sync_runs::status.eq(RunStatus::Failed),
        sync_runs::error.eq(ABANDONED),
        sync_runs::finished_at.eq(crate::db::now()),
    ))
    .execute(conn)
}

/// What the message of a run says when the instance running it went away.
const ABANDONED: &str =
    "the instance running this synchronisation stopped before it finished; nothing was changed";

/// Runs whose instance died are failed: a run that applies once its lease has expired (or
/// is gone), a dry run (no lease) once it has not reported for `seconds`. Returns how many.
pub fn fail_abandoned(conn: &mut DbConnection, now: i64, seconds: i64) -> QueryResult<usize> {
    let leased = sync_leases::table
        .filter(sync_leases::run_id.eq(sync_runs::id))
        .filter(sync_leases::expires_at.ge(now));
    let unleased = sync_runs::dry_run
        .eq(false)
        .and(diesel::dsl::not(diesel::dsl::exists(leased)));
    let silent = sync_runs::dry_run.eq(true).and(
        sync_runs::heartbeat_at
            .lt(now - seconds)
            .or(sync_runs::heartbeat_at
                .is_null()
                .and(sync_runs::started_at.lt(now - seconds))),
    );
    diesel::update(
        sync_runs::table
            .filter(sync_runs::status.eq(RunStatus::Running))
            .filter(unleased.or(silent)),
    )
    .set((
        sync_runs::status.eq(RunStatus::Failed),
        sync_runs::phase.eq(""),
        sync_runs::error.eq(ABANDONED),
        sync_runs::finished_at.eq(now),
    ))
    .execute(conn)
}

/// A run in the list of all runs: its summary and its profile's name.
#[derive(Queryable, Clone, Debug)]
pub struct RunListRow {
    pub run: RunSummary,
    pub profile_id: ProfileId,
    pub profile_name: String,
    pub error: Option<String>,
}

/// Which runs a list shows.
#[derive(Default, Clone, Debug)]
pub struct RunFilter {
    pub profile_id: Option<ProfileId>,
    pub status: Option<RunStatus>,
    /// Only runs older than this one (paging).
    pub before: Option<RunId>,
}

/// The newest runs matching `filter`, newest first.
pub fn list(
    conn: &mut DbConnection,
    filter: &RunFilter,
    limit: i64,
) -> QueryResult<Vec<RunListRow>> {
    let mut query = sync_runs::table
        .inner_join(directory_profiles::table)
        .order(sync_runs::id.desc())
        .limit(limit)
        .select((
            RunSummary::as_select(),
            sync_runs::profile_id,
            directory_profiles::name,
            sync_runs::error,
        ))
        .into_boxed();
    if let Some(profile_id) = filter.profile_id {
        query = query.filter(sync_runs::profile_id.eq(profile_id));
    }
    if let Some(status) = &filter.status {
        query = query.filter(sync_runs::status.eq(*status));
    }
    if let Some(before) = filter.before {
        query = query.filter(sync_runs::id.lt(before));
    }
    query.load(conn)
}

/// The newest run of a profile, live or finished.
pub fn latest_of_profile(
    conn: &mut DbConnection,
    profile_id: ProfileId,
) -> QueryResult<Option<SyncRun>> {
    sync_runs::table
        .filter(sync_runs::profile_id.eq(profile_id))
        .order(sync_runs::id.desc())
        .select(SyncRun::as_select())
        .first(conn)
        .optional()
}

/// Statuses of these runs, by id.
pub fn statuses(conn: &mut DbConnection, ids: &[RunId]) -> QueryResult<Vec<(RunId, RunStatus)>> {
    sync_runs::table
        .filter(sync_runs::id.eq_any(ids.to_vec()))
        .select((sync_runs::id, sync_runs::status))
        .load(conn)
}
