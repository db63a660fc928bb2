//! A local fake of Google, in-process on `127.0.0.1:0`: the OAuth 2.0 token endpoint (the
//! JWT-bearer grant of service accounts with domain-wide delegation, and the authorization
//! code grant with PKCE), the OpenID Connect discovery, JWKS and authorize endpoints, and the
//! Admin SDK Directory API's `users`, `groups` and `groups/{key}/members`, with opaque page
//! tokens, `fields` partial responses, Google's error bodies and injectable faults.
//!
//! It follows `PROTOCOLS.md` ("Google Workspace") and the Google documentation it reflects:
//! "Using OAuth 2.0 for Server to Server Applications" (the assertion, its error codes),
//! "OpenID Connect" (discovery, the ID token's claims, `hd`, the code exchange), the Admin SDK
//! Directory API reference (users.list, groups.list, members.list, their parameters and
//! resources), "Partial response" (`fields`) and the Admin SDK's error and usage-limit pages.
//! It checks what Google checks — assertions are verified with the service account's key,
//! delegation and scopes are enforced per client id and per route, the impersonated user
//! must exist and be an administrator, codes are single-use and bound to their redirect URI
//! and PKCE challenge — so a test passes because the client is right, not because the fake
//! is lenient. One server is token URL (`{base}/token`), OIDC issuer and Directory API base.
//!
//! Self-contained (no `crate::`), so a benchmark can include it with
//! `#[path = "../tests/support/google.rs"] mod google_fake;`.
#![allow(dead_code)]

// Explicit paths: the same files must resolve whether this module is `support::google` or a
// benchmark's `#[path]`-included `google_fake`.
#[path = "google/directory.rs"]
mod directory;
#[path = "google/errors.rs"]
mod errors;
#[path = "google/fields.rs"]
mod fields;
// The Entra fake includes these two as well: each fake stays includable on its own.
#[allow(clippy::duplicate_mod)]
#[path = "fake_http.rs"]
mod http;
#[allow(clippy::duplicate_mod)]
#[path = "entra/jose.rs"]
mod jose;
#[path = "google/listings.rs"]
mod listings;
#[path = "google/objects.rs"]
mod objects;
#[path = "google/server.rs"]
mod server;
#[path = "google/sign_in.rs"]
mod sign_in;
#[path = "google/state.rs"]
mod state;
#[path = "google/token.rs"]
mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
pub use sign_in::{GoogleClaims, Tamper};
use state::{AccessToken, Account, AuthCode, OAuthClient, PendingFault, State};

// A benchmark that includes this file may not use them.
#[allow(unused_imports)]
pub use objects::{generated_group_id as group_id, generated_user_id as user_id};

pub const USER_READONLY: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
pub const GROUP_READONLY: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";
pub const MEMBER_READONLY: &str =
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly";
/// What a new service account is delegated: the three read-only scopes Roster asks for.
pub const READONLY_SCOPES: [&str; 3] = [USER_READONLY, GROUP_READONLY, MEMBER_READONLY];

/// A handle on a running fake; clones share it. The server stops with the last handle.
#[derive(Clone)]
pub struct GoogleFake {
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

/// A Workspace user. Property names become the Directory API's camelCase on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectoryUser {
    /// 21 digits (`user_id(i)` makes one).
    pub id: String,
    pub primary_email: String,
    pub given_name: String,
    pub family_name: String,
    pub full_name: String,
    pub suspended: bool,
    pub archived: bool,
    pub aliases: Vec<String>,
    /// e.g. `alice@example.com.test-google-a.com`.
    pub non_editable_aliases: Vec<String>,
    pub is_admin: bool,
    pub org_unit_path: String,
    /// Any other property by its Directory API name (`phones`, `suspensionReason`, …); it
    /// replaces the fake's own value of that name.
    pub extra: Map<String, Value>,
}

