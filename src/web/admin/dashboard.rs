//! `/admin`: counts at a glance and the latest audit events.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::error::AppError;
use crate::page;
use crate::services::dashboard;
use crate::time::format_time;
use crate::web::extract::Admin;
use crate::web::page::Page;

pub struct AuditLine {
    pub when: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "partials/admin/dashboard_partial.html")]
pub struct DashboardPartial {
    pub title: String,
    pub users: i64,
    pub groups: i64,
    pub profiles: i64,
    pub sessions: i64,
    pub events: Vec<AuditLine>,
}
page!(
    DashboardPage,
    "pages/admin/dashboard.html",
    DashboardPartial
);

pub async fn show(page: Page<Admin>) -> Result<HttpResponse, AppError> {
    let summary = dashboard::summary(&page.state, 15).await?;
    let partial = DashboardPartial {
        title: "Dashboard".into(),
        users: summary.users,
        groups: summary.groups,
        profiles: summary.profiles,
        sessions: summary.sessions,
        events: summary
            .events
            .into_iter()
            .map(|e| AuditLine {
                when: format_time(e.occurred_at),
                actor: e.actor_name,
                action: e.action.replace('_', " "),
                target: e.target,
                detail: e.detail,
            })
            .collect(),
    };
    page.render(StatusCode::OK, partial, "dashboard")
}
