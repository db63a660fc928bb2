//! A local fake of MailStore's "Application Integration" endpoint, in-process on
//! `127.0.0.1:0` over plain HTTP (`start`) or HTTPS with a self-signed certificate
//! (`start_tls`): one URL, `POST {base}/api`, whose form field `cmd` names the command, behind
//! optional HTTP Basic auth, with faults per command.
//!
//! It follows `PROTOCOLS.md` ("MailStore Application Integration (HTTP)"). `cmd=list` is the
//! documented part: a JSON array of `{userName, distinguishedName, fullName, emailAddresses}`
//! sent as `text/json`, the type observed. The credential check (`cmd=auth&user=…&password=…`
//! → `{"success":true}`, 401/403 for wrong credentials) and the groups (`cmd=groups` →
//! `[{groupName, description, members}]`) are not publicly documented — PROTOCOLS.md marks
//! them *unverified* — so their answers here are assumed, and what a script may do otherwise
//! is a setting: the command names, the refusal, the content type. Assumed as well: a script
//! without groups answers `cmd=groups` as any unknown command (400 `text/plain`
//! `Unknown command '…'.`), and the form counts only when declared
//! `application/x-www-form-urlencoded`, as PHP's `$_POST` does. Faults of the wire (stall,
//! cut-off, status, proxy page) come before Basic auth, the script's own (bad JSON) after it.
//!
//! Self-contained (no `crate::`), so a benchmark can include it with
//! `#[path = "../tests/support/app_integration.rs"] mod app_integration_fake;`.
#![allow(dead_code)]

// The other fakes include it as well: each stays includable on its own.
#[allow(clippy::duplicate_mod)]
#[path = "fake_http.rs"]
mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http::{AcceptLoop, Call, PendingFault, Reply};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// A user as `cmd=list` lists them; `password` is what `cmd=auth` checks (`None`: it refuses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppUser {
    pub user_name: String,
    /// `None` is listed as `null`, or left out after `omit_null_distinguished_names(true)`.
    pub distinguished_name: Option<String>,
    pub full_name: String,
    pub email_addresses: Vec<String>,
    pub password: Option<String>,
}

impl AppUser {
    /// A user without a distinguished name or a password.
    pub fn new(user_name: &str, full_name: &str, emails: &[&str]) -> AppUser {
        AppUser {
            user_name: user_name.into(),
            distinguished_name: None,
            full_name: full_name.into(),
            email_addresses: emails.iter().map(|e| e.to_string()).collect(),
            password: None,
        }
    }
}

/// A group as `cmd=groups` lists it, members by `userName`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppGroup {
    pub group_name: String,
    pub description: String,
    pub members: Vec<String>,
}

impl AppGroup {
    pub fn new(group_name: &str, description: &str, members: &[&str]) -> AppGroup {
        let members = members.iter().map(|m| m.to_string()).collect();
        AppGroup {
            group_name: group_name.into(),
            description: description.into(),
            members,
        }
    }
}

/// What a fault or a count is about, by meaning (the names are `set_commands`').
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    List,
    Auth,
    Groups,
    /// Every request, unknown commands and wrong paths too.
    Any,
}

/// How `cmd=auth` answers wrong credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Refusal {
    /// 401 `{"success":false,"error":"invalid credentials"}`.
    #[default]
    Status401,
    /// 403 with the same body.
    Status403,
    /// 200 `{"success":false}`.
    Ok200False,
}

/// A misbehaviour that `fault` fires once. The first four are the wire's and come before Basic
/// auth; the last three are the script's: fired on a request refused by Basic auth or naming
/// an unknown command, they change nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reads the request and never answers.
    Stall,
    /// The real answer's status, headers and full `Content-Length`, half its body, then the
    /// connection closes.
    CutOff,
    /// This status and a short `text/plain` body, as a web server or proxy sends.
    Status(u16),
    /// 200 `text/html`: a proxy's error page.
    Html,
    /// 200 with the JSON content type and a script's error text.
    NotJson,
    /// 200 JSON of the wrong shape: the answer's array in an object (list, groups), its
    /// object in an array (auth).
    WrongShape,
    /// The first list entry lacks `userName` (no users: one entry without it); on groups the
    /// first group lacks `groupName`, on auth the answer lacks `success`.
    MissingUserName,
}

