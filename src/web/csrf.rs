//! CSRF defence: every unsafe request needs a same-origin `Origin`/`Sec-Fetch-Site` and a
//! token bound to the browser's session (or, before sign-in, to a pre-session cookie; see
//! `auth::csrf`). htmx sends it as `X-CSRF-Token`, plain forms as the `csrf_token` field.
//! GET never changes state, so only unsafe methods are checked.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::{Error, HttpMessage, HttpRequest, ResponseError};

use crate::auth::csrf::{FIELD, HEADER, MAX_UPLOAD_FORM_BODY, pre_session_cookie_name};
use crate::auth::sessions;
use crate::crypto::random_token;
use crate::error::AppError;
use crate::state::AppState;

/// Larger form bodies are not buffered for the token check; they must send the header.
const MAX_FORM_BODY: usize = 256 * 1024;

fn body_limit(path: &str) -> usize {
    if path.starts_with("/admin/profiles") {
        MAX_UPLOAD_FORM_BODY
    } else {
        MAX_FORM_BODY
    }
}

/// What the token is bound to for this request, set by the middleware.
#[derive(Clone)]
pub struct Binding(pub String);

/// The token to put in forms and the htmx header of the page being rendered.
pub fn token(req: &HttpRequest, state: &AppState) -> String {
    state.csrf.token_for(&binding(req))
}

/// What this browser's tokens (and OpenID sign-ins) are bound to.
pub fn binding(req: &HttpRequest) -> String {
    req.extensions()
        .get::<Binding>()
        .map(|b| b.0.clone())
        .unwrap_or_default()
}

fn binding_cookie(req: &ServiceRequest, https: bool) -> Option<String> {
    req.cookie(sessions::cookie_name(https))
        .or_else(|| req.cookie(pre_session_cookie_name(https)))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The middleware: sets the binding (creating a pre-session cookie when there is none)
/// and refuses unsafe requests without a same-origin marker and a valid token.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, Error> {
    let Some(state) = req.app_data::<Data<AppState>>().cloned() else {
        return Err(AppError::Internal(anyhow::anyhow!("application state missing")).into());
    };
    let https = state.session_policy.https;
    let existing = binding_cookie(&req, https);
    let new_pre_session = existing.is_none().then(random_token);
    let binding = existing
        .clone()
        .or(new_pre_session.clone())
        .unwrap_or_default();
    req.extensions_mut().insert(Binding(binding.clone()));

    if is_unsafe(req.method()) {
        if !same_origin(&req, &state) {
            return Ok(refuse(req, "Cross-site request refused."));
        }
        let token = match header_token(&req) {
            Some(t) => Some(t),
            None => match form_token(&mut req).await {
                Ok(token) => token,
                Err(limit) => {
                    let res = AppError::TooLarge(format!(
                        "This form is larger than {} MiB, more than Roster accepts. Nothing was saved.",
                        limit / (1024 * 1024)
                    ))
                    .error_response();
                    return Ok(req.into_response(res).map_into_right_body());
                }
            },
        };
        let valid = existing.is_some() && token.is_some_and(|t| state.csrf.verify(&binding, &t));
        if !valid {
            return Ok(refuse(
                req,
                "This form has expired. Reload the page and try again.",
            ));
        }
    }

    // A pre-session cookie from before it was Lax is set again on the sign-in page, or a
    // Microsoft sign-in begun with it would come back without it.
    let reissue = (req.path() == "/login" && req.cookie(sessions::cookie_name(https)).is_none())
        .then(|| {
            req.cookie(pre_session_cookie_name(https))
                .map(|c| c.value().to_owned())
        })
        .flatten()
        .filter(|v| !v.is_empty());
    let mut res = next.call(req).await?.map_into_left_body();
    if let Some(value) = new_pre_session.or(reissue) {
        // Lax, not Strict: an OpenID provider's answer arrives as a top-level navigation
        // from its site, and the sign-in's state is bound to this cookie. Lax still keeps
        // it off every cross-site POST.
        let cookie = Cookie::build(pre_session_cookie_name(https), value)
            .path("/")
            .http_only(true)
            .secure(https)
            .same_site(SameSite::Lax)
            .finish();
        res.response_mut().add_cookie(&cookie)?;
    }
    Ok(res)
}

/// An `AppError` response, so the error-page layer renders it like any other.
fn refuse<B>(req: ServiceRequest, message: &str) -> ServiceResponse<EitherBody<B, BoxBody>> {
    let res = AppError::Forbidden(message.into()).error_response();
    req.into_response(res).map_into_right_body()
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Browsers say where a request comes from; clients that say nothing still need the token.
fn same_origin(req: &ServiceRequest, state: &AppState) -> bool {
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = req.headers().get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let expected = match &state.settings.public_url {
        Some(url) => url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    origin == expected
}

fn header_token(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Reads the `csrf_token` field of an urlencoded form and puts the body back for the handler.
/// `Err(limit)`: the body is larger than this path takes.
async fn form_token(req: &mut ServiceRequest) -> Result<Option<String>, usize> {
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok(None);
    }
    let limit = body_limit(req.path());
    let mut payload = req.take_payload();
    let mut body = Vec::new();
    use futures_util::StreamExt;
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return Ok(None);
        };
        if body.len() + chunk.len() > limit {
            return Err(limit);
        }
        body.extend_from_slice(&chunk);
    }
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned());
    req.set_payload(actix_web::dev::Payload::from(Bytes::from(body)));
    Ok(token)
}