impl DirectoryUser {
    /// An active user who is not an administrator, in `/`, named by `full_name`'s first word
    /// and the rest.
    pub fn new(id: &str, primary_email: &str, full_name: &str) -> DirectoryUser {
        let (given, family) = full_name.split_once(' ').unwrap_or((full_name, ""));
        DirectoryUser {
            id: id.into(),
            primary_email: primary_email.into(),
            given_name: given.into(),
            family_name: family.into(),
            full_name: full_name.into(),
            suspended: false,
            archived: false,
            aliases: Vec::new(),
            non_editable_aliases: Vec::new(),
            is_admin: false,
            org_unit_path: "/".into(),
            extra: Map::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// Short and opaque, like `03rdcrjn1abcdef` (`group_id(j)` makes one).
    pub id: String,
    pub email: String,
    pub name: String,
    pub description: String,
    /// Direct members; `includeDerivedMembership` expands nested groups.
    pub members: Vec<GroupMember>,
}

impl DirectoryGroup {
    pub fn new(id: &str, email: &str, name: &str, members: Vec<GroupMember>) -> DirectoryGroup {
        DirectoryGroup {
            id: id.into(),
            email: email.into(),
            name: name.into(),
            description: String::new(),
            members,
        }
    }
}

/// A member of a group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupMember {
    /// A user (by Directory id) in the `MEMBER` role.
    User(String),
    /// A user in the `OWNER` role.
    Owner(String),
    /// A user in the `MANAGER` role.
    Manager(String),
    /// A nested group, by id.
    Group(String),
    /// "All users in the organisation": listed with the customer id and no email.
    Customer,
    /// An address outside the Workspace.
    External(String),
}

/// A service account as the console creates it, with its downloaded key.
#[derive(Clone, Debug)]
pub struct ServiceAccount {
    /// The JSON key file, as Google's console downloads it.
    pub key_json: String,
    pub client_email: String,
    /// 21 digits: what domain-wide delegation is granted to.
    pub client_id: String,
    /// 40 hex digits: the assertion header's `kid`.
    pub private_key_id: String,
}

/// Which requests a fault or a count is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /token`, either grant.
    Token,
    /// `/admin/directory/v1/users` and `/users/{userKey}`.
    Users,
    /// `/admin/directory/v1/groups` and `/groups/{groupKey}`.
    Groups,
    /// `/admin/directory/v1/groups/{groupKey}/members`.
    Members,
    /// Discovery, JWKS and authorize.
    Oidc,
    /// Every request.
    Any,
}

/// A misbehaviour. On the token route error bodies take OAuth's shape
/// (`error`, `error_description`), elsewhere the Directory API's.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 403 (`userRateLimitExceeded`, `quotaExceeded`) or 429 (`rateLimitExceeded`), domain
    /// `usageLimits`, status `PERMISSION_DENIED` / `RESOURCE_EXHAUSTED`.
    RateLimit { status: u16, reason: String },
    Error {
        status: u16,
        reason: String,
        message: String,
    },
    /// Reads the request and never answers.
    Stall,
    /// Status, headers and a `Content-Length` for the whole body, half the body, then the
    /// connection closes.
    CutOff,
    /// 200 `application/json` whose body is an HTML proxy error.
    Garbage,
    /// A real page whose `nextPageToken` the server then refuses with 400 (on the token
    /// route: a 200 answer without `access_token`).
    BadPageToken,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Percent-decoded.
    pub path_and_query: String,
    /// `None` for unknown paths.
    pub route: Option<Route>,
    pub at: Instant,
    pub authorization_present: bool,
}

