//! `/admin`: counts at a glance and the latest audit events.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::error::AppError;
use crate::page;
use crate::services::dashboard;
use crate::web::admin::audit::EventLine;
use crate::web::extract::Admin;
use crate::web::page::Page;

#[derive(Template)]
#[template(path = "partials/admin/dashboard_partial.html")]
pub struct DashboardPartial {
    pub title: String,
    pub users: i64,
    pub groups: i64,
    pub profiles: i64,
    pub sessions: i64,
    pub events: Vec<EventLine>,
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
        events: summary.events.into_iter().map(EventLine::of).collect(),
    };
    page.render(StatusCode::OK, partial, "dashboard")
}
