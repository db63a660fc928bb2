//! `POST /login/oidc/{slug}` (a "Sign in with …" button) and
//! `GET /login/oidc/{slug}/callback` (the provider's answer at the profile's redirect URI).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use actix_web::web::{Form, Path, Query};
use askama::Template;
use serde::Deserialize;

use crate::error::AppError;
use crate::services::oidc::{self as service, Answer, Finished, Started};
use crate::web::extract::safe_next;
use crate::web::login::{failed, signed_in};
use crate::web::page::{Anyone, Page};

#[derive(Template)]
#[template(path = "partials/auth/continue_partial.html")]
pub struct ContinuePartial {
    pub title: String,
    pub provider: String,
    pub url: String,
}
crate::page!(ContinuePage, "pages/auth/continue.html", ContinuePartial);

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    next: String,
}

pub async fn start(
    page: Page<Anyone>,
    slug: Path<String>,
    form: Form<StartForm>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(Some(&form.next)).unwrap_or_default();
    begin(&page, &slug, None, &next).await
}

/// Sends the browser to the provider (the sign-in form does too, for a name whose domain
/// belongs to an OpenID profile).
pub async fn begin(
    page: &Page<Anyone>,
    slug: &str,
    login_hint: Option<&str>,
    next: &str,
) -> Result<HttpResponse, AppError> {
    let base = page.base_url();
    let (binding, ip) = (page.binding(), page.client_ip());
    match service::start(&page.state, slug, &base, login_hint, next, &binding, &ip).await? {
        // Not a 303: the CSP's `form-action 'self'` also covers where a form's redirects
        // lead, so the browser would refuse to follow one to the provider.
        Started::Redirect(url) => {
            let partial = ContinuePartial {
                title: "Signing in".into(),
                provider: "Microsoft".into(),
                url: url.clone(),
            };
            let mut res = page.render(StatusCode::OK, partial, "login")?;
            let headers = res.headers_mut();
            if let Ok(refresh) = HeaderValue::from_str(&format!("0;url={url}")) {
                headers.insert(HeaderName::from_static("refresh"), refresh);
            }
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(res)
        }
        // A button for a profile that went away is a 404; a name routed here by its domain
        // gets the "not possible right now" page.
        Started::Unknown if login_hint.is_none() => Err(AppError::NotFound),
        Started::Unknown | Started::Unavailable => failed(
            page,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in with Microsoft is not possible right now: Roster cannot reach the provider. Try again later, or tell your administrator.",
            login_hint.unwrap_or(""),
            next,
        )
        .await,
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

pub async fn callback(
    page: Page<Anyone>,
    slug: Path<String>,
    query: Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let answer = Answer {
        code: query.code,
        state: query.state,
        error: query.error,
        error_description: query.error_description,
    };
    let ip = page.client_ip();
    match service::finish(&page.state, &slug, answer, &page.binding(), &ip).await? {
        Finished::SignedIn { user, next } => signed_in(&page, &user, &next).await,
        Finished::Refused(message) => failed(&page, StatusCode::FORBIDDEN, &message, "", "").await,
    }
}
