//! The fake's side of HTTPS (the wire itself is `fake_http.rs`, shared with the other
//! fakes): the certificate, the endpoint's checks (path, method, content type), the `<iq>`
//! envelope both ways, recording, latency and faults, then the commands (`commands.rs`).

use std::sync::Arc;
use std::time::Instant;

use super::commands::{self, Answer, Shape};
use super::http::{self, AcceptLoop, Call, Reply};
use super::state::State;
use super::xml::{self, Element};
use super::{Command, Fault, Recorded, Shared};

pub const PATH: &str = "/icewarpapi/";
const NAMESPACE: &str = "admin:iq:rpc";

/// A self-signed certificate for `127.0.0.1` and `localhost` (PEM), and the acceptor that
/// serves with it. ring is named here rather than taken from a process default, so the
/// fake needs no set-up from whoever includes it.
pub fn tls() -> (String, tokio_rustls::TlsAcceptor) {
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("IceWarp fake: generate a certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("IceWarp fake: TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![key.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
        )
        .expect("IceWarp fake: TLS configuration");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    (key.cert.pem(), acceptor)
}

pub fn spawn(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
) -> AcceptLoop {
    AcceptLoop::spawn_tls(listener, acceptor, move |call| handle(shared.clone(), call))
}

/// A request's envelope, read.
struct Envelope {
    command: String,
    sid: Option<String>,
    /// `<commandparams>`, or an empty element when there is none (`logout`).
    params: Element,
}

/// `<iq [sid]><query xmlns="admin:iq:rpc"><commandname/>[<commandparams/>]</query></iq>`;
/// anything else, well-formed or not, is `xml_invalid`.
fn envelope(body: &[u8]) -> Option<Envelope> {
    let text = std::str::from_utf8(body).ok()?;
    let mut root = xml::parse(text).ok()?;
    if root.name != "iq" {
        return None;
    }
    let sid = root.attr("sid").map(str::to_owned);
    let query = root.children.iter_mut().find_map(|n| match n {
        xml::Node::Element(e) if e.name == "query" => Some(e),
        _ => None,
    })?;
    if query.attr("xmlns") != Some(NAMESPACE) {
        return None;
    }
    let command = query.child("commandname")?.text().trim().to_owned();
    if command.is_empty() {
        return None;
    }
    let params = query
        .children
        .iter_mut()
        .find_map(|n| match n {
            xml::Node::Element(e) if e.name == "commandparams" => Some(std::mem::take(e)),
            _ => None,
        })
        .unwrap_or_default();
    Some(Envelope {
        command,
        sid,
        params,
    })
}

/// Parameters as recorded: flat, passwords hidden.
fn recorded_params(params: &Element) -> Vec<(String, String)> {
    params
        .leaves()
        .into_iter()
        .map(|(name, text)| {
            if name.eq_ignore_ascii_case("password") && !text.is_empty() {
                (name, "***".to_owned())
            } else {
                (name, text)
            }
        })
        .collect()
}

fn xml_reply(state: &State, body: String) -> Reply {
    let content_type = if state.text_xml {
        "text/xml; charset=utf-8"
    } else {
        "application/xml; charset=utf-8"
    };
    Reply::bytes(200, content_type, body.into_bytes())
}

pub fn result_iq(sid: &str, result: &str) -> String {
    format!(
        "<iq type=\"result\" sid=\"{}\"><query xmlns=\"{NAMESPACE}\"><result>{result}</result></query></iq>",
        xml::escape(sid)
    )
}

pub fn error_iq(uid: &str) -> String {
    format!(
        "<iq type=\"error\"><query xmlns=\"{NAMESPACE}\"><error uid=\"{}\"/></query></iq>",
        xml::escape(uid)
    )
}

fn plain(status: u16, text: &str) -> Reply {
    Reply::bytes(
        status,
        "text/plain; charset=utf-8",
        text.as_bytes().to_vec(),
    )
}

/// Path, method and content type, in that order, as a web server checks them before the
/// API sees the request.
fn check_http(call: &Call) -> Result<(), Reply> {
    if call.path != PATH {
        return Err(Reply::html(
            404,
            "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
                .into(),
        ));
    }
    if call.method != "POST" {
        return Err(plain(405, "405 Method Not Allowed").header("allow", "POST"));
    }
    let media = call
        .header("content-type")
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("text/xml" | "application/xml") => Ok(()),
        _ => Err(plain(415, "415 Unsupported Media Type")),
    }
}

