//! "Are you sure?" before a destructive action: a page of its own without JavaScript, the
//! same partial in the console's dialog with htmx. It says what will happen and posts the
//! action's own form, so the action's endpoint stays the one place that does it.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Path;
use askama::Template;

use crate::db::ids::{RunId, ScheduleId, UserId};
use crate::error::AppError;
use crate::page;
use crate::services::{runs, schedules as schedules_service, users as users_service};
use crate::web::extract::Admin;
use crate::web::page::Page;

#[derive(Template)]
#[template(path = "partials/admin/confirm_partial.html")]
pub struct ConfirmPartial {
    pub title: String,
    /// What happens, sentence by sentence.
    pub consequences: Vec<String>,
    pub csrf_token: String,
    /// Where the form posts, and its fields besides the token.
    pub action: String,
    pub fields: Vec<(&'static str, &'static str)>,
    pub button: String,
    /// Where "Cancel" goes without JavaScript.
    pub cancel: String,
}
page!(ConfirmPage, "pages/admin/confirm.html", ConfirmPartial);

/// GET `/admin/users/{id}/confirm/{action}`: disable, delete or reset MFA.
pub async fn user_action(
    page: Page<Admin>,
    path: Path<(UserId, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, action) = path.into_inner();
    let detail = users_service::detail(&page.state, id).await?;
    let name = detail.user.login_name();
    let directory = detail.user.profile_id.is_some();
    let (title, consequences, value, button) = match action.as_str() {
        "disable" => (
            format!("Disable {name}?"),
            vec![
                format!(
                    "{name} is signed out everywhere at once and cannot sign in until enabled again."
                ),
                "Nothing else changes: privileges, groups and MFA stay as they are.".into(),
            ],
            "disable",
            "Disable and sign out",
        ),
        "delete" => (
            format!("Delete {name}?"),
            vec![
                format!(
                    "{name}'s sessions, MFA enrolment, recovery codes and privileges are deleted; this cannot be undone."
                ),
                if directory {
                    "The user is still in the directory: the profile's next synchronisation creates them again, as a new user.".into()
                } else {
                    "The user was created in Roster: they are gone for good.".into()
                },
                "Audit events about them stay.".into(),
            ],
            "delete",
            "Delete user",
        ),
        "reset_mfa" => (
            format!("Reset {name}'s MFA?"),
            vec![
                format!("{name}'s authenticator key and recovery codes stop working at once."),
                "If MFA is required, they enrol a new authenticator at their next sign-in.".into(),
            ],
            "reset_mfa",
            "Reset MFA",
        ),
        _ => return Err(AppError::NotFound),
    };
    let partial = ConfirmPartial {
        title,
        consequences,
        csrf_token: page.csrf_token.clone(),
        action: format!("/admin/users/{id}/action"),
        fields: vec![("action", value)],
        button: button.into(),
        cancel: format!("/admin/users/{id}"),
    };
    page.render(StatusCode::OK, partial, "users")
}

/// GET `/admin/schedules/{id}/delete`.
pub async fn schedule_delete(
    page: Page<Admin>,
    path: Path<ScheduleId>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let schedule = schedules_service::find(&page.state, id).await?;
    let when = schedule.describe();
    let partial = ConfirmPartial {
        title: "Delete this schedule?".into(),
        consequences: vec![
            format!("“{when}” starts no more runs. A run it started already goes on."),
            "Its past runs stay in the history.".into(),
        ],
        csrf_token: page.csrf_token.clone(),
        action: format!("/admin/schedules/{id}/delete"),
        fields: Vec::new(),
        button: "Delete schedule".into(),
        cancel: "/admin/schedules".into(),
    };
    page.render(StatusCode::OK, partial, "schedules")
}

/// GET `/admin/runs/{id}/discard`.
pub async fn run_discard(page: Page<Admin>, path: Path<RunId>) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let view = runs::view(&page.state, id).await?;
    let partial = ConfirmPartial {
        title: format!("Discard the held run of {}?", view.profile_name),
        consequences: vec![
            "None of its changes is applied; the run is kept in the history as discarded.".into(),
            "The next synchronisation plans afresh, and is held again if it still deletes too much.".into(),
        ],
        csrf_token: page.csrf_token.clone(),
        action: format!("/admin/runs/{id}/discard"),
        fields: Vec::new(),
        button: "Discard".into(),
        cancel: format!("/admin/runs/{id}"),
    };
    page.render(StatusCode::OK, partial, "runs")
}
