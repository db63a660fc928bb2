//! Who is asking: the signed-in user (from the session cookie) and the client address.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};

use crate::auth::sessions;
use crate::error::AppError;
use crate::state::AppState;

pub use crate::services::sessions::SignedIn;

/// A signed-in user with the admin privilege; others get 403, anonymous users sign in.
pub struct Admin(pub SignedIn);

fn state(req: &HttpRequest) -> Result<Data<AppState>, AppError> {
    req.app_data::<Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state missing")))
}

/// Where to come back to after signing in: this page, if it was a GET.
fn next_of(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into())
    } else {
        "/".into()
    }
}

/// The current session's user, if the cookie names a live, fully signed-in session.
pub async fn current(req: &HttpRequest) -> Result<Option<SignedIn>, AppError> {
    let state = state(req)?;
    match req.cookie(sessions::cookie_name(state.session_policy.https)) {
        Some(cookie) => crate::services::sessions::current(&state, cookie.value()).await,
        None => Ok(None),
    }
}

/// Where a session is begun from: this request's address, browser and old session cookie.
pub fn origin(req: &HttpRequest, state: &AppState) -> crate::services::sessions::Origin {
    crate::services::sessions::Origin {
        client_ip: client_ip(req, state),
        user_agent: user_agent(req),
        previous_token: req
            .cookie(sessions::cookie_name(state.session_policy.https))
            .map(|c| c.value().to_owned()),
    }
}

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<SignedIn, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            current(&req)
                .await?
                .ok_or_else(|| AppError::SignInRequired {
                    next: next_of(&req),
                })
        })
    }
}

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(req, payload);
        Box::pin(async move {
            let user = signed_in.await?;
            if !user.is_admin() {
                return Err(AppError::Forbidden(
                    "This page is for administrators.".into(),
                ));
            }
            Ok(Admin(user))
        })
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// last address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let trusted = |ip: &IpAddr| state.settings.trusted_proxies.contains(ip);
    if let Some(peer_ip) = peer.filter(|ip| trusted(ip)) {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let client = forwarded
            .split(',')
            .rev()
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .find(|ip| !trusted(ip));
        return client.unwrap_or(peer_ip).to_string();
    }
    peer.map(|ip| ip.to_string()).unwrap_or_default()
}

/// The signed-in person as the audit log names them, from this request's address.
pub fn actor(req: &HttpRequest, state: &AppState, me: &SignedIn) -> crate::audit::Actor {
    crate::audit::Actor::user(me.user.id, me.user.login_name(), client_ip(req, state))
}

pub fn user_agent(req: &HttpRequest) -> String {
    req.headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Where a signed-in user belongs: admins on the console, everyone else on My account.
pub fn home_path(is_admin: bool) -> &'static str {
    if is_admin { "/admin" } else { "/account" }
}

/// A `next` target is followed only when it is a same-origin relative path.
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?.trim();
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| next.to_owned())
}
