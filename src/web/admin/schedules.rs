//! `/admin/schedules`: when profiles synchronise on their own — the list (all, or one
//! profile's), create (also from a profile's "Create schedule"), edit, enable / disable and
//! delete. The runs themselves are started by the scheduler (`crate::jobs::scheduler`).

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::db::ids::{ProfileId, RunId, ScheduleId};
use crate::error::AppError;
use crate::page;
use crate::schedules::{ScheduleInput, WEEKDAYS};
use crate::services::schedules::{self as schedules_service, Saved};
use crate::time::{format_in_zone, format_time};
use crate::validation::FieldErrors;
use crate::web::extract::Admin;
use crate::web::page::Page;
use crate::web::render::Choice;

pub struct ScheduleRow {
    pub id: ScheduleId,
    pub profile_id: ProfileId,
    pub profile_name: String,
    pub when: String,
    pub enabled: bool,
    pub next_run: String,
    pub last_run: String,
    pub last_run_id: Option<RunId>,
    pub last_status: String,
}

#[derive(Template)]
#[template(path = "partials/admin/schedules_partial.html")]
pub struct SchedulesPartial {
    pub title: String,
    pub csrf_token: String,
    /// The profile the list is limited to: (id, name).
    pub profile: Option<(ProfileId, String)>,
    pub rows: Vec<ScheduleRow>,
}
page!(
    SchedulesPage,
    "pages/admin/schedules.html",
    SchedulesPartial
);

#[derive(Deserialize)]
pub struct ProfileQuery {
    profile: Option<String>,
}

impl ProfileQuery {
    fn profile_id(&self) -> Option<ProfileId> {
        self.profile.as_deref().and_then(|p| p.trim().parse().ok())
    }
}

pub async fn list(page: Page<Admin>, query: Query<ProfileQuery>) -> Result<HttpResponse, AppError> {
    let only = query.profile_id();
    let schedules_service::Listing {
        profile,
        rows: listed,
        statuses,
    } = schedules_service::list(&page.state, only).await?;
    let rows = listed
        .into_iter()
        .map(|row| {
            let s = row.schedule;
            let when = s.when();
            let zone = when.as_ref().map(|w| w.time_zone).unwrap_or(chrono_tz::UTC);
            let last_status = s
                .last_run_id
                .and_then(|id| statuses.iter().find(|(r, _)| *r == id))
                .map(|(_, status)| status.to_string())
                .unwrap_or_default();
            ScheduleRow {
                id: s.id,
                profile_id: s.profile_id,
                profile_name: row.profile_name,
                when: s.describe(),
                enabled: s.enabled,
                next_run: match (s.enabled, s.next_run_at) {
                    (true, Some(at)) => format_in_zone(at, zone),
                    _ => "—".into(),
                },
                last_run: s
                    .last_run_at
                    .map(format_time)
                    .unwrap_or_else(|| "never".into()),
                last_run_id: s.last_run_id,
                last_status,
            }
        })
        .collect();
    let title = match &profile {
        Some((_, name)) => format!("Schedules of {name}"),
        None => "Schedules".into(),
    };
    let partial = SchedulesPartial {
        title,
        csrf_token: page.csrf_token.clone(),
        profile,
        rows,
    };
    page.render(StatusCode::OK, partial, "schedules")
}

#[derive(Template)]
#[template(path = "partials/admin/schedule_form_partial.html")]
pub struct ScheduleFormPartial {
    pub title: String,
    pub csrf_token: String,
    pub editing: Option<ScheduleId>,
    pub input: ScheduleInput,
    pub errors: FieldErrors,
    /// Profiles that can synchronise: (id, name).
    pub profiles: Vec<(ProfileId, String)>,
    pub days: Vec<Choice>,
    pub time_zones: Vec<&'static str>,
    /// When the saved schedule runs next, if it is enabled.
    pub next_run: Option<String>,
}
page!(
    ScheduleFormPage,
    "pages/admin/schedule_form.html",
    ScheduleFormPartial
);

impl ScheduleFormPartial {
    pub fn action(&self) -> String {
        match self.editing {
            Some(id) => format!("/admin/schedules/{id}"),
            None => "/admin/schedules".into(),
        }
    }
    pub fn is_profile(&self, id: &ProfileId) -> bool {
        self.input.profile == id.to_string()
    }
}

/// What the form shows besides the page around it.
struct FormView {
    editing: Option<ScheduleId>,
    input: ScheduleInput,
    errors: FieldErrors,
    next_run: Option<String>,
}