/// One request as the fake received it. Passwords are never kept.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The form's `cmd`; empty when there was none.
    pub cmd: String,
    /// What `cmd` meant to the server then; `None`: unknown, or not `POST /api`.
    pub command: Option<Command>,
    /// The user of an `Authorization: Basic` header, right or wrong.
    pub basic_user: Option<String>,
    pub at: Instant,
}

/// A handle on a running fake; clones share it. The server stops with the last handle.
#[derive(Clone)]
pub struct AppIntegrationFake {
    url: String,
    state: Arc<Mutex<State>>,
    _accept: Arc<AcceptLoop>,
    tls: Option<Arc<TlsFront>>,
}

/// Everything the fake knows, behind one lock that no task holds across an await.
#[derive(Default)]
struct State {
    users: Vec<AppUser>,
    groups: Option<Vec<AppGroup>>,
    /// The names of list, auth and groups.
    names: [String; 3],
    basic: Option<(String, String)>,
    refusal: Refusal,
    content_type: String,
    omit_null_dn: bool,
    /// The list answer, built by the first request after a change: 100,000 users are
    /// serialised once, not per request.
    list_body: Option<Arc<Vec<u8>>>,
    faults: Vec<PendingFault<Command, Fault>>,
    latency: Duration,
    requests: Vec<Recorded>,
}

impl AppIntegrationFake {
    /// Plain HTTP on `127.0.0.1:0`, served on the current tokio runtime.
    pub async fn start() -> AppIntegrationFake {
        AppIntegrationFake::serve(false).await
    }

    /// HTTPS on `127.0.0.1:0` with a new self-signed certificate for IP 127.0.0.1.
    pub async fn start_tls() -> AppIntegrationFake {
        AppIntegrationFake::serve(true).await
    }

    async fn serve(tls: bool) -> AppIntegrationFake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let plain = listener.local_addr().expect("local address");
        let tls = match tls {
            true => Some(Arc::new(TlsFront::start(plain).await)),
            false => None,
        };
        let url = match &tls {
            Some(front) => format!("https://127.0.0.1:{}/api", front.port),
            None => format!("http://127.0.0.1:{}/api", plain.port()),
        };
        let names = ["list", "auth", "groups"].map(String::from);
        let content_type = "text/json".into();
        let state = Arc::new(Mutex::new(State {
            names,
            content_type,
            ..State::default()
        }));
        let serving = state.clone();
        let accept = AcceptLoop::spawn(listener, move |call| handle(serving.clone(), call));
        let _accept = Arc::new(accept);
        AppIntegrationFake {
            url,
            state,
            _accept,
            tls,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `http(s)://127.0.0.1:PORT/api`: the URL a profile names.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The certificate a client must trust for `start_tls`; `None` for plain HTTP.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.tls.as_deref().map(|tls| tls.certificate_pem.as_str())
    }

    // ---- the server's settings ----

    /// From now on every request needs `Authorization: Basic` with these credentials.
    pub fn require_basic(&self, user: &str, password: &str) {
        self.state().basic = Some((user.into(), password.into()));
    }

    /// The names of the list, credential and group commands (default `list`, `auth`,
    /// `groups`): Roster's admin configures them to match the script.
    pub fn set_commands(&self, list: &str, auth: &str, groups: &str) {
        self.state().names = [list.into(), auth.into(), groups.into()];
    }

    pub fn set_refusal(&self, refusal: Refusal) {
        self.state().refusal = refusal;
    }

    /// The `Content-Type` of JSON answers (default `text/json`).
    pub fn content_type(&self, content_type: &str) {
        self.state().content_type = content_type.into();
    }

