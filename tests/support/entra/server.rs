//! The HTTP/1.1 side of the fake: the accept loop with one task per (keep-alive)
//! connection, recording, latency and faults, then dispatch to the login or Graph handlers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{Fault, Recorded, Route, Shared, State, graph, sign_in, token};

/// The accept loop's task; dropping it (with the last `EntraFake`) stops accepting.
pub struct AcceptLoop(tokio::task::JoinHandle<()>);

impl AcceptLoop {
    pub fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> AcceptLoop {
        AcceptLoop(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| handle(shared.clone(), request));
                    // A client that hangs up mid-request is no error of the fake's.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }))
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A request as the handlers see it.
pub struct Call {
    pub method: String,
    pub path: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Call {
    /// The last value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The form-encoded body, last value winning.
    pub fn form(&self) -> std::collections::HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

/// An answer before it becomes a hyper response.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send half the body under a full `Content-Length`, then close (Fault::CutOff).
    cut_off: bool,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply::json_bytes(status, value.to_string().into_bytes())
    }

    /// JSON already serialised (Graph pages are written straight into bytes).
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body,
            cut_off: false,
        }
    }

    pub fn html(status: u16, text: String) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body: text.into_bytes(),
            cut_off: false,
        }
    }

    pub fn redirect(location: &str) -> Reply {
        Reply {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
            cut_off: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    fn into_response(self) -> Response<FakeBody> {
        let mut builder = Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = Bytes::from(self.body);
        let body = if self.cut_off {
            builder = builder.header("content-length", body.len().to_string());
            FakeBody::CutOff {
                half: Some(body.slice(..body.len() / 2)),
                pause: None,
            }
        } else {
            FakeBody::Full(Some(body))
        };
        builder.body(body).unwrap_or_else(|_| {
            let mut broken = Response::new(FakeBody::Full(None));
            *broken.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            broken
        })
    }
}

/// A response body: whole, or half and then an error that makes hyper drop the connection.
pub enum FakeBody {
    Full(Option<Bytes>),
    CutOff {
        half: Option<Bytes>,
        /// A short wait after the half: hyper flushes only between polls, and would
        /// otherwise close the connection with the half still in its buffer.
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl Body for FakeBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            FakeBody::Full(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            FakeBody::CutOff { half, pause } => {
                if let Some(half) = half.take() {
                    *pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(50))));
                    return Poll::Ready(Some(Ok(Frame::data(half))));
                }
                if let Some(sleep) = pause.as_mut()
                    && sleep.as_mut().poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "Entra fake: connection cut off mid-body",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, FakeBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            FakeBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            FakeBody::Full(None) => SizeHint::with_exact(0),
            FakeBody::CutOff { .. } => SizeHint::default(),
        }
    }
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
            ["groups", _, "transitiveMembers" | "members", ..] => Some(Route::Members),
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

async fn read_body(mut body: Incoming) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Err(_) => break,
        }
    }
    out
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<FakeBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = read_body(body).await;
    let raw_query = parts.uri.query().unwrap_or("");
    let call = Call {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: url::form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect(),
        headers: parts.headers,
        body,
    };
    let (endpoint, route) = classify(&call.path);
    let (fault, latency) = {
        let mut state = shared.state();
        let path_and_query = parts.uri.path_and_query().map_or("", |p| p.as_str());
        state.requests.push(Recorded {
            method: call.method.clone(),
            path_and_query: percent_encoding::percent_decode_str(path_and_query)
                .decode_utf8_lossy()
                .into_owned(),
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
    let reply = match fault {
        None => dispatch(&shared, &call, &endpoint, false),
        Some(Fault::Stall) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
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
        Some(Fault::Garbage) => Reply {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body:
                b"<html><head><title>502 Bad Gateway</title></head><body>proxy error</body></html>"
                    .to_vec(),
            cut_off: false,
        },
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
    };
    Ok(reply.into_response())
}

fn with_retry_after(reply: Reply, retry_after: Option<u64>) -> Reply {
    match retry_after {
        Some(seconds) => reply.header("retry-after", &seconds.to_string()),
        None => reply,
    }
}

/// The fault for this request, if one is due: queued faults first (each counts the
/// requests on its own route), then the standing ones.
fn take_fault(state: &mut State, route: Option<Route>) -> Option<Fault> {
    let applies = |r: Route| r == Route::Any || Some(r) == route;
    let mut fired = None;
    state.faults.retain_mut(|pending| {
        if !applies(pending.route) {
            return true;
        }
        if pending.skip > 0 {
            pending.skip -= 1;
            return true;
        }
        if fired.is_none() {
            fired = Some(pending.fault.clone());
            return false;
        }
        true
    });
    fired.or_else(|| {
        state
            .always
            .iter()
            .find(|(r, _)| applies(*r))
            .map(|(_, f)| f.clone())
    })
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
