//! `/admin/audit`: every audit event, filtered by actor, action, subject and date range,
//! newest first, paged by keyset; `/admin/audit.csv` exports what the filters match.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Query;
use askama::Template;
use serde::Deserialize;

use crate::audit::Action;
use crate::db::models::audit_events::AuditFilter;
use crate::error::AppError;
use crate::page;
use crate::services::audit::{self as audit_service, Event, From, Subject};
use crate::time::format_time;
use crate::validation::FieldErrors;
use crate::web::extract::Admin;
use crate::web::page::Page;

#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    older: Option<String>,
    newer: Option<String>,
}

impl AuditQuery {
    /// The filter, or which date fields are not dates. Texts are cut at 200 characters;
    /// an unknown action matches nothing rather than everything.
    fn filter(&self) -> Result<AuditFilter, FieldErrors> {
        let text = |s: &str| s.trim().chars().take(200).collect::<String>();
        let mut errors = FieldErrors::default();
        let day = |field: &'static str, value: &str, errors: &mut FieldErrors| {
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            match chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
                Ok(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()),
                Err(_) => {
                    errors.add(field, "Enter a date as YYYY-MM-DD (UTC).");
                    None
                }
            }
        };
        let from = day("from", &self.from, &mut errors);
        // "To" includes that whole day.
        let until = day("to", &self.to, &mut errors).map(|t| t + 86_400);
        if let (Some(f), Some(u)) = (from, until)
            && f >= u
        {
            errors.add("to", "The end date must not be before the start date.");
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AuditFilter {
            actor: text(&self.actor),
            action: text(&self.action),
            target: text(&self.target),
            from,
            until,
        })
    }

    fn from(&self) -> From {
        let id = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<i64>().ok());
        match (id(&self.older), id(&self.newer)) {
            (Some(o), _) => From::Older(o),
            (None, Some(n)) => From::Newer(n),
            (None, None) => From::Newest,
        }
    }

    /// The filters as a query string (no paging), for links.
    fn filters(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.finish()
    }
}

/// An event as a row: its words and where its actor and subject link.
pub struct EventLine {
    pub when: String,
    pub actor: String,
    pub actor_link: Option<String>,
    pub action: String,
    pub target: String,
    pub target_link: Option<String>,
    pub detail: String,
    pub client_ip: String,
}

impl EventLine {
    pub fn of(e: Event) -> EventLine {
        EventLine {
            when: format_time(e.occurred_at),
            actor_link: e.actor_user.map(|u| format!("/admin/users/{u}")),
            actor: e.actor,
            action: e.action,
            target_link: e.subject.map(|s| match s {
                Subject::User(id) => format!("/admin/users/{id}"),
                Subject::Profile(id) => format!("/admin/profiles/{id}"),
                Subject::Run(id) => format!("/admin/runs/{id}"),
                Subject::Schedule(id) => format!("/admin/schedules/{id}"),
            }),
            target: e.target,
            detail: e.detail,
            client_ip: e.client_ip,
        }
    }
}

#[derive(Template)]
#[template(path = "partials/admin/audit_partial.html")]
pub struct AuditPartial {
    pub title: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub from: String,
    pub to: String,
    /// (stored name, words) of every action, for the filter.
    pub actions: Vec<(&'static str, &'static str)>,
    pub errors: FieldErrors,
    pub rows: Vec<EventLine>,
    pub total: i64,
    pub export_link: String,
    pub export_limit: i64,
    pub newer_link: Option<String>,
    pub older_link: Option<String>,
}
page!(AuditPage, "pages/admin/audit.html", AuditPartial);

pub async fn list(page: Page<Admin>, query: Query<AuditQuery>) -> Result<HttpResponse, AppError> {
    let filters = query.filters();
    let mut partial = AuditPartial {
        title: "Audit log".into(),
        actor: query.actor.trim().to_owned(),
        action: query.action.trim().to_owned(),
        target: query.target.trim().to_owned(),
        from: query.from.trim().to_owned(),
        to: query.to.trim().to_owned(),
        actions: Action::ALL
            .iter()
            .map(|a| (a.as_str(), a.label()))
            .collect(),
        errors: FieldErrors::default(),
        rows: Vec::new(),
        total: 0,
        export_link: format!("/admin/audit.csv?{filters}"),
        export_limit: audit_service::EXPORT_LIMIT,
        newer_link: None,
        older_link: None,
    };
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(errors) => {
            partial.errors = errors;
            return page.render(StatusCode::UNPROCESSABLE_ENTITY, partial, "audit");
        }
    };
    let found = audit_service::page(&page.state, filter, query.from()).await?;
    let link = |edge: &str, id: i64| {
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("/admin/audit?{filters}{sep}{edge}={id}")
    };
    let window = found.window;
    partial.newer_link = window
        .rows
        .first()
        .filter(|_| window.has_previous)
        .map(|e| link("newer", e.id));
    partial.older_link = window
        .rows
        .last()
        .filter(|_| window.has_next)
        .map(|e| link("older", e.id));
    partial.total = found.total;
    partial.rows = window.rows.into_iter().map(EventLine::of).collect();
    page.render(StatusCode::OK, partial, "audit")
}

pub async fn export(page: Page<Admin>, query: Query<AuditQuery>) -> Result<HttpResponse, AppError> {
    let Ok(filter) = query.filter() else {
        return Ok(HttpResponse::UnprocessableEntity()
            .content_type("text/plain; charset=utf-8")
            .body("A date is not a date: enter it as YYYY-MM-DD (UTC)."));
    };
    let body = audit_service::export(&page.state, filter).await?;
    let name = format!("roster-audit-{}.csv", chrono::Utc::now().format("%Y-%m-%d"));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body))
}