    /// `true`: a user without a distinguished name is listed without the member rather than
    /// with `null` (scripts do both).
    pub fn omit_null_distinguished_names(&self, omit: bool) {
        self.change(|state| state.omit_null_dn = omit);
    }

    // ---- the directory ----

    pub fn set_users(&self, users: Vec<AppUser>) {
        self.change(|state| state.users = users);
    }

    /// Replaces the user of the same name in place; else the one with the same distinguished
    /// name (a rename: group memberships follow); else appends.
    pub fn upsert_user(&self, user: AppUser) {
        self.change(|state| state.upsert(user));
    }

    /// Removes the user, from every group too.
    pub fn remove_user(&self, user_name: &str) -> bool {
        self.change(|state| {
            for group in state.groups.iter_mut().flatten() {
                group.members.retain(|m| m != user_name);
            }
            let before = state.users.len();
            state.users.retain(|u| u.user_name != user_name);
            state.users.len() != before
        })
    }

    /// Sets or clears the user's password; `false`: there is no such user.
    pub fn set_password(&self, user_name: &str, password: Option<&str>) -> bool {
        let mut state = self.state();
        let user = state.users.iter_mut().find(|u| u.user_name == user_name);
        let set = |u: &mut AppUser| u.password = password.map(String::from);
        user.map(set).is_some()
    }

    /// `Some`: `cmd=groups` lists these; `None` (the default): the script has no groups.
    pub fn set_groups(&self, groups: Option<Vec<AppGroup>>) {
        self.state().groups = groups;
    }

    /// Replaces the users with `n`: `generated_user_name(i)`, `User {i}`,
    /// `user{i}@example.com`, `CN=User {i},OU=Users,DC=example,DC=com`, no password.
    pub fn generate(&self, n: usize) {
        let user = |i| AppUser {
            user_name: AppIntegrationFake::generated_user_name(i),
            distinguished_name: Some(format!("CN=User {i},OU=Users,DC=example,DC=com")),
            full_name: format!("User {i}"),
            email_addresses: vec![format!("user{i}@example.com")],
            password: None,
        };
        self.set_users((0..n).map(user).collect());
    }

    pub fn generated_user_name(i: usize) -> String {
        format!("user{i}")
    }

    /// A change to what the list shows: the cached answer goes.
    fn change<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state();
        state.list_body = None;
        change(&mut state)
    }

    // ---- faults and measurement ----

    /// The (`after`+1)-th request for `command` from now gets `fault`, once. Faults queue.
    pub fn fault(&self, command: Command, after: usize, fault: Fault) {
        let (route, skip) = (command, after);
        self.state()
            .faults
            .push(PendingFault { route, skip, fault });
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Every request waits this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    pub fn request_count(&self, command: Command) -> usize {
        let counts = |r: &&Recorded| command == Command::Any || r.command == Some(command);
        self.state().requests.iter().filter(counts).count()
    }
}

impl State {
    fn command(&self, cmd: &str) -> Option<Command> {
        let commands = [Command::List, Command::Auth, Command::Groups];
        let mut named = self.names.iter().zip(commands);
        named.find(|(name, _)| *name == cmd).map(|(_, c)| c)
    }

    fn upsert(&mut self, user: AppUser) {
        // DNs compare case-insensitively, as in the LDAP directories they come from.
        let same_dn = |u: &AppUser| match (&u.distinguished_name, &user.distinguished_name) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        let by_name = self
            .users
            .iter()
            .position(|u| u.user_name == user.user_name);
        let Some(at) = by_name.or_else(|| self.users.iter().position(same_dn)) else {
            return self.users.push(user);
        };
        let (old, new) = (self.users[at].user_name.clone(), user.user_name.clone());
        self.users[at] = user;
        for member in self
            .groups
            .iter_mut()
            .flatten()
            .flat_map(|g| &mut g.members)
        {
            if *member == old {
                member.clone_from(&new);
            }
        }
    }