impl FormView {
    fn new(editing: Option<ScheduleId>, input: ScheduleInput) -> FormView {
        FormView {
            editing,
            input,
            errors: FieldErrors::default(),
            next_run: None,
        }
    }
    fn with_errors(
        editing: Option<ScheduleId>,
        input: ScheduleInput,
        errors: FieldErrors,
    ) -> FormView {
        FormView {
            errors,
            ..FormView::new(editing, input)
        }
    }
}

async fn form(
    page: &Page<Admin>,
    status: StatusCode,
    view: FormView,
) -> Result<HttpResponse, AppError> {
    let FormView {
        editing,
        input,
        errors,
        next_run,
    } = view;
    let profiles = schedules_service::syncable_profiles(&page.state).await?;
    let days = WEEKDAYS
        .iter()
        .map(|(_, key, label)| Choice {
            value: key,
            label,
            chosen: input.days.iter().any(|d| d == key),
        })
        .collect();
    let partial = ScheduleFormPartial {
        title: match editing {
            Some(id) => format!("Schedule {id}"),
            None => "New schedule".into(),
        },
        csrf_token: page.csrf_token.clone(),
        editing,
        input,
        errors,
        profiles,
        days,
        time_zones: chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect(),
        next_run,
    };
    page.render(status, partial, "schedules")
}

/// GET `/admin/schedules/new?profile=ID`.
pub async fn new_form(
    page: Page<Admin>,
    query: Query<ProfileQuery>,
) -> Result<HttpResponse, AppError> {
    let input = ScheduleInput::defaults(query.profile_id());
    form(&page, StatusCode::OK, FormView::new(None, input)).await
}

/// POST `/admin/schedules`.
pub async fn create(page: Page<Admin>, body: Bytes) -> Result<HttpResponse, AppError> {
    let input = ScheduleInput::parse(&body);
    save(&page, None, input).await
}

/// Saves the form, or shows it again with its errors.
async fn save(
    page: &Page<Admin>,
    id: Option<ScheduleId>,
    input: ScheduleInput,
) -> Result<HttpResponse, AppError> {
    match schedules_service::save(&page.state, &page.actor(), id, &input).await? {
        Saved::Saved { profile_id } => Ok(page.redirect_with(
            &format!("/admin/schedules?profile={profile_id}"),
            if id.is_some() {
                "Schedule saved."
            } else {
                "Schedule created."
            },
        )),
        Saved::Invalid(errors) => {
            let view = FormView::with_errors(id, input, errors);
            form(page, StatusCode::UNPROCESSABLE_ENTITY, view).await
        }
    }
}

/// GET `/admin/schedules/{id}`.
pub async fn edit_form(
    page: Page<Admin>,
    path: Path<ScheduleId>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let schedule = schedules_service::find(&page.state, id).await?;
    let when = schedule
        .when()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("schedule {id} cannot be read")))?;
    let next_run = schedule
        .next_run_at
        .filter(|_| schedule.enabled)
        .map(|at| format_in_zone(at, when.time_zone));
    let input = ScheduleInput::of(schedule.profile_id, &when, schedule.enabled);
    let view = FormView {
        next_run,
        ..FormView::new(Some(id), input)
    };
    form(&page, StatusCode::OK, view).await
}

/// POST `/admin/schedules/{id}`: the next run is worked out again from the new settings.
pub async fn update(
    page: Page<Admin>,
    path: Path<ScheduleId>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let input = ScheduleInput::parse(&body);
    save(&page, Some(id), input).await
}

/// POST `/admin/schedules/{id}/enabled` with `enabled=1` or `enabled=0`.
pub async fn set_enabled(
    page: Page<Admin>,
    path: Path<ScheduleId>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let enabled = url::form_urlencoded::parse(&body).any(|(k, v)| k == "enabled" && v == "1");
    schedules_service::set_enabled(&page.state, &page.actor(), id, enabled).await?;
    let notice = if enabled {
        "Schedule enabled."
    } else {
        "Schedule paused: it starts no run until enabled."
    };
    Ok(page.redirect_with(&back_to_list(&page.req), notice))
}

/// POST `/admin/schedules/{id}/delete`.
pub async fn delete(page: Page<Admin>, path: Path<ScheduleId>) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    schedules_service::delete(&page.state, &page.actor(), id).await?;
    Ok(page.redirect_with(&back_to_list(&page.req), "Schedule deleted."))
}

/// The list the admin came from (all schedules, or one profile's).
fn back_to_list(req: &HttpRequest) -> String {
    req.headers()
        .get("referer")
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| u.path() == "/admin/schedules")
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "profile")
                .and_then(|(_, v)| v.parse::<i64>().ok())
        })
        .map(|p| format!("/admin/schedules?profile={p}"))
        .unwrap_or_else(|| "/admin/schedules".into())
}
