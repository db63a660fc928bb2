//! Test connection and the group picker: dialogs for htmx, the form again with the result
//! above it for plain form posts.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Path};
use askama::Template;

use super::form::{FormContext, form_partial};
use crate::db::ids::ProfileId;
use crate::db::models::directory_profiles::ProfileKind;
use crate::directory::{ConnectionReport, DirectoryGroup};
use crate::error::AppError;
use crate::profiles::form::{self, Posted};
use crate::services::profiles::{self as profiles_service, Groups, Tested};
use crate::validation::FieldErrors;
use crate::web::extract::Admin;
use crate::web::page::Page;

#[derive(Template)]
#[template(path = "partials/admin/profile_test_partial.html")]
pub struct TestResultPartial {
    pub report: Option<ConnectionReport>,
    pub error: Option<String>,
    /// Form errors that keep the test from running.
    pub problems: Vec<String>,
}

#[derive(Template)]
#[template(path = "partials/admin/profile_groups_partial.html")]
pub struct GroupsPartial {
    pub groups_link: String,
    pub search: String,
    /// (group, chosen)
    pub groups: Vec<(DirectoryGroup, bool)>,
    pub error: Option<String>,
    pub problems: Vec<String>,
}

#[derive(Clone, Copy)]
enum Probe {
    Test,
    Groups,
}

/// "Test connection": `/admin/profiles/test-connection` for an unsaved profile,
/// `/admin/profiles/{id}/test-connection` for a saved one (blank secrets = the stored ones).
pub async fn test_connection(
    page: Page<Admin>,
    path: Option<Path<ProfileId>>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let id = path.map(Path::into_inner);
    probe(page, id, body, Probe::Test).await
}

/// The group picker, for an unsaved (`/admin/profiles/groups`) or a saved profile.
pub async fn groups(
    page: Page<Admin>,
    path: Option<Path<ProfileId>>,
    body: Bytes,
) -> Result<HttpResponse, AppError> {
    let id = path.map(Path::into_inner);
    probe(page, id, body, Probe::Groups).await
}

async fn probe(
    page: Page<Admin>,
    id: Option<ProfileId>,
    body: Bytes,
    what: Probe,
) -> Result<HttpResponse, AppError> {
    let posted = Posted::parse(&body);
    let loaded = match id {
        Some(id) => Some(profiles_service::load(&page.state, id).await?),
        None => None,
    };
    let kind = match &loaded {
        Some(l) => l.kind()?,
        None => ProfileKind::parse(posted.get("kind"))
            .ok_or_else(|| AppError::BadRequest("Choose one of the six directory types.".into()))?,
    };
    let stored = loaded.as_ref().map(|l| &l.settings);
    let html = match what {
        Probe::Test => {
            let tested = profiles_service::test_connection(
                &page.state,
                &page.actor(),
                kind,
                &posted,
                loaded.as_ref(),
            )
            .await?;
            let (report, error, problems) = match tested {
                Tested::Connected(report) => (Some(report), None, Vec::new()),
                Tested::Failed(error) => (None, Some(error), Vec::new()),
                Tested::NotTried(problems) => (None, None, problems),
            };
            TestResultPartial {
                report,
                error,
                problems,
            }
            .render()?
        }
        Probe::Groups => {
            let search = posted.get("group_search").trim().to_owned();
            let chosen = form::chosen_groups(posted.get("groups_to_sync"));
            let found =
                profiles_service::groups(&page.state, kind, &posted, stored, &search).await?;
            let (groups, error, problems) = match found {
                Groups::Found(groups) => (groups, None, Vec::new()),
                Groups::Failed(error) => (Vec::new(), Some(error), Vec::new()),
                Groups::NotTried(problems) => (Vec::new(), None, problems),
            };
            let prefix = match id {
                Some(id) => format!("/admin/profiles/{id}"),
                None => "/admin/profiles".into(),
            };
            GroupsPartial {
                groups_link: format!("{prefix}/groups"),
                search,
                groups: groups
                    .into_iter()
                    .map(|g| {
                        let on = chosen.iter().any(|c| c.eq_ignore_ascii_case(&g.name));
                        (g, on)
                    })
                    .collect(),
                error,
                problems,
            }
            .render()?
        }
    };
    if crate::web::render::is_htmx(&page.req) {
        return Ok(crate::web::render::html(html));
    }
    // Plain form post: the form again, with the result above it.
    let ctx = FormContext {
        kind,
        editing: loaded.as_ref().map(|l| &l.profile),
        stored,
        dependents: loaded
            .as_ref()
            .map(|l| l.dependents.clone())
            .unwrap_or_default(),
    };
    let partial = form_partial(&page, ctx, &posted, FieldErrors::default(), Some(html));
    page.render(StatusCode::OK, partial, "profiles")
}