    fn json(&self, status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::json_bytes(status, body.into()).header("content-type", &self.content_type)
    }

    fn list(&mut self, fault: Option<Fault>) -> Reply {
        let omit = self.omit_null_dn;
        let body = match fault {
            Some(Fault::MissingUserName) => list_json(&self.users, omit, true),
            _ => {
                let users = &self.users;
                let cached =
                    (self.list_body).get_or_insert_with(|| Arc::new(list_json(users, omit, false)));
                cached.as_ref().clone()
            }
        };
        self.json(200, body)
    }

    fn auth(&self, form: &HashMap<String, String>, fault: Option<Fault>) -> Reply {
        if fault == Some(Fault::MissingUserName) {
            return self.json(200, "{}");
        }
        let user = form.get("user");
        let user = user.and_then(|u| self.users.iter().find(|x| x.user_name == *u));
        let given = form.get("password");
        if user.is_some_and(|u| u.password.is_some() && u.password.as_ref() == given) {
            return self.json(200, r#"{"success":true}"#);
        }
        let refused = r#"{"success":false,"error":"invalid credentials"}"#;
        match self.refusal {
            Refusal::Status401 => self.json(401, refused),
            Refusal::Status403 => self.json(403, refused),
            Refusal::Ok200False => self.json(200, r#"{"success":false}"#),
        }
    }

    fn groups(&self, fault: Option<Fault>) -> Reply {
        let entry = |g: &AppGroup| {
            let (name, description, members) = (&g.group_name, &g.description, &g.members);
            json!({ "groupName": name, "description": description, "members": members })
        };
        let mut groups: Vec<Value> = self.groups.iter().flatten().map(entry).collect();
        if let (Some(Fault::MissingUserName), Some(Value::Object(first))) =
            (fault, groups.first_mut())
        {
            first.remove("groupName");
        }
        self.json(200, Value::from(groups).to_string())
    }
}

/// A list entry on the wire; `None` leaves a member out (`Some(None)` is `null`). A struct,
/// not a `Value`: 100,000 of them serialise in a blink even unoptimised.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireUser<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distinguished_name: Option<Option<&'a str>>,
    full_name: &'a str,
    email_addresses: &'a [String],
}

fn list_json(users: &[AppUser], omit_null_dn: bool, without_first_name: bool) -> Vec<u8> {
    let mut wire: Vec<WireUser> = users.iter().map(|u| wire_user(u, omit_null_dn)).collect();
    match wire.first_mut() {
        Some(first) if without_first_name => first.user_name = None,
        None if without_first_name => wire.push(WireUser::default()),
        _ => {}
    }
    serde_json::to_vec(&wire).expect("users serialise")
}

fn wire_user(u: &AppUser, omit_null_dn: bool) -> WireUser<'_> {
    let distinguished_name = match (&u.distinguished_name, omit_null_dn) {
        (None, true) => None,
        (dn, _) => Some(dn.as_deref()),
    };
    let (full_name, email_addresses) = (u.full_name.as_str(), u.email_addresses.as_slice());
    let user_name = Some(u.user_name.as_str());
    WireUser {
        user_name,
        distinguished_name,
        full_name,
        email_addresses,
    }
}

/// 200 and the JSON in the wrong shape: an array in an object, an object in an array.
fn reshape(mut reply: Reply) -> Reply {
    reply.body = match reply.body.first() {
        Some(b'[') => [&b"{\"users\":"[..], &reply.body, b"}"].concat(),
        _ => [&b"["[..], &reply.body, b"]"].concat(),
    };
    reply.status = 200;
    reply
}

fn text(status: u16, body: &str) -> Reply {
    let reply = Reply::json_bytes(status, body.as_bytes().to_vec());
    reply.header("content-type", "text/plain; charset=utf-8")
}

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(call: &Call) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = call.header("authorization")?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim());
    let decoded = String::from_utf8(decoded.ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.into(), password.into()))
}

