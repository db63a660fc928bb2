//! `/admin/users`: the users list (search and paging), creating a local user, user detail.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Path, Query};
use askama::Template;
use serde::Deserialize;

use crate::db::ids::{ProfileId, UserId};
use crate::db::models::user_privileges::Privilege;
use crate::db::models::users::{AuthMethod, MfaState, Standing, Start, UserFilter, UserListRow};
use crate::error::AppError;
use crate::page;
use crate::services::users::{self as users_service, Created, Switched, UserAction};
use crate::time::{format_optional, format_time};
use crate::validation::FieldErrors;
use crate::web::extract::Admin;
use crate::web::page::Page;
use crate::web::render::Choice;

pub const PAGE_SIZE: i64 = users_service::PAGE_SIZE;

#[derive(Template)]
#[template(path = "partials/admin/users_partial.html")]
pub struct UsersPartial {
    pub title: String,
    pub query: String,
    /// The filters as chosen (`source`: a profile id or `roster`; `status`; `mfa`).
    pub source: String,
    pub status: String,
    pub mfa: String,
    pub profiles: Vec<(ProfileId, String)>,
    pub rows: Vec<UserListRow>,
    pub total: i64,
    /// "more than {total}": a broad search is not counted to the end.
    pub total_is_lower_bound: bool,
    pub page: i64,
    /// Known only when the total is exact.
    pub pages: Option<i64>,
    pub first_shown: i64,
    pub last_shown: i64,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
    /// Numbered page links around this one: (number, link; `None` for this page). A gap
    /// between two numbers is shown as "…".
    pub numbered: Vec<(i64, Option<String>)>,
}
page!(UsersPage, "pages/admin/users.html", UsersPartial);

