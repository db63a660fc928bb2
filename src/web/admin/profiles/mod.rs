//! `/admin/profiles`: the directory profiles list (here), the create and edit forms
//! (`form`, type-specific fields swapped in by htmx), Test connection and the group picker
//! (`probe`: dialogs, shown inline for plain form posts), and certificate download,
//! dependent configurations and delete (`delete`). The work is `services::profiles`.

mod delete;
mod form;
mod probe;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Query;
use askama::Template;
use serde::Deserialize;

use crate::db::ids::{ProfileId, RunId};
use crate::db::models::directory_profiles::ProfileKind;
use crate::db::models::sync_runs::{RunStatus, RunSummary};
use crate::error::AppError;
use crate::page;
use crate::profiles::fields;
use crate::services::profiles as profiles_service;
use crate::time::{format_optional, format_time};
use crate::web::extract::Admin;
use crate::web::page::Page;

pub use delete::{certificate, delete, delete_configuration, delete_confirm};
pub use form::{create, edit_form, new_form, new_kind_fields, update};
pub use probe::{groups, test_connection};

pub struct ProfileRow {
    pub id: ProfileId,
    pub name: String,
    pub kind_label: &'static str,
    pub delete_users: bool,
    pub delete_groups: bool,
    /// Test settings, synchronise now and history (kinds with a connector).
    pub can_sync: bool,
    pub users: i64,
    /// The newest run: (id, what it says, when, its status for the colour).
    pub last_run: Option<(RunId, String, String, RunStatus)>,
    pub next_run: String,
}

#[derive(Template)]
#[template(path = "partials/admin/profiles_partial.html")]
pub struct ProfilesPartial {
    pub title: String,
    pub csrf_token: String,
    pub query: String,
    pub descending: bool,
    pub rows: Vec<ProfileRow>,
    /// The link that sorts the other way, keeping the search.
    pub sort_link: String,
    pub refresh_link: String,
}
page!(ProfilesPage, "pages/admin/profiles.html", ProfilesPartial);

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
}

pub async fn list(page: Page<Admin>, query: Query<ListQuery>) -> Result<HttpResponse, AppError> {
    let q = query.q.trim().chars().take(200).collect::<String>();
    let descending = query.sort == "desc";
    let profiles = profiles_service::list(&page.state, &q, descending).await?;
    let encoded = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let link = |desc: bool| {
        format!(
            "/admin/profiles?q={encoded}&sort={}",
            if desc { "desc" } else { "asc" }
        )
    };
    let partial = ProfilesPartial {
        title: "Directory profiles".into(),
        csrf_token: page.csrf_token.clone(),
        sort_link: link(!descending),
        refresh_link: link(descending),
        query: q,
        descending,
        rows: profiles
            .into_iter()
            .map(|o| {
                let p = o.profile;
                ProfileRow {
                    kind_label: p.kind().map(ProfileKind::label).unwrap_or("unknown"),
                    can_sync: p.kind().is_some_and(fields::has_connector),
                    id: p.id,
                    name: p.name,
                    delete_users: p.delete_users,
                    delete_groups: p.delete_groups,
                    users: o.users,
                    last_run: o.last_run.map(|r| {
                        let when = format_optional(r.finished_at.or(Some(r.started_at)));
                        (r.id, describe_run(&r), when, r.status)
                    }),
                    next_run: o.next_run_at.map(format_time).unwrap_or_else(|| "—".into()),
                }
            })
            .collect(),
    };
    page.render(StatusCode::OK, partial, "profiles")
}

/// "Synchronisation succeeded: 3 created, 1 updated, 0 deleted" — or "would create" for a
/// dry or held run.
fn describe_run(r: &RunSummary) -> String {
    let what = if r.dry_run {
        "Test settings"
    } else {
        "Synchronisation"
    };
    let planned = r.dry_run || matches!(r.status, RunStatus::Held | RunStatus::Discarded);
    match r.status {
        RunStatus::Running => format!("{what} running"),
        RunStatus::Failed | RunStatus::Cancelled => format!("{what} {}", r.status),
        _ if planned => format!(
            "{what} {}: would create {}, update {}, delete {}",
            r.status, r.users_created, r.users_updated, r.users_deleted
        ),
        _ => format!(
            "{what} {}: {} created, {} updated, {} deleted",
            r.status, r.users_created, r.users_updated, r.users_deleted
        ),
    }
}
