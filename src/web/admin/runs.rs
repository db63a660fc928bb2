//! Synchronisation runs: "Test settings" (dry run) and "Synchronise now" from a profile, the
//! run page (live while it runs, the plan searchable, approve/discard when held), and a
//! profile's history.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Path, Query};
use askama::Template;
use serde::Deserialize;

use crate::db::ids::{ProfileId, RunId};
use crate::db::models::sync_runs::{self, RunStatus, RunSummary, SyncRun};
use crate::error::AppError;
use crate::page;
use crate::services::runs;
use crate::sync::plan::{Action, GroupChange, UserChange};
use crate::time::{format_duration, format_optional, format_time};
use crate::web::extract::Admin;
use crate::web::page::Page;

/// POST `/admin/profiles/{id}/sync` (`dry_run=1` for "Test settings", `full=1` for "Full
/// synchronisation"): starts the run in the background and shows its page, which follows
/// it live.
pub async fn start(
    page: Page<Admin>,
    path: Path<ProfileId>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let flag = |name: &str| url::form_urlencoded::parse(&body).any(|(k, v)| k == name && v == "1");
    let dry_run = flag("dry_run");
    let read = if flag("full") {
        runs::Read::Everything
    } else {
        runs::Read::Changes
    };
    let run_id = match runs::start(&page.state, &page.actor(), id, dry_run, read).await? {
        runs::Start::Started(run_id) => run_id,
        runs::Start::AlreadyRunning(Some(running)) => {
            return Ok(page.redirect_with(
                &format!("/admin/runs/{running}"),
                "A synchronisation of this profile is already running: here it is.",
            ));
        }
        runs::Start::AlreadyRunning(None) => {
            return Ok(page.redirect_with(
                &format!("/admin/profiles/{id}"),
                "A synchronisation of this profile is already running.",
            ));
        }
    };
    let notice = match (dry_run, read) {
        (true, _) => "Testing the settings: a dry run that changes nothing.",
        (false, runs::Read::Everything) => {
            "Full synchronisation started: the whole directory is read again."
        }
        (false, runs::Read::Changes) => "Synchronisation started.",
    };
    Ok(page.redirect_with(&format!("/admin/runs/{run_id}"), notice))
}

#[derive(Template)]
#[template(path = "partials/admin/run_partial.html")]
pub struct RunPartial {
    pub title: String,
    pub csrf_token: String,
    /// The row, its stored plan taken out (read into the plan lists below).
    pub run: SyncRun,
    /// The run stored a plan (failed and running runs have none).
    pub stored_plan: bool,
    pub profile_name: String,
    pub started: String,
    pub finished: String,
    /// How long it has been running (live runs).
    pub elapsed: String,
    pub query: String,
    pub held: Option<String>,
    pub warnings: Vec<String>,
    pub scope: Option<String>,
    /// What a dry run's or an approved run's hold said.
    pub hold_note: Option<String>,
    pub users: Vec<UserChange>,
    pub groups: Vec<GroupChange>,
    /// The changes a stored plan keeps of each kind.
    pub stored_limit: usize,
    /// Where this page of changes starts (1-based), its number, and the pages beside it.
    pub first_shown: usize,
    pub page_number: usize,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
    pub users_total: usize,
    pub groups_total: usize,
    pub memberships_added: i32,
    pub memberships_removed: i32,
    pub source_users: usize,
    /// Only the first changes of a large run are kept.
    pub truncated: bool,
}
page!(RunPage, "pages/admin/run.html", RunPartial);

impl RunPartial {
    pub fn running(&self) -> bool {
        self.run.status == RunStatus::Running
    }
    /// Failed and cancelled runs have no plan to show.
    pub fn has_plan(&self) -> bool {
        !self.running() && self.stored_plan && self.run.status != RunStatus::Cancelled
    }
    /// The counts and changes are what would happen (a dry run, a held or discarded run).
    pub fn planned(&self) -> bool {
        self.run.dry_run || matches!(self.run.status, RunStatus::Held | RunStatus::Discarded)
    }
    pub fn action_label(&self, action: &Action) -> &'static str {
        let planned = self.planned();
        match (action, planned) {
            (Action::Create, true) => "would be created",
            (Action::Update, true) => "would be updated",
            (Action::Delete, true) => "would be deleted",
            (Action::Create, false) => "created",
            (Action::Update, false) => "updated",
            (Action::Delete, false) => "deleted",
        }
    }
}

#[derive(Deserialize)]
pub struct RunQuery {
    #[serde(default)]
    q: String,
    page: Option<String>,
}

/// Changes shown per list on one page; the counts above them are always complete.
const SHOWN: usize = 100;