async fn handle(shared: Arc<Shared>, call: Call) -> Reply {
    if let Err(reply) = check_http(&call) {
        return reply;
    }
    let envelope = envelope(&call.body);
    let (fault, latency) = {
        let mut state = shared.state();
        let recorded = match &envelope {
            Some(e) => Recorded {
                command: e.command.clone(),
                sid: e.sid.clone(),
                params: recorded_params(&e.params),
                at: Instant::now(),
            },
            None => Recorded {
                command: String::new(),
                sid: None,
                params: Vec::new(),
                at: Instant::now(),
            },
        };
        state.requests.push(recorded);
        let command = envelope.as_ref().and_then(|e| Command::of(&e.command));
        let State { faults, .. } = &mut *state;
        let fault = http::take_fault(faults, &[], command, Command::Any);
        (fault, state.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    // Faults that stand for a request that never reached IceWarp, or that it refused,
    // answer without running the command; those that damage IceWarp's answer on its way
    // run it (a damaged `authenticate` answer leaves its session open, as a real one would).
    let mut shape = Shape::default();
    match &fault {
        Some(Fault::Stall) => {
            http::stall().await;
            return plain(504, "504 Gateway Timeout");
        }
        Some(Fault::Status(status)) => {
            let reason = hyper::StatusCode::from_u16(*status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            return plain(*status, &format!("{status} {reason}"));
        }
        Some(Fault::Html) => {
            return Reply::html(
                200,
                "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad \
                 Gateway</h1><p>The proxy could not reach the server.</p></body></html>"
                    .into(),
            );
        }
        Some(Fault::ErrorIq(uid)) => return xml_reply(&shared.state(), error_iq(uid)),
        Some(Fault::NoOverallCount) => shape.no_overall_count = true,
        Some(Fault::ShortPage) => shape.short_page = true,
        Some(Fault::IgnoresOffset) => shape.ignores_offset = true,
        Some(Fault::CutOff | Fault::Malformed) | None => {}
    }
    let body = answer(&shared, envelope, shape).await;
    let state = shared.state();
    match fault {
        Some(Fault::CutOff) => {
            let mut reply = xml_reply(&state, body);
            reply.cut_off = true;
            reply
        }
        Some(Fault::Malformed) => xml_reply(&state, malformed(&body)),
        _ => xml_reply(&state, body),
    }
}

/// Runs the command and writes its `<iq>`; a failed login waits first, outside the lock.
async fn answer(shared: &Shared, envelope: Option<Envelope>, shape: Shape) -> String {
    let Some(envelope) = envelope else {
        return error_iq("xml_invalid");
    };
    let (answer, delay) = {
        let mut state = shared.state();
        let answer = commands::run(
            &mut state,
            &envelope.command,
            envelope.sid.as_deref(),
            &envelope.params,
            shape,
        );
        (answer, state.failed_login_delay)
    };
    match answer {
        Answer::Result { sid, result } => result_iq(&sid, &result),
        Answer::Error(uid) => error_iq(&uid),
        Answer::LoginFailed => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            error_iq("auth_login_invalid")
        }
    }
}

/// The first half of `body`, cut again just inside its last tag (`…<ite`): whole as a
/// body, but not well-formed XML.
fn malformed(body: &str) -> String {
    let mut half = body.len() / 2;
    while !body.is_char_boundary(half) {
        half -= 1;
    }
    let tag = body[..half].rfind('<').unwrap_or(0);
    // Tag names are ASCII, so two bytes past `<` stay on a character boundary, and what
    // follows `<` is at least one more character of the tag.
    let end = (tag + 3).min(body.len());
    let end = (end..=body.len())
        .find(|i| body.is_char_boundary(*i))
        .unwrap_or(body.len());
    body[..end].to_owned()
}
