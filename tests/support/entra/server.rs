//! The fake's side of HTTP (the wire itself is `fake_http.rs`, shared with the Google fake):
//! routing, recording, latency and faults, then dispatch to the login or Graph handlers.

use std::sync::Arc;
use std::time::Instant;

use super::http::{self, AcceptLoop};
pub use super::http::{Call, Reply};
use super::{Fault, Recorded, Route, Shared, State, graph, sign_in, token};

/// Starts serving the fake on `listener`.
pub fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> AcceptLoop {
    AcceptLoop::spawn(listener, move |call| handle(shared.clone(), call))
}

/// Which handler a path belongs to.
enum Endpoint {
    Token(String),
    Authorize(String),
    Discovery(String),
    Jwks(String),
    Graph,
    Unknown,
}

fn classify(path: &str) -> (Endpoint, Option<Route>) {
    if path.starts_with("/v1.0/") || path == "/v1.0" {
        let segments: Vec<&str> = path.trim_start_matches("/v1.0").split('/').collect();
        let route = match segments.get(1..).unwrap_or(&[]) {
            ["users", ..] => Some(Route::Users),
            ["groups"] | ["groups", _] => Some(Route::Groups),
            [
                "groups",
                _,
                "transitiveMembers" | "members" | "transitiveMemberOf",
                ..,
            ] => Some(Route::Members),
            _ => None,
        };
        return (Endpoint::Graph, route);
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        [tenant, "oauth2", "v2.0", "token"] => {
            (Endpoint::Token(tenant.to_string()), Some(Route::Token))
        }
        [tenant, "oauth2", "v2.0", "authorize"] => (Endpoint::Authorize(tenant.to_string()), None),
        [tenant, "v2.0", ".well-known", "openid-configuration"] => {
            (Endpoint::Discovery(tenant.to_string()), None)
        }
        [tenant, "discovery", "v2.0", "keys"] => (Endpoint::Jwks(tenant.to_string()), None),
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
            consistency_level: call.header("consistencylevel").map(str::to_owned),
            at: Instant::now(),
            route,
        });
        match endpoint {
            Endpoint::Token(_) => state.token_requests += 1,
            Endpoint::Jwks(_) => state.jwks_requests += 1,
            _ => {}
        }
        (take_fault(&mut state, route), state.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let on_token = route == Some(Route::Token);
    match fault {
        None => dispatch(&shared, &call, &endpoint, false),
        Some(Fault::Stall) => {
            http::stall().await;
            graph::error(
                504,
                "GatewayTimeout",
                "The fake stalled this request.",
                &call,
            )
        }
        Some(Fault::CutOff) => {
            let mut reply = dispatch(&shared, &call, &endpoint, false);
            reply.cut_off = true;
            reply
        }
        Some(Fault::Truncated) => dispatch(&shared, &call, &endpoint, true),
        Some(Fault::Garbage) => Reply::garbage(),
        Some(Fault::Throttle { retry_after }) => {
            let reply = if on_token {
                token::error(
                    &shared,
                    429,
                    "temporarily_unavailable",
                    90055,
                    "There are too many incoming requests.",
                )
            } else {
                graph::error(429, "TooManyRequests", "Too many requests", &call)
            };
            with_retry_after(reply, retry_after)
        }
        Some(Fault::Unavailable { retry_after }) => {
            let reply = if on_token {
                token::error(
                    &shared,
                    503,
                    "temporarily_unavailable",
                    90033,
                    "A transient error has occurred. Please try again.",
                )
            } else {
                graph::error(503, "serviceNotAvailable", "Service unavailable", &call)
            };
            with_retry_after(reply, retry_after)
        }
        Some(Fault::Error {
            status,
            code,
            message,
        }) => {
            if on_token {
                token::raw_error(&shared, status, &code, &message)
            } else {
                graph::error(status, &code, &message, &call)
            }
        }
    }
}

fn with_retry_after(reply: Reply, retry_after: Option<u64>) -> Reply {
    match retry_after {
        Some(seconds) => reply.header("retry-after", &seconds.to_string()),
        None => reply,
    }
}

/// The fault for this request, if one is due.
fn take_fault(state: &mut State, route: Option<Route>) -> Option<Fault> {
    let State { faults, always, .. } = state;
    http::take_fault(faults, always, route, Route::Any)
}

fn dispatch(shared: &Shared, call: &Call, endpoint: &Endpoint, truncate: bool) -> Reply {
    match endpoint {
        Endpoint::Token(tenant) => token::token(shared, call, tenant, truncate),
        Endpoint::Authorize(tenant) => sign_in::authorize(shared, call, tenant),
        Endpoint::Discovery(tenant) => sign_in::discovery(shared, tenant),
        Endpoint::Jwks(tenant) => sign_in::jwks(shared, tenant),
        Endpoint::Graph => graph::handle(shared, call, truncate),
        Endpoint::Unknown => json_not_found(call),
    }
}

fn json_not_found(call: &Call) -> Reply {
    let message = format!("No such endpoint: {} {}", call.method, call.path);
    graph::error(404, "NotFound", &message, call)
}
