//! `/admin/groups`: every synchronised group, by profile and name; a group's page with its
//! members. Pages are keyset links (`after` / `before` a row's id).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Path, Query};
use askama::Template;
use serde::Deserialize;

use crate::db::ids::ProfileId;
use crate::db::models::directory_groups::{GroupListRow, MemberRow};
use crate::error::AppError;
use crate::page;
use crate::services::groups::{self as groups_service, From};
use crate::web::extract::Admin;
use crate::web::page::Page;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    profile: String,
    after: Option<String>,
    before: Option<String>,
}

impl ListQuery {
    /// A search of at most 200 characters; an id that is not a number is the first page.
    fn needle(&self) -> String {
        self.q.trim().chars().take(200).collect()
    }

    fn from(&self) -> From {
        let id = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<i64>().ok());
        match (id(&self.after), id(&self.before)) {
            (Some(a), _) => From::After(a),
            (None, Some(b)) => From::Before(b),
            (None, None) => From::Start,
        }
    }
}

/// `base?q=…&profile=…&after=id`: the other page links keep the filters.
fn link(base: &str, filters: &[(&str, &str)], edge: (&str, i64)) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    query.append_pair(edge.0, &edge.1.to_string());
    format!("{base}?{}", query.finish())
}

#[derive(Template)]
#[template(path = "partials/admin/groups_partial.html")]
pub struct GroupsPartial {
    pub title: String,
    pub query: String,
    pub profile: Option<ProfileId>,
    pub profiles: Vec<(ProfileId, String)>,
    pub rows: Vec<GroupListRow>,
    pub total: i64,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
}
page!(GroupsPage, "pages/admin/groups.html", GroupsPartial);

impl GroupsPartial {
    fn is_profile(&self, id: &ProfileId) -> bool {
        self.profile == Some(*id)
    }
}

pub async fn list(page: Page<Admin>, query: Query<ListQuery>) -> Result<HttpResponse, AppError> {
    let needle = query.needle();
    let profile = query.profile.trim().parse::<ProfileId>().ok();
    let list = groups_service::list(&page.state, profile, &needle, query.from()).await?;
    let profile_text = profile.map(|p| p.to_string()).unwrap_or_default();
    let filters = [("q", needle.as_str()), ("profile", profile_text.as_str())];
    let window = list.window;
    let partial = GroupsPartial {
        title: "Groups".into(),
        prev_link: window
            .rows
            .first()
            .filter(|_| window.has_previous)
            .map(|g| link("/admin/groups", &filters, ("before", g.id))),
        next_link: window
            .rows
            .last()
            .filter(|_| window.has_next)
            .map(|g| link("/admin/groups", &filters, ("after", g.id))),
        query: needle,
        profile,
        profiles: list.profiles,
        rows: window.rows,
        total: list.total,
    };
    page.render(StatusCode::OK, partial, "groups")
}

#[derive(Template)]
#[template(path = "partials/admin/group_detail_partial.html")]
pub struct GroupDetailPartial {
    pub title: String,
    pub group: GroupListRow,
    pub query: String,
    pub members: Vec<MemberRow>,
    pub matching: i64,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
}
page!(
    GroupDetailPage,
    "pages/admin/group_detail.html",
    GroupDetailPartial
);

pub async fn show(
    page: Page<Admin>,
    id: Path<String>,
    query: Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let needle = query.needle();
    let detail = groups_service::detail(&page.state, id, &needle, query.from()).await?;
    let base = format!("/admin/groups/{id}");
    let filters = [("q", needle.as_str())];
    let window = detail.members;
    let partial = GroupDetailPartial {
        title: detail.group.name.clone(),
        prev_link: window
            .rows
            .first()
            .filter(|_| window.has_previous)
            .map(|m| link(&base, &filters, ("before", m.id.0))),
        next_link: window
            .rows
            .last()
            .filter(|_| window.has_next)
            .map(|m| link(&base, &filters, ("after", m.id.0))),
        group: detail.group,
        query: needle,
        members: window.rows,
        matching: detail.matching,
    };
    page.render(StatusCode::OK, partial, "groups")
}
