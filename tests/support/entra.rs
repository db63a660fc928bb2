//! A local fake of Microsoft Entra ID, in-process on `127.0.0.1:0`: the v2.0 token
//! endpoint (client credentials with certificate assertions, authorization code with PKCE),
//! the OpenID Connect discovery, JWKS and authorize endpoints, and Microsoft Graph v1.0
//! `users`, `groups` and `groups/{id}/transitiveMembers`, with opaque paging, `$select`,
//! `$search` + `ConsistencyLevel`, Graph's and Entra's error bodies, and injectable faults.
//!
//! It follows `PROTOCOLS.md` ("Microsoft Entra ID") and Microsoft's documentation it cites
//! (the AADSTS error reference, Graph's query-parameter, paging and throttling pages, the
//! v2.0 ID token and certificate-credential pages). It checks what the real service checks —
//! assertions are verified with the registered certificate's key, codes are single-use and
//! bound to their PKCE challenge — so a test passes because the client is right, not
//! because the fake is lenient. The same server answers as authority and as Graph URL.
//!
//! Self-contained (no `crate::`), so benchmarks can include it with
//! `#[path = "../tests/support/entra.rs"] mod entra_fake;`.
#![allow(dead_code)]

// Explicit paths: the same files must resolve whether this module is `support::entra` or a
// benchmark's `#[path]`-included `entra_fake`.
#[path = "entra/delta.rs"]
mod delta;
#[path = "entra/graph.rs"]
mod graph;
#[path = "fake_http.rs"]
mod http;
#[path = "entra/jose.rs"]
mod jose;
#[path = "entra/objects.rs"]
mod objects;
#[path = "entra/server.rs"]
mod server;
#[path = "entra/sign_in.rs"]
mod sign_in;
#[path = "entra/token.rs"]
mod token;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rsa::RsaPublicKey;
use serde_json::{Map, Value};

/// A handle on a running fake; clones share it. The server stops with the last handle.
#[derive(Clone)]
pub struct EntraFake {
    shared: Arc<Shared>,
    _accept: Arc<http::AcceptLoop>,
}