/// The form, when declared one: a client that posts JSON, or forgets the header, sends
/// no command.
fn form(call: &Call) -> HashMap<String, String> {
    let essence = call
        .header("content-type")
        .and_then(|t| t.split(';').next());
    match essence.map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("application/x-www-form-urlencoded") => call.form(),
        _ => HashMap::new(),
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn handle(state: Arc<Mutex<State>>, call: Call) -> Reply {
    let form = form(&call);
    let cmd = form.get("cmd").cloned().unwrap_or_default();
    let (command, fault, latency) = {
        let mut state = lock(&state);
        let command = match (call.method.as_str(), call.path.as_str()) {
            ("POST", "/api") => state.command(&cmd),
            _ => None,
        };
        let basic_user = basic_credentials(&call).map(|(user, _)| user);
        let (cmd, at) = (cmd.clone(), Instant::now());
        state.requests.push(Recorded {
            cmd,
            command,
            basic_user,
            at,
        });
        let fault = http::take_fault(&mut state.faults, &[], command, Command::Any);
        (command, fault, state.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = |fault| answer(&state, &call, &cmd, &form, command, fault);
    match fault {
        Some(Fault::Stall) => {
            http::stall().await;
            answer(None)
        }
        Some(Fault::CutOff) => {
            let mut reply = answer(None);
            reply.cut_off = true;
            reply
        }
        Some(Fault::Status(status)) => {
            let reason = hyper::StatusCode::from_u16(status).ok();
            let reason = reason.and_then(|s| s.canonical_reason()).unwrap_or("Error");
            text(status, &format!("{status} {reason}"))
        }
        Some(Fault::Html) => Reply::html(200, PROXY_PAGE.into()),
        script_fault => answer(script_fault),
    }
}

const PROXY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
    <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n\
    </html>\r\n";

/// What the web server and then the script answer; `fault` is one of the script's own.
fn answer(
    state: &Mutex<State>,
    call: &Call,
    cmd: &str,
    form: &HashMap<String, String>,
    command: Option<Command>,
    fault: Option<Fault>,
) -> Reply {
    if call.path != "/api" {
        return text(404, "404 Not Found");
    }
    if call.method != "POST" {
        return text(405, "405 Method Not Allowed").header("allow", "POST");
    }
    let mut state = lock(state);
    if state.basic.is_some() && basic_credentials(call) != state.basic {
        let challenge = "Basic realm=\"MailStore\"";
        return text(401, "401 Unauthorized").header("www-authenticate", challenge);
    }
    let reply = match command {
        Some(Command::List) => state.list(fault),
        Some(Command::Auth) => state.auth(form, fault),
        Some(Command::Groups) if state.groups.is_some() => state.groups(fault),
        _ => return text(400, &format!("Unknown command '{cmd}'.")),
    };
    match fault {
        Some(Fault::NotJson) => state.json(200, "Error: could not connect to the user database"),
        Some(Fault::WrongShape) => reshape(reply),
        _ => reply,
    }
}

/// HTTPS in front of the plain accept loop, relaying each TLS connection to it: one server
/// behind both, cut-off and stall included.
struct TlsFront {
    port: u16,
    certificate_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    async fn start(plain: std::net::SocketAddr) -> TlsFront {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]);
        let made = made.expect("a self-signed certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        // Ring, named: the fake must not depend on a process-wide default provider.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|c| {
                c.with_no_client_auth()
                    .with_single_cert(vec![made.cert.der().clone()], key)
            });
        let mut config = config.expect("TLS configuration");
        // The plain side speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local address").port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here: no error of the fake's.
                    let (Ok(mut tls), Ok(mut inner)) = (
                        acceptor.accept(stream).await,
                        TcpStream::connect(plain).await,
                    ) else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
                });
            }
        });
        let certificate_pem = made.cert.pem();
        TlsFront {
            port,
            certificate_pem,
            task,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