pub async fn show(
    page: Page<Admin>,
    path: Path<RunId>,
    query: Query<RunQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let runs::RunView {
        run,
        profile_name,
        plan,
        stored_plan,
    } = runs::view(&page.state, id).await?;
    let q = query.q.trim().to_lowercase();
    let matches =
        |texts: &[&str]| q.is_empty() || texts.iter().any(|t| t.to_lowercase().contains(&q));
    let users: Vec<UserChange> = plan
        .users
        .iter()
        .filter(|u| {
            let previous = u.previous_username.as_deref().unwrap_or("");
            let mut texts = vec![u.username.as_str(), u.full_name.as_str(), previous];
            texts.extend(u.emails.iter().map(String::as_str));
            matches(&texts)
        })
        .cloned()
        .collect();
    let groups: Vec<GroupChange> = plan
        .groups
        .iter()
        .filter(|g| matches(&[g.name.as_str(), g.previous_name.as_deref().unwrap_or("")]))
        .cloned()
        .collect();
    // A page number that is not a number is page 1; one past the end shows nothing.
    let number = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    let skip = (number - 1) * SHOWN;
    let link = |n: usize| {
        let q: String = url::form_urlencoded::byte_serialize(query.q.trim().as_bytes()).collect();
        format!("/admin/runs/{id}?q={q}&page={n}")
    };
    let partial = RunPartial {
        title: format!("Run {id} of {profile_name}"),
        csrf_token: page.csrf_token.clone(),
        started: format_time(run.started_at),
        finished: format_optional(run.finished_at),
        elapsed: format_duration(crate::db::now() - run.started_at),
        profile_name,
        query: query.q.trim().to_owned(),
        held: plan.held.clone().filter(|_| run.status == RunStatus::Held),
        hold_note: plan.held.as_ref().and_then(|reason| {
            if run.dry_run {
                Some(format!(
                    "A synchronisation that applies would be held for approval: {reason}."
                ))
            } else if run.status == RunStatus::Succeeded {
                Some(format!(
                    "Applied after an administrator approved it; it was held because {reason}."
                ))
            } else {
                None
            }
        }),
        warnings: plan.warnings.clone(),
        users_total: users.len(),
        groups_total: groups.len(),
        first_shown: skip + 1,
        prev_link: (number > 1).then(|| link(number - 1)),
        next_link: (users.len().max(groups.len()) > skip + SHOWN).then(|| link(number + 1)),
        page_number: number,
        users: users.into_iter().skip(skip).take(SHOWN).collect(),
        groups: groups.into_iter().skip(skip).take(SHOWN).collect(),
        stored_limit: crate::sync::plan::STORED_CHANGES,
        // The row's counts are complete; the stored lists may be cut short.
        memberships_added: run.memberships_added,
        memberships_removed: run.memberships_removed,
        scope: plan.scope.clone(),
        source_users: plan.source_users,
        truncated: plan.truncated,
        stored_plan,
        run,
    };
    page.render(StatusCode::OK, partial, "profiles")
}

pub async fn approve(page: Page<Admin>, path: Path<RunId>) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    runs::approve(&page.state, &page.actor(), id).await?;
    Ok(page.redirect_with(
        &format!("/admin/runs/{id}"),
        "Approved: the held plan is being applied.",
    ))
}

pub async fn discard(page: Page<Admin>, path: Path<RunId>) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    runs::discard(&page.state, &page.actor(), id).await?;
    Ok(page.redirect_with(
        &format!("/admin/runs/{id}"),
        "Discarded: nothing of the held plan was applied.",
    ))
}

/// POST `/admin/runs/{id}/cancel`: a run stops before it applies anything; once it is
/// applying, it finishes.
pub async fn cancel(page: Page<Admin>, path: Path<RunId>) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    runs::cancel(&page.state, &page.actor(), id).await?;
    Ok(page.redirect_with(
        &format!("/admin/runs/{id}"),
        "Cancel asked: the run stops unless it is already applying.",
    ))
}

pub struct RunRow {
    pub run: RunSummary,
    pub profile_id: ProfileId,
    pub profile_name: String,
    pub started: String,
    pub duration: String,
    /// The first line of the error, if the run failed.
    pub error: String,
}

#[derive(Template)]
#[template(path = "partials/admin/runs_partial.html")]
pub struct RunsPartial {
    pub title: String,
    /// The profile the list is limited to: (id, name).
    pub profile: Option<(ProfileId, String)>,
    pub base: String,
    pub status: String,
    pub statuses: &'static [RunStatus],
    pub rows: Vec<RunRow>,
    pub next_link: Option<String>,
}
page!(RunsPage, "pages/admin/runs.html", RunsPartial);