/// What the connection tasks share with the handle.
struct Shared {
    base_url: String,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The identity the fake signs in at the authorize endpoint (it has no login page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdClaims {
    /// The user's object id, which is also their Graph `id`.
    pub oid: String,
    /// The user's home tenant; `None` means the tenant of the request (or the app's own
    /// tenant when the request names `common` or `organizations`).
    pub tid: Option<String>,
    pub preferred_username: String,
    pub name: String,
    pub email: Option<String>,
}

impl IdClaims {
    pub fn new(oid: &str, preferred_username: &str, name: &str) -> IdClaims {
        IdClaims {
            oid: oid.into(),
            tid: None,
            preferred_username: preferred_username.into(),
            name: name.into(),
            email: None,
        }
    }
}

/// A change to the next ID token only, for tests of what a relying party must refuse.
/// Several calls before one sign-in all apply to that token.
#[derive(Clone, Debug)]
pub enum Tamper {
    Issuer(String),
    /// `aud` becomes `[client_id, extra]`.
    ExtraAudience(String),
    Audience(String),
    Azp(String),
    /// The header names a kid the JWKS does not publish (still signed by the real key).
    UnknownKid,
    /// Header `alg: none` and an empty signature.
    AlgNone,
    /// HS256 keyed with the signing key's public PEM (SPKI): the key-confusion attack.
    HmacWithPublicKey,
    /// HS256 keyed with the modulus bytes of the published JWK.
    HmacWithJwksModulus,
    /// Signed by the real key, then one signature byte flipped.
    BadSignature,
    /// `iat`, `nbf` two hours and `exp` one hour in the past.
    Expired,
    /// `nbf` an hour ahead.
    NotYetValid,
    /// `tid` of another tenant, `iss` unchanged.
    Tenant(String),
    Nonce(String),
    /// Sets any claim; `Value::Null` removes it.
    Claim(String, Value),
}

/// A Graph user. Property names become Graph's camelCase on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphUser {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub mail: Option<String>,
    /// e.g. `SMTP:Alice@x.com` (primary), `smtp:alias@x.com`, `SIP:alice@x.com`.
    pub proxy_addresses: Vec<String>,
    pub account_enabled: bool,
    /// `Member` or `Guest`.
    pub user_type: String,
    pub assigned_plans: Vec<AssignedPlan>,
    /// Any other property, by its Graph name (`givenName`, `jobTitle`, …).
    pub extra: Map<String, Value>,
}

impl GraphUser {
    /// An enabled member with the UPN as mail and primary SMTP address and an enabled
    /// Exchange Online plan.
    pub fn member(id: &str, user_principal_name: &str, display_name: &str) -> GraphUser {
        GraphUser {
            id: id.into(),
            user_principal_name: user_principal_name.into(),
            display_name: display_name.into(),
            mail: Some(user_principal_name.into()),
            proxy_addresses: vec![format!("SMTP:{user_principal_name}")],
            account_enabled: true,
            user_type: "Member".into(),
            assigned_plans: vec![AssignedPlan::exchange("Enabled")],
            extra: Map::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignedPlan {
    pub service: String,
    /// `Enabled`, `Warning`, `Suspended`, `Deleted`, `LockedOut`.
    pub capability_status: String,
    pub service_plan_id: String,
    pub assigned_date_time: String,
}

impl AssignedPlan {
    /// Exchange Online (Plan 2), `EXCHANGE_S_ENTERPRISE`.
    pub fn exchange(capability_status: &str) -> AssignedPlan {
        AssignedPlan {
            service: "exchange".into(),
            capability_status: capability_status.into(),
            service_plan_id: "efb87545-963c-4e0d-99df-69c6916d9eb0".into(),
            assigned_date_time: "2024-01-15T09:30:00Z".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GraphGroup {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    /// Direct members; nested groups are expanded by `transitiveMembers`.
    pub members: Vec<Member>,
    pub extra: Map<String, Value>,
}

impl GraphGroup {
    pub fn new(id: &str, display_name: &str, members: Vec<Member>) -> GraphGroup {
        GraphGroup {
            id: id.into(),
            display_name: display_name.into(),
            description: None,
            members,
            extra: Map::new(),
        }
    }
}

/// A directory object inside a group, by id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Member {
    User(String),
    Group(String),
    Device(String),
    Contact(String),
    ServicePrincipal(String),
}

/// Which requests a fault or a count is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /{tenant}/oauth2/v2.0/token`, either grant.
    Token,
    /// `/v1.0/users…`
    Users,
    /// `/v1.0/groups` and `/v1.0/groups/{id}`.
    Groups,
    /// `/v1.0/groups/{id}/transitiveMembers` (and `/members`).
    Members,
    /// Every request, including discovery, JWKS and authorize.
    Any,
}

/// A misbehaviour. On the token route the error bodies take Entra's OAuth shape, elsewhere
/// Graph's.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 429 Too Many Requests, with `Retry-After` when `Some`.
    Throttle { retry_after: Option<u64> },
    /// 503 Service Unavailable, with `Retry-After` when `Some`.
    Unavailable { retry_after: Option<u64> },
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Reads the request and never answers.
    Stall,
    /// Status, headers and a `Content-Length` for the whole body, half the body, then the
    /// connection closes.
    CutOff,
    /// 200 `application/json` whose body is an HTML proxy error.
    Garbage,
    /// 200 with a real page whose `@odata.nextLink` carries a skiptoken the server then
    /// refuses (on the token route: a token answer without `access_token`).
    Truncated,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Percent-decoded.
    pub path_and_query: String,
    pub consistency_level: Option<String>,
    pub at: Instant,
    /// The route it counted under (`None` for discovery, JWKS, authorize and unknown paths).
    pub route: Option<Route>,
}

struct App {
    tenant: String,
    client_id: String,
    certificates: Vec<Certificate>,
    /// Empty: any redirect URI is accepted (the fake's default).
    redirect_uris: Vec<String>,
}

struct Certificate {
    key: RsaPublicKey,
    sha1: Vec<u8>,
    sha256: Vec<u8>,
}

struct AccessToken {
    tenant: String,
    client_id: String,
    expires_at: u64,
}

struct AuthCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: String,
    identity: IdClaims,
    issued_at: u64,
    redeemed: bool,
}

type PendingFault = http::PendingFault<Route, Fault>;

/// Everything the fake knows, behind one lock that no task holds across an await.
#[derive(Clone)]
struct LoginPage {
    login: String,
    password: String,
    claims: IdClaims,
}

struct State {
    /// Keyed by `(lower-case tenant, client id)`.
    apps: HashMap<(String, String), App>,
    used_jtis: HashSet<String>,
    access_tokens: HashMap<String, AccessToken>,
    codes: HashMap<String, AuthCode>,
    signed_in: Option<IdClaims>,
    /// Set: authorize shows a login page and signs in whoever types these.
    login_page: Option<LoginPage>,
    deny_next_login: Option<(String, String)>,
    last_authorize: Option<HashMap<String, String>>,
    tampers: Vec<Tamper>,
    multi_tenant_discovery: bool,
    /// Indexes into the process-wide key pool (`jose::signing_key`).
    signer: usize,
    published: Vec<usize>,
    next_key: usize,
    users: Vec<GraphUser>,
    user_index: HashMap<String, usize>,
    groups: Vec<GraphGroup>,
    group_index: HashMap<String, usize>,
    cursors: HashMap<String, graph::Cursor>,
    faults: Vec<PendingFault>,
    always: Vec<(Route, Fault)>,
    latency: Duration,
    requests: Vec<Recorded>,
    token_requests: usize,
    jwks_requests: usize,
    delta: delta::DeltaState,
}

impl State {
    fn new() -> State {
        State {
            apps: HashMap::new(),
            used_jtis: HashSet::new(),
            access_tokens: HashMap::new(),
            codes: HashMap::new(),
            signed_in: None,
            login_page: None,
            deny_next_login: None,
            last_authorize: None,
            tampers: Vec::new(),
            multi_tenant_discovery: false,
            signer: 0,
            published: vec![0],
            next_key: 1,
            users: Vec::new(),
            user_index: HashMap::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            cursors: HashMap::new(),
            faults: Vec::new(),
            always: Vec::new(),
            latency: Duration::ZERO,
            requests: Vec::new(),
            token_requests: 0,
            jwks_requests: 0,
            delta: delta::DeltaState::default(),
        }
    }

    /// The whole user list replaced: every user changed, the ones gone removed.
    fn replace_users(&mut self, users: Vec<GraphUser>) {
        let kept: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
        let gone: Vec<String> = self
            .users
            .iter()
            .filter(|u| !kept.contains(u.id.as_str()))
            .map(|u| u.id.clone())
            .collect();
        for id in gone {
            self.delta.user_removed(&id);
        }
        let v = self.delta.bump();
        self.delta.user_versions = users.iter().map(|u| (u.id.clone(), v)).collect();
        self.users = users;
        self.reindex_users();
    }

    fn replace_groups(&mut self, groups: Vec<GraphGroup>) {
        let kept: HashSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        let gone: Vec<String> = self
            .groups
            .iter()
            .filter(|g| !kept.contains(g.id.as_str()))
            .map(|g| g.id.clone())
            .collect();
        for id in gone {
            self.delta.group_removed(&id);
        }
        let v = self.delta.bump();
        self.delta.group_versions = groups.iter().map(|g| (g.id.clone(), v)).collect();
        self.groups = groups;
        self.reindex_groups();
    }

    fn reindex_users(&mut self) {
        self.user_index = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id.clone(), i))
            .collect();
    }

