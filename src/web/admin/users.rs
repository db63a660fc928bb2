//! `/admin/users`: the users list (search and paging), creating a local user, user detail.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::db::models::user_privileges::Privilege;
use crate::db::models::users::{AuthMethod, UserListRow};
use crate::error::AppError;
use crate::page;
use crate::services::users::{self as users_service, Created, Switched, UserAction};
use crate::state::AppState;
use crate::time::{format_optional, format_time};
use crate::validation::FieldErrors;
use crate::web::extract::{Admin, actor};
use crate::web::render::{Chrome, redirect, render};

pub const PAGE_SIZE: i64 = users_service::PAGE_SIZE;

#[derive(Template)]
#[template(path = "partials/admin/users_partial.html")]
pub struct UsersPartial {
    pub title: String,
    pub query: String,
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
}
page!(UsersPage, "pages/admin/users.html", UsersPartial);

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<String>,
}

pub async fn list(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    query: Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.q.trim().chars().take(200).collect::<String>();
    // A page number that is not a number is page 1, not an error page.
    let page = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    let result = users_service::search(&state, &q, page).await?;
    let pages =
        (!result.total_is_lower_bound).then(|| ((result.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1));
    let link = |p: i64| {
        let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        format!("/admin/users?q={q}&page={p}")
    };
    let first_shown = if result.rows.is_empty() {
        0
    } else {
        (page - 1) * PAGE_SIZE + 1
    };
    let partial = UsersPartial {
        title: "Users".into(),
        prev_link: (page > 1).then(|| link(page - 1)),
        next_link: result.has_more.then(|| link(page + 1)),
        last_shown: first_shown + result.rows.len() as i64 - i64::from(!result.rows.is_empty()),
        first_shown,
        query: q,
        rows: result.rows,
        total: result.total,
        total_is_lower_bound: result.total_is_lower_bound,
        page,
        pages,
    };
    render(&req, StatusCode::OK, partial, || {
        Chrome::new(&req, &state, Some(&me), "users")
    })
}

pub struct PrivilegeChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "partials/admin/user_new_partial.html")]
pub struct NewUserPartial {
    pub title: String,
    pub csrf_token: String,
    pub username: String,
    pub full_name: String,
    pub emails: String,
    pub privileges: Vec<PrivilegeChoice>,
    pub errors: FieldErrors,
}
page!(NewUserPage, "pages/admin/user_new.html", NewUserPartial);

fn privilege_choices(chosen: &[Privilege]) -> Vec<PrivilegeChoice> {
    Privilege::ALL
        .into_iter()
        .map(|p| PrivilegeChoice {
            value: p.as_str(),
            label: p.label(),
            checked: chosen.contains(&p),
        })
        .collect()
}