#[derive(Deserialize)]
pub struct RunsQuery {
    #[serde(default)]
    status: String,
    before: Option<String>,
}

const RUNS_PAGE: i64 = 50;

/// GET `/admin/runs`: every profile's runs, newest first, by status.
pub async fn list(page: Page<Admin>, query: Query<RunsQuery>) -> Result<HttpResponse, AppError> {
    runs_page(&page, None, &query).await
}

/// GET `/admin/profiles/{id}/runs`: one profile's history.
pub async fn history(
    page: Page<Admin>,
    path: Path<ProfileId>,
    query: Query<RunsQuery>,
) -> Result<HttpResponse, AppError> {
    runs_page(&page, Some(path.into_inner()), &query).await
}

async fn runs_page(
    page: &Page<Admin>,
    profile_id: Option<ProfileId>,
    query: &RunsQuery,
) -> Result<HttpResponse, AppError> {
    let status = RunStatus::parse(&query.status);
    let filter = sync_runs::RunFilter {
        profile_id,
        status,
        before: query.before.as_deref().and_then(|b| b.parse().ok()),
    };
    let (profile, listed) = runs::list(&page.state, filter, RUNS_PAGE + 1).await?;
    let base = match profile_id {
        Some(id) => format!("/admin/profiles/{id}/runs"),
        None => "/admin/runs".into(),
    };
    let status = status.map(|s| s.to_string()).unwrap_or_default();
    let next_link = (listed.len() as i64 > RUNS_PAGE)
        .then(|| listed.get(RUNS_PAGE as usize - 1).map(|r| r.run.id))
        .flatten()
        .map(|last| format!("{base}?status={status}&before={last}"));
    let rows = listed
        .into_iter()
        .take(RUNS_PAGE as usize)
        .map(|row| RunRow {
            started: format_time(row.run.started_at),
            duration: row
                .run
                .finished_at
                .map(|f| format!("{} s", (f - row.run.started_at).max(0)))
                .unwrap_or_else(|| "…".into()),
            error: row
                .error
                .as_deref()
                .and_then(|e| e.lines().next())
                .unwrap_or_default()
                .to_owned(),
            profile_id: row.profile_id,
            profile_name: row.profile_name,
            run: row.run,
        })
        .collect();
    let title = match &profile {
        Some((_, name)) => format!("History of {name}"),
        None => "Synchronisation runs".into(),
    };
    let partial = RunsPartial {
        title,
        profile,
        base,
        status,
        statuses: RunStatus::ALL,
        rows,
        next_link,
    };
    page.render(StatusCode::OK, partial, "runs")
}

#[derive(Template)]
#[template(path = "partials/admin/run_status_partial.html")]
pub struct RunStatusPartial {
    pub title: String,
    pub csrf_token: String,
    pub profile_id: ProfileId,
    pub run: Option<SyncRun>,
    pub elapsed: String,
    pub finished: String,
}
page!(
    RunStatusPage,
    "pages/admin/run_status.html",
    RunStatusPartial
);

impl RunStatusPartial {
    pub fn running(&self) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| r.status == RunStatus::Running)
    }
    /// A synchronisation (not a dry run) is going: "Synchronise now" would only lead to it.
    pub fn synchronising(&self) -> bool {
        self.running() && self.run.as_ref().is_some_and(|r| !r.dry_run)
    }
    /// The counts are what would happen (a dry run, a held run), not what did.
    pub fn planned(&self) -> bool {
        self.run.as_ref().is_some_and(|r| {
            r.dry_run || matches!(r.status, RunStatus::Held | RunStatus::Discarded)
        })
    }
}

/// GET `/admin/profiles/{id}/run-status`: the profile's current or last run, refreshing
/// itself every second while it runs (the profile page loads it).
pub async fn profile_run_status(
    page: Page<Admin>,
    path: Path<ProfileId>,
) -> Result<HttpResponse, AppError> {
    let profile_id = path.into_inner();
    let (name, run) = runs::latest_of_profile(&page.state, profile_id).await?;
    let partial = RunStatusPartial {
        title: format!("Runs of {name}"),
        csrf_token: page.csrf_token.clone(),
        profile_id,
        elapsed: run
            .as_ref()
            .map(|r| format_duration(crate::db::now() - r.started_at))
            .unwrap_or_default(),
        finished: run
            .as_ref()
            .map(|r| format_optional(r.finished_at))
            .unwrap_or_default(),
        run,
    };
    page.render(StatusCode::OK, partial, "profiles")
}