impl UsersPartial {
    fn is_source(&self, id: &ProfileId) -> bool {
        self.source == id.to_string()
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<String>,
    /// The next / previous links: the page starts right after / before this user.
    after: Option<String>,
    before: Option<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    mfa: String,
}

impl ListQuery {
    /// The filter the query names; values it does not know filter nothing.
    fn filter(&self) -> UserFilter {
        UserFilter {
            source: match self.source.as_str() {
                "roster" => Some(None),
                id => id.parse::<ProfileId>().ok().map(Some),
            },
            standing: match self.status.as_str() {
                "enabled" => Some(Standing::Enabled),
                "disabled" => Some(Standing::DisabledInRoster),
                "directory_disabled" => Some(Standing::DisabledInDirectory),
                _ => None,
            },
            mfa: match self.mfa.as_str() {
                "enrolled" => Some(MfaState::Enrolled),
                "pending" => Some(MfaState::Pending),
                "off" => Some(MfaState::NotRequired),
                _ => None,
            },
        }
    }
}

/// Page numbers to link: the first, the last, and two on either side of `page`.
fn numbered_pages(page: i64, pages: i64) -> Vec<i64> {
    (1..=pages)
        .filter(|&n| n == 1 || n == pages || (n - page).abs() <= 2)
        .collect()
}

pub async fn list(page: Page<Admin>, query: Query<ListQuery>) -> Result<HttpResponse, AppError> {
    let q = query.q.trim().chars().take(200).collect::<String>();
    // A page number that is not a number is page 1, not an error page; next to `after` or
    // `before` it is only what the page calls itself.
    let number = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    let user = |id: &Option<String>| id.as_deref().and_then(|i| i.parse::<UserId>().ok());
    let start = match (user(&query.after), user(&query.before)) {
        (Some(id), _) => Start::After(id),
        (None, Some(id)) => Start::Before(id),
        (None, None) => Start::Offset((number - 1) * PAGE_SIZE),
    };
    let filter = query.filter();
    let (result, profiles) = users_service::search(&page.state, &q, filter, start).await?;
    // A page with nothing before it is the first, whatever the link said.
    let number = if result.has_previous { number } else { 1 };
    let pages =
        (!result.total_is_lower_bound).then(|| ((result.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1));
    let link = |p: i64, from: Option<(&str, UserId)>| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("q", &q);
        for (k, v) in [
            ("source", &query.source),
            ("status", &query.status),
            ("mfa", &query.mfa),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        if let Some((side, id)) = from {
            s.append_pair(side, &id.to_string());
        }
        s.append_pair("page", &p.to_string());
        format!("/admin/users?{}", s.finish())
    };
    let first_shown = if result.rows.is_empty() {
        0
    } else {
        (number - 1) * PAGE_SIZE + 1
    };
    let numbered = pages
        .filter(|&n| n > 1)
        .map(|n| numbered_pages(number, n))
        .unwrap_or_default()
        .into_iter()
        .map(|n| (n, (n != number).then(|| link(n, None))))
        .collect();
    let first_id = result.rows.first().map(|r| r.id);
    let last_id = result.rows.last().map(|r| r.id);
    let partial = UsersPartial {
        title: "Users".into(),
        prev_link: result
            .has_previous
            .then(|| link(number - 1, first_id.map(|id| ("before", id)))),
        next_link: result
            .has_next
            .then(|| link(number + 1, last_id.map(|id| ("after", id)))),
        last_shown: first_shown + result.rows.len() as i64 - i64::from(!result.rows.is_empty()),
        first_shown,
        numbered,
        query: q,
        source: query.source.clone(),
        status: query.status.clone(),
        mfa: query.mfa.clone(),
        profiles,
        rows: result.rows,
        total: result.total,
        total_is_lower_bound: result.total_is_lower_bound,
        page: number,
        pages,
    };
    page.render(StatusCode::OK, partial, "users")
}

#[derive(Template)]
#[template(path = "partials/admin/user_new_partial.html")]
pub struct NewUserPartial {
    pub title: String,
    pub csrf_token: String,
    pub username: String,
    pub full_name: String,
    pub emails: String,
    pub privileges: Vec<Choice>,
    pub errors: FieldErrors,
}
page!(NewUserPage, "pages/admin/user_new.html", NewUserPartial);

fn privilege_choices(chosen: &[Privilege]) -> Vec<Choice> {
    Privilege::ALL
        .into_iter()
        .map(|p| Choice {
            value: p.as_str(),
            label: p.label(),
            chosen: chosen.contains(&p),
        })
        .collect()
}

pub async fn new_form(page: Page<Admin>) -> Result<HttpResponse, AppError> {
    let partial = NewUserPartial {
        title: "New user".into(),
        csrf_token: page.csrf_token.clone(),
        username: String::new(),
        full_name: String::new(),
        emails: String::new(),
        privileges: privilege_choices(&[
            Privilege::LogOn,
            Privilege::ReadOwnArchive,
            Privilege::ChangeOwnPassword,
        ]),
        errors: FieldErrors::default(),
    };
    page.render(StatusCode::OK, partial, "users")
}

/// The create form. Privileges arrive as repeated `privilege` fields, which serde's
/// urlencoded reader cannot collect, so the raw body is parsed here.
pub async fn create(
    page: Page<Admin>,
    body: actix_web::web::Bytes,
) -> Result<HttpResponse, AppError> {
    let mut username = String::new();
    let mut full_name = String::new();
    let mut emails_text = String::new();
    let mut password = String::new();
    let mut confirm = String::new();
    let mut privileges = Vec::new();
    for (key, value) in url::form_urlencoded::parse(&body) {
        match key.as_ref() {
            "username" => username = value.into_owned(),
            "full_name" => full_name = value.into_owned(),
            "emails" => emails_text = value.into_owned(),
            "password" => password = value.into_owned(),
            "password_confirm" => confirm = value.into_owned(),
            "privilege" => privileges.extend(Privilege::parse(&value)),
            // Anything else (ids, flags an attacker adds) is ignored.
            _ => {}
        }
    }
    let new = users_service::NewUser {
        username: username.clone(),
        full_name: full_name.clone(),
        emails: emails_text.clone(),
        password,
        password_confirm: confirm,
        privileges: privileges.clone(),
    };
    let errors = match users_service::create(&page.state, &page.actor(), new).await? {
        Created::Created(id) => {
            return Ok(page.redirect_with(
                &format!("/admin/users/{id}"),
                &format!("User {} created.", username.trim()),
            ));
        }
        Created::Invalid(errors) => errors,
    };
    let partial = NewUserPartial {
        title: "New user".into(),
        csrf_token: page.csrf_token.clone(),
        username,
        full_name,
        emails: emails_text,
        privileges: privilege_choices(&privileges),
        errors,
    };
    page.render(StatusCode::UNPROCESSABLE_ENTITY, partial, "users")
}

#[derive(Template)]
#[template(path = "partials/admin/user_detail_partial.html")]
pub struct UserDetailPartial {
    pub title: String,
    pub csrf_token: String,
    pub id: UserId,
    pub disabled: bool,
    pub mfa_required: bool,
    pub mfa_enrolled: bool,
    pub is_me: bool,
    /// Signs in with a Roster password (else at a directory).
    pub is_local: bool,
    /// AD and LDAP profiles a local user can be switched to: (id, name).
    pub directory_profiles: Vec<(ProfileId, String)>,
    pub auth_error: Option<String>,
    pub privilege_choices: Vec<Choice>,
    pub login_name: String,
    pub full_name: String,
    pub emails: Vec<String>,
    pub source: String,
    pub source_profile: Option<ProfileId>,
    pub auth_method: String,
    pub status: String,
    pub privileges: Vec<&'static str>,
    pub groups: Vec<(i64, String)>,
    pub mfa: String,
    pub created: String,
    pub last_sign_in: String,
}
page!(
    UserDetailPage,
    "pages/admin/user_detail.html",
    UserDetailPartial
);

pub async fn show(page: Page<Admin>, id: Path<String>) -> Result<HttpResponse, AppError> {
    let id: UserId = id.parse().map_err(|_| AppError::NotFound)?;
    render_detail(&page, id, StatusCode::OK, None).await
}

/// The user page; `auth_error` is a refused authentication switch, shown at its form.
pub async fn render_detail(
    page: &Page<Admin>,
    id: UserId,
    status: StatusCode,
    auth_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let csrf_token = page.csrf_token.clone();
    let users_service::Detail {
        user,
        source,
        source_profile,
        directory_profiles,
        groups,
    } = users_service::detail(&page.state, id).await?;
    let mfa = match (user.mfa_required, user.mfa_enrolled_at) {
        (_, Some(at)) => format!("Enrolled {}", format_time(at)),
        (true, None) => "Required, not enrolled yet".into(),
        (false, None) => "Not required".into(),
    };
    let partial = UserDetailPartial {
        csrf_token,
        id,
        disabled: user.disabled,
        mfa_required: user.mfa_required,
        mfa_enrolled: user.mfa_enrolled_at.is_some(),
        is_me: id == page.me().user.id,
        is_local: user.auth_method() == AuthMethod::Local,
        directory_profiles,
        auth_error,
        privilege_choices: privilege_choices(&user.privileges()),
        title: user.login_name(),
        login_name: user.login_name(),
        full_name: user.full_name.clone(),
        emails: user.emails(),
        source,
        source_profile,
        auth_method: crate::web::account::describe_auth(&user),
        status: user.standing().label().into(),
        privileges: user.privileges().iter().map(|p| p.label()).collect(),
        groups,
        mfa,
        created: format_time(user.created_at),
        last_sign_in: format_optional(user.last_sign_in_at),
    };
    page.render(status, partial, "users")
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    action: String,
}

/// POST `/admin/users/{id}/action`: disable / enable (ends sessions), require MFA or not,
/// reset MFA. Each is audited.
pub async fn action(
    page: Page<Admin>,
    id: Path<UserId>,
    form: actix_web::web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let action = UserAction::parse(&form.action)
        .ok_or_else(|| AppError::BadRequest("Unknown action.".into()))?;
    users_service::act(&page.state, &page.actor(), id, action).await?;
    let notice = match action {
        UserAction::Delete => {
            return Ok(page.redirect_with("/admin/users", "The user was deleted."));
        }
        UserAction::Disable => "Disabled: the user was signed out and cannot sign in.",
        UserAction::Enable => "Enabled: the user can sign in again.",
        UserAction::RequireMfa => "MFA is now required for this user.",
        UserAction::NotRequireMfa => "MFA is no longer required for this user.",
        UserAction::ResetMfa => "MFA reset: the user enrols again at the next sign-in.",
    };
    Ok(page.redirect_with(&format!("/admin/users/{id}"), notice))
}

/// POST `/admin/users/{id}/privileges`: the privileges ticked (repeated `privilege` fields).
/// An admin cannot take the Administrator privilege from themselves.
pub async fn set_privileges(
    page: Page<Admin>,
    id: Path<UserId>,
    body: actix_web::web::Bytes,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let chosen: Vec<Privilege> = url::form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "privilege")
        .filter_map(|(_, v)| Privilege::parse(&v))
        .collect();
    users_service::set_privileges(&page.state, &page.actor(), id, chosen).await?;
    Ok(page.redirect_with(&format!("/admin/users/{id}"), "Privileges saved."))
}

/// POST `/admin/users/{id}/authentication`: a local user signs in at a directory from now on
/// (`profile`: the AD/LDAP profile whose directory has the same user name), or a directory
/// user gets a Roster password (`password`, `password_confirm`) and leaves the profile.
pub async fn switch_authentication(
    page: Page<Admin>,
    id: Path<UserId>,
    body: actix_web::web::Bytes,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let field = |name: &str| {
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let form = users_service::SwitchForm {
        profile: field("profile"),
        password: field("password"),
        password_confirm: field("password_confirm"),
    };
    match users_service::switch_authentication(&page.state, &page.actor(), id, form).await? {
        Switched::Switched => {
            Ok(page.redirect_with(&format!("/admin/users/{id}"), "Sign-in method switched."))
        }
        Switched::Refused(message) => {
            render_detail(&page, id, StatusCode::UNPROCESSABLE_ENTITY, Some(message)).await
        }
    }
}