pub async fn new_form(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
) -> Result<HttpResponse, AppError> {
    let partial = NewUserPartial {
        title: "New user".into(),
        csrf_token: crate::web::csrf::token(&req, &state),
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
    render(&req, StatusCode::OK, partial, || {
        Chrome::new(&req, &state, Some(&me), "users")
    })
}

/// The create form. Privileges arrive as repeated `privilege` fields, which serde's
/// urlencoded reader cannot collect, so the raw body is parsed here.
pub async fn create(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
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
    let errors = match users_service::create(&state, &actor(&req, &state, &me), new).await? {
        Created::Created(id) => return Ok(redirect(&req, &format!("/admin/users/{id}"))),
        Created::Invalid(errors) => errors,
    };
    let partial = NewUserPartial {
        title: "New user".into(),
        csrf_token: crate::web::csrf::token(&req, &state),
        username,
        full_name,
        emails: emails_text,
        privileges: privilege_choices(&privileges),
        errors,
    };
    render(&req, StatusCode::UNPROCESSABLE_ENTITY, partial, || {
        Chrome::new(&req, &state, Some(&me), "users")
    })
}

#[derive(Template)]
#[template(path = "partials/admin/user_detail_partial.html")]
pub struct UserDetailPartial {
    pub title: String,
    pub csrf_token: String,
    pub id: i64,
    pub disabled: bool,
    pub mfa_required: bool,
    pub mfa_enrolled: bool,
    pub is_me: bool,
    /// Signs in with a Roster password (else at a directory).
    pub is_local: bool,
    /// AD and LDAP profiles a local user can be switched to: (id, name).
    pub directory_profiles: Vec<(i64, String)>,
    pub auth_error: Option<String>,
    pub privilege_choices: Vec<PrivilegeChoice>,
    pub login_name: String,
    pub full_name: String,
    pub emails: Vec<String>,
    pub source: String,
    pub auth_method: String,
    pub status: String,
    pub privileges: Vec<&'static str>,
    pub groups: Vec<String>,
    pub mfa: String,
    pub created: String,
    pub last_sign_in: String,
}
page!(
    UserDetailPage,
    "pages/admin/user_detail.html",
    UserDetailPartial
);

pub async fn show(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    render_detail(&req, &state, &me, id, StatusCode::OK, None).await
}

/// The user page; `auth_error` is a refused authentication switch, shown at its form.
pub async fn render_detail(
    req: &HttpRequest,
    state: &AppState,
    me: &crate::web::extract::SignedIn,
    id: i64,
    status: StatusCode,
    auth_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let csrf_token = crate::web::csrf::token(req, state);
    let users_service::Detail {
        user,
        source,
        directory_profiles,
        groups,
    } = users_service::detail(state, id).await?;
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
        is_me: id == me.user.id,
        is_local: user.auth_method() == AuthMethod::Local,
        directory_profiles,
        auth_error,
        privilege_choices: privilege_choices(&user.privileges()),
        title: user.login_name(),
        login_name: user.login_name(),
        full_name: user.full_name.clone(),
        emails: user.emails(),
        source,
        auth_method: crate::web::account::describe_auth(&user),
        status: user.standing().label().into(),
        privileges: user.privileges().iter().map(|p| p.label()).collect(),
        groups,
        mfa,
        created: format_time(user.created_at),
        last_sign_in: format_optional(user.last_sign_in_at),
    };
    render(req, status, partial, || {
        Chrome::new(req, state, Some(me), "users")
    })
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    action: String,
}

/// POST `/admin/users/{id}/action`: disable / enable (ends sessions), require MFA or not,
/// reset MFA. Each is audited.
pub async fn action(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    id: Path<i64>,
    form: actix_web::web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let action = UserAction::parse(&form.action)
        .ok_or_else(|| AppError::BadRequest("Unknown action.".into()))?;
    users_service::act(&state, &actor(&req, &state, &me), id, action).await?;
    if action == UserAction::Delete {
        return Ok(redirect(&req, "/admin/users"));
    }
    Ok(redirect(&req, &format!("/admin/users/{id}")))
}

/// POST `/admin/users/{id}/privileges`: the privileges ticked (repeated `privilege` fields).
/// An admin cannot take the Administrator privilege from themselves.
pub async fn set_privileges(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    id: Path<i64>,
    body: actix_web::web::Bytes,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let chosen: Vec<Privilege> = url::form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "privilege")
        .filter_map(|(_, v)| Privilege::parse(&v))
        .collect();
    users_service::set_privileges(&state, &actor(&req, &state, &me), id, chosen).await?;
    Ok(redirect(&req, &format!("/admin/users/{id}")))
}

/// POST `/admin/users/{id}/authentication`: a local user signs in at a directory from now on
/// (`profile`: the AD/LDAP profile whose directory has the same user name), or a directory
/// user gets a Roster password (`password`, `password_confirm`) and leaves the profile.
pub async fn switch_authentication(
    req: HttpRequest,
    state: Data<AppState>,
    Admin(me): Admin,
    id: Path<i64>,
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
    match users_service::switch_authentication(&state, &actor(&req, &state, &me), id, form).await? {
        Switched::Switched => Ok(redirect(&req, &format!("/admin/users/{id}"))),
        Switched::Refused(message) => {
            render_detail(
                &req,
                &state,
                &me,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(message),
            )
            .await
        }
    }
}
