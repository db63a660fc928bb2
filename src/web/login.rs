//! `GET/POST /login` and `POST /logout`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Form, Query};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::auth::sessions;
use crate::auth::sign_in::{SignInOutcome, sign_in};
use crate::db::models::sessions::Stage;
use crate::db::models::user_privileges::Privilege;
use crate::db::models::users::User;
use crate::error::AppError;
use crate::page;
use crate::services::oidc::{self, Provider};
use crate::services::sessions as sessions_service;
use crate::web::extract::{SignedIn, home_path, origin, safe_next};
use crate::web::page::{Anyone, Page};

#[derive(Template)]
#[template(path = "partials/auth/login_partial.html")]
pub struct LoginPartial {
    pub title: String,
    pub csrf_token: String,
    pub username: String,
    pub next: String,
    pub error: Option<String>,
    /// "Sign in with …" buttons, one per OpenID profile.
    pub providers: Vec<Provider>,
}
page!(LoginPage, "pages/auth/login.html", LoginPartial);

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn form(page: Page<Anyone>, query: Query<LoginQuery>) -> Result<HttpResponse, AppError> {
    if let Some(user) = crate::web::extract::current(&page.req).await? {
        return Ok(page.redirect(&landing(&user, query.next.as_deref())));
    }
    let partial = LoginPartial {
        title: "Sign in".into(),
        csrf_token: page.csrf_token.clone(),
        username: String::new(),
        next: safe_next(query.next.as_deref()).unwrap_or_default(),
        error: None,
        providers: oidc::providers(&page.state).await?,
    };
    page.render(StatusCode::OK, partial, "login")
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn submit(page: Page<Anyone>, form: Form<LoginForm>) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let next = safe_next(Some(&form.next)).unwrap_or_default();
    // A name in the domain of an OpenID profile goes to its provider, whatever was typed
    // as the password (which is never checked or kept).
    let password_typed = !crate::auth::password::is_blank(&form.password);
    if let Some(slug) = oidc::route(&page.state, &form.username, password_typed).await? {
        let hint = form.username.trim().to_owned();
        return crate::web::oidc::begin(&page, &slug, Some(&hint), &next).await;
    }
    let password = SecretString::from(form.password);
    let ip = page.client_ip();
    let outcome = sign_in(&page.state, &form.username, &password, &ip).await?;
    let (status, error) = match outcome {
        SignInOutcome::Success(user) => return signed_in(&page, &user, &next).await,
        SignInOutcome::Refused => (
            StatusCode::UNAUTHORIZED,
            "The user name or password is incorrect.".to_owned(),
        ),
        SignInOutcome::Ambiguous => (
            StatusCode::UNAUTHORIZED,
            "This user name exists in more than one domain. Sign in as user@domain.".to_owned(),
        ),
        SignInOutcome::Throttled {
            retry_after_seconds,
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-in attempts. Try again in {} minutes.",
                (retry_after_seconds + 59) / 60
            ),
        ),
    };
    failed(&page, status, &error, &form.username, &next).await
}

/// A new session for a user who proved who they are (a password or an OpenID provider),
/// on to the MFA step when they must use it, else to `next` or their home page.
pub async fn signed_in(
    page: &Page<Anyone>,
    user: &User,
    next: &str,
) -> Result<HttpResponse, AppError> {
    let begun = sessions_service::begin(&page.state, user, origin(&page.req, &page.state)).await?;
    let home = home_path(user.privileges().contains(&Privilege::Admin));
    let to = match (begun.stage, safe_next(Some(next))) {
        (Stage::MfaPending, Some(next)) => format!(
            "/mfa?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        ),
        (Stage::MfaPending, None) => "/mfa".to_owned(),
        (Stage::Full, next) => next.unwrap_or_else(|| home.to_owned()),
    };
    let mut res = page.redirect(&to);
    res.add_cookie(&sessions::cookie(&page.state.session_policy, begun.token))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(res)
}

/// The sign-in page again, with what went wrong.
pub async fn failed(
    page: &Page<Anyone>,
    status: StatusCode,
    error: &str,
    username: &str,
    next: &str,
) -> Result<HttpResponse, AppError> {
    let partial = LoginPartial {
        title: "Sign in".into(),
        csrf_token: page.csrf_token.clone(),
        // Echoed back, but never more than a name can be.
        username: username
            .chars()
            .take(crate::auth::login_name::MAX_LOGIN_CHARS)
            .collect(),
        next: safe_next(Some(next)).unwrap_or_default(),
        error: Some(error.to_owned()),
        providers: oidc::providers(&page.state).await?,
    };
    page.render(status, partial, "login")
}

/// Where a signed-in user goes: `next` if it is local, else their home page.
fn landing(user: &SignedIn, next: Option<&str>) -> String {
    safe_next(next).unwrap_or_else(|| home_path(user.is_admin()).to_owned())
}

pub async fn logout(page: Page<Anyone>) -> Result<HttpResponse, AppError> {
    let policy = page.state.session_policy;
    if let Some(cookie) = page.req.cookie(sessions::cookie_name(policy.https)) {
        sessions_service::end(&page.state, cookie.value(), &page.client_ip()).await?;
    }
    let mut res = page.redirect("/login");
    res.add_cookie(&sessions::removal_cookie(&policy))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(res)
}