    fn reindex_groups(&mut self) {
        self.group_index = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.clone(), i))
            .collect();
    }
}

impl EntraFake {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> EntraFake {
        // The first start in a process generates the shared signing key.
        tokio::task::spawn_blocking(|| jose::signing_key(0))
            .await
            .expect("generate the signing key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Entra fake");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            base_url: format!("http://127.0.0.1:{port}"),
            state: Mutex::new(State::new()),
        });
        let accept = server::spawn(listener, shared.clone());
        EntraFake {
            shared,
            _accept: Arc::new(accept),
        }
    }

    /// `http://127.0.0.1:PORT`: both the authority and the Graph URL.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// `{base}/{tenant}/oauth2/v2.0/token`, the audience a client assertion must name.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url())
    }

    /// `{base}/{tenant}/v2.0`, the issuer of the tenant's ID tokens.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base_url())
    }

    // ---- applications and tokens ----

    /// Registers an application in a tenant (creating the tenant) with a certificate
    /// credential; calling it again for the same app adds another certificate.
    pub fn register_app(&self, tenant: &str, client_id: &str, certificate_pem: &str) {
        let certificate = token::read_certificate(certificate_pem);
        let mut state = self.shared.state();
        state
            .apps
            .entry((tenant.to_lowercase(), client_id.to_owned()))
            .or_insert_with(|| App {
                tenant: tenant.into(),
                client_id: client_id.into(),
                certificates: Vec::new(),
                redirect_uris: Vec::new(),
            })
            .certificates
            .push(certificate);
    }

    /// Restricts the app's redirect URIs (by default any is accepted); call once per URI.
    pub fn register_redirect_uri(&self, tenant: &str, client_id: &str, uri: &str) {
        let mut state = self.shared.state();
        let app = state
            .apps
            .get_mut(&(tenant.to_lowercase(), client_id.to_owned()))
            .expect("register the app before its redirect URIs");
        app.redirect_uris.push(uri.into());
    }

    /// Requests to the token endpoint, answered or not.
    pub fn token_requests(&self) -> usize {
        self.shared.state().token_requests
    }

    /// Makes every access token issued so far expired, as if an hour had passed.
    pub fn expire_access_tokens(&self) {
        for token in self.shared.state().access_tokens.values_mut() {
            token.expires_at = 0;
        }
    }

    // ---- OpenID Connect ----

    /// Makes every tenant's discovery document name the issuer `{base}/{tenantid}/v2.0`
    /// literally, as Entra's `common` document does.
    pub fn set_multi_tenant_discovery(&self, on: bool) {
        self.shared.state().multi_tenant_discovery = on;
    }

    /// A new key with a new kid becomes the signer and the only key published (a key
    /// announced by `publish_next_signing_key` is promoted first). Returns its kid.
    pub async fn rotate_signing_key(&self) -> String {
        let index = {
            let mut state = self.shared.state();
            let announced = state.published.iter().copied().find(|&k| k != state.signer);
            announced.unwrap_or_else(|| {
                state.next_key += 1;
                state.next_key - 1
            })
        };
        let key = tokio::task::spawn_blocking(move || jose::signing_key(index))
            .await
            .expect("generate a signing key");
        let mut state = self.shared.state();
        state.signer = index;
        state.published = vec![index];
        key.kid.clone()
    }

    /// Publishes an additional key in the JWKS that does not sign yet, as Entra announces
    /// its next key ahead of a rollover. Returns its kid.
    pub async fn publish_next_signing_key(&self) -> String {
        let index = {
            let mut state = self.shared.state();
            state.next_key += 1;
            state.next_key - 1
        };
        let key = tokio::task::spawn_blocking(move || jose::signing_key(index))
            .await
            .expect("generate a signing key");
        self.shared.state().published.push(index);
        key.kid.clone()
    }

    /// The kid of the key that signs ID tokens now.
    pub fn signing_kid(&self) -> String {
        let index = self.shared.state().signer;
        jose::signing_key(index).kid.clone()
    }

    pub fn jwks_requests(&self) -> usize {
        self.shared.state().jwks_requests
    }

    /// The identity every following authorize request signs in.
    pub fn sign_in_as(&self, claims: IdClaims) {
        self.shared.state().signed_in = Some(claims);
    }

    /// From now on authorize shows a login page (`#login`, `#password`) and signs in
    /// `claims` when these credentials are typed, like Microsoft's sign-in page.
    pub fn require_login(&self, login: &str, password: &str, claims: IdClaims) {
        self.shared.state().login_page = Some(LoginPage {
            login: login.into(),
            password: password.into(),
            claims,
        });
    }

    /// The next authorize request redirects back with this `error` and `error_description`.
    pub fn deny_next_login(&self, error: &str, description: &str) {
        self.shared.state().deny_next_login = Some((error.into(), description.into()));
    }

    /// The query of the last authorize request, decoded.
    pub fn last_authorize(&self) -> Option<HashMap<String, String>> {
        self.shared.state().last_authorize.clone()
    }

    pub fn tamper_next_id_token(&self, tamper: Tamper) {
        self.shared.state().tampers.push(tamper);
    }

    // ---- Graph directory ----

    pub fn set_users(&self, users: Vec<GraphUser>) {
        self.shared.state().replace_users(users);
    }

    /// Adds the user, or replaces the one with the same id in place.
    pub fn upsert_user(&self, user: GraphUser) {
        let mut state = self.shared.state();
        state.delta.user_changed(&user.id);
        match state.user_index.get(&user.id) {
            Some(&i) => state.users[i] = user,
            None => {
                let i = state.users.len();
                state.user_index.insert(user.id.clone(), i);
                state.users.push(user);
            }
        }
    }

    /// Removes the user. Groups that still list them answer without them, as Graph drops
    /// a deleted object from every membership.
    pub fn remove_user(&self, id: &str) -> bool {
        let mut state = self.shared.state();
        let Some(i) = state.user_index.get(id).copied() else {
            return false;
        };
        state.users.remove(i);
        state.reindex_users();
        state.delta.user_removed(id);
        // Graph reports the membership change on each group that listed the user.
        let listing: Vec<String> = state
            .groups
            .iter()
            .filter(|g| g.members.contains(&Member::User(id.to_owned())))
            .map(|g| g.id.clone())
            .collect();
        for group in listing {
            state.delta.group_changed(&group);
        }
        true
    }

    pub fn set_groups(&self, groups: Vec<GraphGroup>) {
        self.shared.state().replace_groups(groups);
    }

    /// Adds the group, or replaces the one with the same id in place.
    pub fn upsert_group(&self, group: GraphGroup) {
        let mut state = self.shared.state();
        state.delta.group_changed(&group.id);
        match state.group_index.get(&group.id) {
            Some(&i) => state.groups[i] = group,
            None => {
                let i = state.groups.len();
                state.group_index.insert(group.id.clone(), i);
                state.groups.push(group);
            }
        }
    }

    /// Replaces the directory with `users` members (`user{i}@example.test`) and `groups`
    /// groups (`Group {j}`) of `members_per_group` users each, taken round-robin.
    pub fn generate(&self, users: usize, groups: usize, members_per_group: usize) {
        let generated_users: Vec<GraphUser> = (0..users)
            .map(|i| {
                let upn = format!("user{i}@example.test");
                GraphUser::member(&generated_id(0x1, i), &upn, &format!("User {i}"))
            })
            .collect();
        let generated_groups: Vec<GraphGroup> = (0..groups)
            .map(|j| {
                let members = (0..members_per_group.min(users))
                    .map(|k| Member::User(generated_id(0x1, (j * members_per_group + k) % users)))
                    .collect();
                GraphGroup::new(&generated_id(0x2, j), &format!("Group {j}"), members)
            })
            .collect();
        let mut state = self.shared.state();
        state.replace_users(generated_users);
        state.replace_groups(generated_groups);
    }

    /// Removes the group (Graph's delta lists it as `@removed`).
    pub fn remove_group(&self, id: &str) -> bool {
        let mut state = self.shared.state();
        let Some(i) = state.group_index.get(id).copied() else {
            return false;
        };
        state.groups.remove(i);
        state.reindex_groups();
        state.delta.group_removed(id);
        // Graph reports the membership change on each group it was nested in.
        let parents: Vec<String> = state
            .groups
            .iter()
            .filter(|g| g.members.contains(&Member::Group(id.to_owned())))
            .map(|g| g.id.clone())
            .collect();
        for parent in parents {
            state.delta.group_changed(&parent);
        }
        true
    }

    /// Every delta link handed out so far answers 410 `resyncRequired` from now on.
    pub fn expire_delta_links(&self) {
        self.shared.state().delta.expire();
    }

    /// Changed users come in delta rounds as `id` and `displayName` only, as Graph may
    /// send just what changed.
    pub fn set_partial_delta(&self, partial: bool) {
        self.shared.state().delta.partial = partial;
    }

    /// The id `generate` gives the i-th user, so a benchmark can name one.
    pub fn generated_user_id(i: usize) -> String {
        generated_id(0x1, i)
    }

    /// The id `generate` gives the j-th group.
    pub fn generated_group_id(j: usize) -> String {
        generated_id(0x2, j)
    }

    // ---- faults and measurement ----

    /// The (`after`+1)-th request on `route` from now gets `fault`, once. Faults queue.
    pub fn fault(&self, route: Route, after: usize, fault: Fault) {
        self.shared.state().faults.push(PendingFault {
            route,
            skip: after,
            fault,
        });
    }

    /// Every request on `route` is throttled until `clear_faults`.
    pub fn throttle_always(&self, route: Route, retry_after: Option<u64>) {
        self.shared
            .state()
            .always
            .push((route, Fault::Throttle { retry_after }));
    }

    pub fn clear_faults(&self) {
        let mut state = self.shared.state();
        state.faults.clear();
        state.always.clear();
    }

    /// Every request waits this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.state().latency = latency;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.state().requests.clone()
    }

    pub fn request_count(&self, route: Route) -> usize {
        let state = self.shared.state();
        match route {
            Route::Any => state.requests.len(),
            _ => state
                .requests
                .iter()
                .filter(|r| r.route == Some(route))
                .count(),
        }
    }
}

/// A GUID-shaped id numbered by kind and index, cheap to compute for 100,000 users.
fn generated_id(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}
