//! The fake's side of HTTP (the wire itself is `fake_http.rs`, shared with the Entra fake):
//! which route a path is, recording, latency and faults, then dispatch to the token,
//! sign-in or Directory handlers.

use std::sync::Arc;
use std::time::Instant;

use super::http::{self, AcceptLoop};
pub use super::http::{Call, Reply};
use super::{Fault, Recorded, Route, Shared, State, directory, errors, sign_in, token};

/// Starts serving the fake on `listener`.
pub fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> AcceptLoop {
    AcceptLoop::spawn(listener, move |call| handle(shared.clone(), call))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Token,
    Authorize,
    Discovery,
    Jwks,
    Directory,
    Unknown,
}

fn classify(path: &str) -> (Endpoint, Option<Route>) {
    if let Some(rest) = path.strip_prefix(directory::PREFIX) {
        let segments: Vec<&str> = rest.split('/').collect();
        let route = match segments.as_slice() {
            ["users", ..] => Route::Users,
            ["groups"] | ["groups", _] => Route::Groups,
            ["groups", _, "members", ..] => Route::Members,
            _ => return (Endpoint::Unknown, None),
        };
        return (Endpoint::Directory, Some(route));
    }
    match path {
        "/token" => (Endpoint::Token, Some(Route::Token)),
        "/o/oauth2/v2/auth" => (Endpoint::Authorize, Some(Route::Oidc)),
        "/.well-known/openid-configuration" => (Endpoint::Discovery, Some(Route::Oidc)),
        "/oauth2/v3/certs" => (Endpoint::Jwks, Some(Route::Oidc)),
        _ => (Endpoint::Unknown, None),
    }
}

async fn handle(shared: Arc<Shared>, call: Call) -> Reply {
    let (endpoint, route) = classify(&call.path);
    let (fault, latency) = {
        let mut state = shared.state();
        state.requests.push(Recorded {
            method: call.method.clone(),
            path_and_query: call.path_and_query.clone(),
            route,
            at: Instant::now(),
            authorization_present: call.header("authorization").is_some(),
        });
        match endpoint {
            Endpoint::Token => state.token_requests += 1,
            Endpoint::Jwks => state.jwks_requests += 1,
            _ => {}
        }
        (take_fault(&mut state, route), state.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        None => dispatch(&shared, &call, endpoint, route, false),
        Some(Fault::Stall) => {
            http::stall().await;
            dispatch(&shared, &call, endpoint, route, false)
        }
        Some(Fault::CutOff) => {
            let mut reply = dispatch(&shared, &call, endpoint, route, false);
            reply.cut_off = true;
            reply
        }
        Some(Fault::Garbage) => Reply::garbage(),
        Some(Fault::BadPageToken) => dispatch(&shared, &call, endpoint, route, true),
        Some(Fault::RateLimit { status, reason }) => match endpoint {
            Endpoint::Token => {
                token::oauth_error(status, "rate_limit_exceeded", "Rate Limit Exceeded")
            }
            _ => errors::rate_limited(status, &reason),
        },
        Some(Fault::Error {
            status,
            reason,
            message,
        }) => match endpoint {
            Endpoint::Token => token::oauth_error(status, &reason, &message),
            Endpoint::Authorize => sign_in::error_page(status, &reason, &message),
            _ => errors::fault_error(status, &reason, &message),
        },
    }
}

/// The fault for this request, if one is due.
fn take_fault(state: &mut State, route: Option<Route>) -> Option<Fault> {
    let State { faults, always, .. } = state;
    http::take_fault(faults, always, route, Route::Any)
}

fn dispatch(
    shared: &Shared,
    call: &Call,
    endpoint: Endpoint,
    route: Option<Route>,
    bad_page: bool,
) -> Reply {
    match (endpoint, route) {
        (Endpoint::Token, _) => token::token(shared, call, bad_page),
        (Endpoint::Authorize, _) => sign_in::authorize(shared, call),
        (Endpoint::Discovery, _) => sign_in::discovery(shared),
        (Endpoint::Jwks, _) => sign_in::jwks(shared),
        (Endpoint::Directory, Some(route)) => directory::handle(shared, call, route, bad_page),
        _ => not_found_page(call),
    }
}

/// Google's front end answers an unknown path with its HTML 404 page.
pub fn not_found_page(call: &Call) -> Reply {
    let path = call
        .path
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Reply::html(
        404,
        format!(
            "<!DOCTYPE html>\n<html lang=en>\n<meta charset=utf-8>\n<title>Error 404 (Not \
             Found)!!1</title>\n<p><b>404.</b> <ins>That’s an error.</ins>\n<p>The requested \
             URL <code>{path}</code> was not found on this server.  <ins>That’s all we \
             know.</ins>\n"
        ),
    )
}