impl GoogleFake {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> GoogleFake {
        // The first start in a process generates the ID-token key and a first service
        // account key, side by side.
        let signer = tokio::task::spawn_blocking(|| jose::signing_key(0));
        let account = tokio::task::spawn_blocking(|| jose::client_key(0));
        signer.await.expect("generate the signing key");
        account.await.expect("generate a service account key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Google fake");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            base_url: format!("http://127.0.0.1:{port}"),
            state: Mutex::new(State::new()),
        });
        let accept = server::spawn(listener, shared.clone());
        GoogleFake {
            shared,
            _accept: Arc::new(accept),
        }
    }

    /// `http://127.0.0.1:PORT`: the OIDC issuer and the Directory API base.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// `{base}/token`, the audience an assertion must name.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// The ID tokens' `iss` (the base URL).
    pub fn issuer(&self) -> String {
        self.base_url().to_owned()
    }

    /// The Workspace's customer id (`C0…`), which `customer=` may name instead of
    /// `my_customer`.
    pub fn customer_id(&self) -> String {
        self.shared.state().directory.customer_id.clone()
    }

    // ---- service accounts and tokens ----

    /// A new service account with a new key, delegated the three read-only scopes. Again
    /// for the same address: a new key replaces the old, which then fails as a deleted key
    /// does. Blocks while a key is generated (slow the first time an index is used in a
    /// process).
    pub fn new_service_account(&self, client_email: &str) -> ServiceAccount {
        let index = {
            let mut state = self.shared.state();
            state.next_account_key += 1;
            state.next_account_key - 1
        };
        let key = jose::client_key(index);
        let account = token::service_account(client_email, &key);
        let mut state = self.shared.state();
        let scopes = READONLY_SCOPES.iter().map(|s| s.to_string()).collect();
        state.delegation.insert(account.client_id.clone(), scopes);
        state.accounts.retain(|a| a.client_email != client_email);
        state.accounts.push(Account {
            client_email: account.client_email.clone(),
            client_id: account.client_id.clone(),
            private_key_id: account.private_key_id.clone(),
            key,
        });
        account
    }

    /// Sets the scopes domain-wide delegation grants the client id (empty: revoked).
    pub fn set_delegation(&self, client_id: &str, scopes: &[&str]) {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        self.shared
            .state()
            .delegation
            .insert(client_id.into(), scopes);
    }

    /// Registers a web application's OAuth client for sign-in.
    pub fn register_oauth_client(
        &self,
        client_id: &str,
        client_secret: &str,
        redirect_uris: &[&str],
    ) {
        let client = OAuthClient {
            secret: client_secret.into(),
            redirect_uris: redirect_uris.iter().map(|u| u.to_string()).collect(),
        };
        self.shared.state().clients.insert(client_id.into(), client);
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

    /// A new key with a new kid signs from now on; the JWKS publishes it with the previous
    /// one, as Google's does across a rotation. Returns its kid.
    pub async fn rotate_signing_key(&self) -> String {
        let index = {
            let mut state = self.shared.state();
            state.next_key += 1;
            state.next_key - 1
        };
        let key = tokio::task::spawn_blocking(move || jose::signing_key(index))
            .await
            .expect("generate a signing key");
        let mut state = self.shared.state();
        let previous = state.signer;
        state.signer = index;
        state.published = vec![index, previous];
        key.hex_fingerprint()
    }

    /// The kid of the key that signs ID tokens now.
    pub fn signing_kid(&self) -> String {
        let index = self.shared.state().signer;
        jose::signing_key(index).hex_fingerprint()
    }

    pub fn jwks_requests(&self) -> usize {
        self.shared.state().jwks_requests
    }

    /// The identity every following authorize request signs in.
    pub fn sign_in_as(&self, claims: GoogleClaims) {
        self.shared.state().signed_in = Some(claims);
    }

    /// The next authorize request redirects back with this `error` (and
    /// `error_description`, when not empty).
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

    // ---- the directory ----

    /// The primary domain (default `example.com`): what `domain=` must name and where
    /// `generate` puts its users.
    pub fn set_domain(&self, domain: &str) {
        self.shared.state().directory.domain = domain.to_lowercase();
    }

    pub fn set_users(&self, users: Vec<DirectoryUser>) {
        self.shared.state().directory.set_users(users);
    }

    /// Adds the user, or replaces the one with the same id in place.
    pub fn upsert_user(&self, user: DirectoryUser) {
        self.shared.state().directory.upsert_user(user);
    }

    /// Deletes the user: they leave every group and are listed by `showDeleted=true`.
    pub fn remove_user(&self, id: &str) -> bool {
        self.shared.state().directory.remove_user(id)
    }

    pub fn set_groups(&self, groups: Vec<DirectoryGroup>) {
        self.shared.state().directory.set_groups(groups);
    }

    /// Adds the group, or replaces the one with the same id in place.
    pub fn upsert_group(&self, group: DirectoryGroup) {
        self.shared.state().directory.upsert_group(group);
    }

    pub fn remove_group(&self, id: &str) -> bool {
        self.shared.state().directory.remove_group(id)
    }

    /// Replaces the directory with `users` users (`user{i}@{domain}`, the first an admin) and
    /// `groups` groups (`group{j}@{domain}`) of `members_per_group` users each, round-robin.
    pub fn generate(&self, users: usize, groups: usize, members_per_group: usize) {
        let mut state = self.shared.state();
        let domain = state.directory.domain.clone();
        let (users, groups) = objects::generate(&domain, users, groups, members_per_group);
        state.directory.set_users(users);
        state.directory.set_groups(groups);
    }

    /// The id `generate` gives the i-th user (the same as `user_id(i)`).
    pub fn generated_user_id(i: usize) -> String {
        objects::generated_user_id(i)
    }

    /// The id `generate` gives the j-th group (the same as `group_id(j)`).
    pub fn generated_group_id(j: usize) -> String {
        objects::generated_group_id(j)
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

    /// Every request on `route` is rate-limited until `clear_faults`: 403
    /// `userRateLimitExceeded`, or 429 `rateLimitExceeded`.
    pub fn throttle_always(&self, route: Route, status: u16) {
        let reason = if status == 429 {
            "rateLimitExceeded"
        } else {
            "userRateLimitExceeded"
        };
        let fault = Fault::RateLimit {
            status,
            reason: reason.into(),
        };
        self.shared.state().always.push((route, fault));
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
