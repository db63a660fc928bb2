//! The HTTP/1.1 plumbing the in-process fakes (Entra ID, Google, IceWarp) share: an accept
//! loop with one task per keep-alive connection (plain TCP, or TLS for IceWarp), the request
//! as the handlers see it, the answer before it becomes a hyper response, and the faults
//! that are about the wire rather than the protocol — a stall, a body cut off under a full
//! `Content-Length`, an HTML proxy page sent as JSON — plus the queue that decides when a
//! test's fault fires.
//!
//! Each fake includes it with `#[path = "fake_http.rs"]`, so it stays self-contained too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The accept loop's task; dropping it (with the fake's last handle) stops accepting.
pub struct AcceptLoop(tokio::task::JoinHandle<()>);

impl AcceptLoop {
    /// Serves every connection on `listener` with `handler`, one task per connection.
    pub fn spawn<H, F>(listener: tokio::net::TcpListener, handler: H) -> AcceptLoop
    where
        H: Fn(Call) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        AcceptLoop(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, handler.clone()));
            }
        }))
    }

    /// The same over TLS: each connection's handshake runs in its own task, so a client
    /// that stalls or refuses the certificate holds up nobody else.
    pub fn spawn_tls<H, F>(
        listener: tokio::net::TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
        handler: H,
    ) -> AcceptLoop
    where
        H: Fn(Call) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        AcceptLoop(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (acceptor, handler) = (acceptor.clone(), handler.clone());
                tokio::spawn(async move {
                    // A failed handshake (a client that does not trust the certificate)
                    // is the client's answer, not an error of the fake's.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, handler).await;
                    }
                });
            }
        }))
    }
}

/// One keep-alive HTTP/1.1 connection, plain or TLS.
async fn serve_connection<S, H, F>(stream: S, handler: H)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(Call) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let handler = handler.clone();
        async move {
            let call = Call::read(request).await;
            Ok::<_, std::convert::Infallible>(handler(call).await.into_response())
        }
    });
    // A client that hangs up mid-request is no error of the fake's.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
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
    /// Path and query percent-decoded, as the fakes record them.
    pub path_and_query: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Call {
    async fn read(request: Request<Incoming>) -> Call {
        let (parts, body) = request.into_parts();
        let body = read_body(body).await;
        let raw = parts.uri.path_and_query().map_or("", |p| p.as_str());
        Call {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            path_and_query: percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .into_owned(),
            query: url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
            headers: parts.headers,
            body,
        }
    }

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

/// An answer before it becomes a hyper response.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send half the body under a full `Content-Length`, then close.
    pub cut_off: bool,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply::json_bytes(status, value.to_string().into_bytes())
    }

    /// JSON already serialised (directory pages are written straight into bytes).
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Reply {
        Reply::bytes(status, "application/json; charset=utf-8", body)
    }

    pub fn html(status: u16, text: String) -> Reply {
        Reply::bytes(status, "text/html; charset=utf-8", text.into_bytes())
    }

    /// Any body under any content type (IceWarp's XML, a proxy's plain text).
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
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

    /// 200 `application/json` whose body is a proxy's HTML error page.
    pub fn garbage() -> Reply {
        Reply::json_bytes(
            200,
            b"<html><head><title>502 Bad Gateway</title></head><body>proxy error</body></html>"
                .to_vec(),
        )
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

/// What a stalled request waits for: longer than any client's timeout.
pub async fn stall() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
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
                    "fake: connection cut off mid-body",
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

/// A fault a test queued: it fires once, on the request after `skip` more matching ones.
pub struct PendingFault<R, F> {
    pub route: R,
    pub skip: usize,
    pub fault: F,
}

/// The fault for a request on `route`, if one is due: queued faults first (each counts the
/// requests on its own route; `any` matches every request), then the standing ones.
pub fn take_fault<R: Copy + PartialEq, F: Clone>(
    queued: &mut Vec<PendingFault<R, F>>,
    always: &[(R, F)],
    route: Option<R>,
    any: R,
) -> Option<F> {
    let applies = |r: R| r == any || Some(r) == route;
    let mut fired = None;
    queued.retain_mut(|pending| {
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
        always
            .iter()
            .find(|(r, _)| applies(*r))
            .map(|(_, f)| f.clone())
    })
}
