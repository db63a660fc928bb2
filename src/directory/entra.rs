//! Microsoft Entra ID through Microsoft Graph (PROTOCOLS.md, "Microsoft Entra ID"): an
//! app-only token from a client assertion signed with the profile's certificate key, users
//! and groups read page by page following `@odata.nextLink` to the end, members through
//! `transitiveMembers`. Throttling (429, 503) is retried within a budget per run; anything
//! else that goes wrong — an error, a page that does not parse, a cut-off answer, a stall
//! past the timeout — fails the whole read, so a run never applies half a directory.
//!
//! Entra's users sign in with Microsoft (`auth::oidc`), so `authenticate` refuses.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    ConnectionReport, Directory, DirectoryError, DirectoryGroup, PasswordCheck, Progress, Snapshot,
    SourceGroup, SourceUser,
};

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";

/// What Roster needs of a user; without `$select` Graph leaves most of it out.
const USER_FIELDS: &str =
    "id,accountEnabled,mail,userPrincipalName,proxyAddresses,displayName,assignedPlans,userType";
/// Graph's largest page.
const PAGE: usize = 999;
/// Member lists of this many groups are read at once: enough to hide the round trips,
/// few enough not to be throttled for it.
pub const MEMBER_CONCURRENCY: usize = 8;
/// Client assertions live this long (Entra accepts 5–10 minutes).
const ASSERTION_SECONDS: i64 = 480;
/// A token is renewed this long before Entra says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct EntraSettings {
    pub tenant_id: String,
    pub client_id: String,
    /// `https://login.microsoftonline.com`, or a local server in tests.
    pub authority: String,
    /// `https://graph.microsoft.com`, or a local server in tests.
    pub graph_url: String,
    /// The certificate registered with the app (PEM) and its private key (PKCS#8 PEM).
    pub certificate_pem: String,
    pub private_key_pem: SecretString,
    pub enabled_users_only: bool,
    pub mailbox_users_only: bool,
    pub include_guests: bool,
    /// Group names to synchronise (case-insensitive); empty = all groups.
    pub groups_to_sync: Vec<String>,
    /// Each request (connect, answer, whole body) must finish within this.
    pub timeout: Duration,
    pub retry: RetryBudget,
}

/// How much throttling one run (or one dialog) puts up with.
#[derive(Clone, Copy, Debug)]
pub struct RetryBudget {
    pub retries: u32,
    pub total_wait: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            retries: 5,
            total_wait: Duration::from_secs(120),
        }
    }
}

pub struct EntraDirectory {
    settings: EntraSettings,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    spent: Mutex<(u32, Duration)>,
}

/// What went wrong with one request: Graph's 404 is told apart, because a group deleted
/// between listing it and reading its members is not a failed read.
enum Failure {
    NotFound(String),
    Other(DirectoryError),
}

impl From<DirectoryError> for Failure {
    fn from(e: DirectoryError) -> Failure {
        Failure::Other(e)
    }
}

fn failed(f: Failure) -> DirectoryError {
    match f {
        Failure::NotFound(detail) => DirectoryError::Protocol { detail },
        Failure::Other(e) => e,
    }
}

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphUser {
    id: String,
    user_principal_name: Option<String>,
    display_name: Option<String>,
    mail: Option<String>,
    // Graph sends `null` as well as `[]` for none.
    proxy_addresses: Option<Vec<String>>,
    account_enabled: Option<bool>,
    user_type: Option<String>,
    assigned_plans: Option<Vec<AssignedPlan>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedPlan {
    #[serde(default)]
    service: String,
    #[serde(default)]
    capability_status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphGroup {
    id: String,
    display_name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct DirectoryObject {
    #[serde(rename = "@odata.type", default)]
    kind: String,
    id: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorDetail,
}

#[derive(Deserialize)]
struct GraphErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl EntraDirectory {
    pub fn new(settings: EntraSettings, tls: Arc<ClientConfig>) -> Result<Self, DirectoryError> {
        let http = http_client(tls, settings.timeout)?;
        Ok(EntraDirectory {
            settings,
            http,
            token: tokio::sync::Mutex::new(None),
            spent: Mutex::new((0, Duration::ZERO)),
        })
    }

    fn token_url(&self) -> String {
        token_url(&self.settings.authority, &self.settings.tenant_id)
    }

    fn graph(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.settings.graph_url.trim_end_matches('/')
        )
    }

    /// An app-only Graph token, reused until shortly before it expires.
    async fn access_token(&self) -> Result<String, DirectoryError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let url = self.token_url();
        let assertion = client_assertion(
            &self.settings.private_key_pem,
            &self.settings.certificate_pem,
            &self.settings.client_id,
            &url,
        )?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.settings.client_id.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        let answer = self.retrying(|| self.http.post(&url).form(&form)).await;
        let (status, body) = answer.map_err(failed)?;
        if !status.is_success() {
            return Err(token_error(status, &body));
        }
        let token: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| DirectoryError::Protocol {
                detail: format!("the token endpoint's answer does not parse: {e}"),
            })?;
        let lifetime = Duration::from_secs(token.expires_in.max(60));
        let until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN).max(lifetime / 2);
        *cached = Some((token.access_token.clone(), until));
        Ok(token.access_token)
    }

    /// One Graph GET, throttling retried; the body as JSON of type `T`.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        eventual: bool,
    ) -> Result<T, Failure> {
        // The bearer token only ever goes to the Graph URL of the profile, whatever a
        // `nextLink` says.
        let base = self.settings.graph_url.trim_end_matches('/');
        if !url.starts_with(&format!("{base}/")) {
            return Err(Failure::Other(DirectoryError::Protocol {
                detail: format!("Graph sent a link outside {base}: {url}"),
            }));
        }
        let token = self.access_token().await?;
        let (status, body) = self
            .retrying(|| {
                let request = self.http.get(url).bearer_auth(&token);
                if eventual {
                    request.header("ConsistencyLevel", "eventual")
                } else {
                    request
                }
            })
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Failure::NotFound(graph_error(status, &body)));
        }
        if !status.is_success() {
            return Err(Failure::Other(DirectoryError::Protocol {
                detail: graph_error(status, &body),
            }));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Failure::Other(DirectoryError::Incomplete {
                detail: format!("a page from Graph does not parse ({e}): {}", excerpt(&body)),
            })
        })
    }

    /// Every page of a collection, from `first` until there is no `nextLink`.
    async fn all<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
        eventual: bool,
        mut each: impl FnMut(T),
    ) -> Result<(), Failure> {
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let page: Page<T> = self.get(&url, eventual).await?;
            page.value.into_iter().for_each(&mut each);
            next = page.next_link;
        }
        Ok(())
    }

    /// Sends a request, waiting out 429 and 503 answers (`Retry-After`, else exponential
    /// backoff) while the run's budget lasts. Returns the status and the whole body.
    async fn retrying(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), Failure> {
        let mut attempt = 0u32;
        loop {
            let response = request().send().await.map_err(|e| self.transport(&e))?;
            let status = response.status();
            let throttled = status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::SERVICE_UNAVAILABLE;
            if !throttled {
                let body = response.bytes().await.map_err(|e| self.cut_off(&e))?;
                return Ok((status, body.to_vec()));
            }
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or_else(|| Duration::from_secs(1 << attempt.min(6)));
            let body = response.bytes().await.unwrap_or_default();
            self.spend(wait).map_err(|why| {
                Failure::Other(DirectoryError::Protocol {
                    detail: format!("{why}; Graph's last answer: {}", graph_error(status, &body)),
                })
            })?;
            tracing::info!(%status, wait_seconds = wait.as_secs(), "Graph throttled a request; waiting");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Takes one retry and its wait from the budget, or says why not.
    fn spend(&self, wait: Duration) -> Result<(), String> {
        let budget = self.settings.retry;
        let mut spent = self
            .spent
            .lock()
            .map_err(|_| "the retry budget is unreadable".to_owned())?;
        if spent.0 >= budget.retries || spent.1 + wait > budget.total_wait {
            return Err(format!(
                "throttled past the retry budget ({} retries, {} s of waiting)",
                budget.retries,
                budget.total_wait.as_secs()
            ));
        }
        spent.0 += 1;
        spent.1 += wait;
        Ok(())
    }

    fn server(&self) -> String {
        url::Url::parse(&self.settings.graph_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| self.settings.graph_url.clone())
    }

    fn transport(&self, e: &reqwest::Error) -> Failure {
        let server = e
            .url()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| self.server());
        Failure::Other(if e.is_timeout() {
            DirectoryError::Timeout {
                server,
                timeout: self.settings.timeout,
                hint: "",
            }
        } else if e.is_connect() {
            DirectoryError::Unreachable {
                server,
                detail: error_chain(e),
            }
        } else {
            DirectoryError::ConnectionLost { server }
        })
    }

    fn cut_off(&self, e: &reqwest::Error) -> Failure {
        if e.is_timeout() {
            return self.transport(e);
        }
        Failure::Other(DirectoryError::Incomplete {
            detail: format!("the answer was cut off: {}", error_chain(e)),
        })
    }

    async fn read_users(
        &self,
        warnings: &mut Vec<String>,
        progress: &Progress,
    ) -> Result<Vec<SourceUser>, DirectoryError> {
        let s = &self.settings;
        let mut users = Vec::new();
        let mut missing_status = 0usize;
        let first = self.graph(&format!("/v1.0/users?$select={USER_FIELDS}&$top={PAGE}"));
        self.all(first, false, |u: GraphUser| {
            progress.user_read();
            let Some(upn) = u.user_principal_name.filter(|n| !n.trim().is_empty()) else {
                warnings.push(format!("user {}: no userPrincipalName; left out", u.id));
                return;
            };
            let guest = u.user_type.as_deref() == Some("Guest") || upn.contains("#EXT#");
            if guest && !s.include_guests {
                return;
            }
            let Some(enabled) = u.account_enabled else {
                missing_status += 1;
                return;
            };
            if s.enabled_users_only && !enabled {
                return;
            }
            let mailbox = u.assigned_plans.iter().flatten().any(|p| {
                p.service.eq_ignore_ascii_case("exchange") && p.capability_status == "Enabled"
            });
            if s.mailbox_users_only && !mailbox {
                return;
            }
            users.push(SourceUser {
                external_id: u.id,
                emails: emails(u.mail.as_deref(), u.proxy_addresses.as_deref().unwrap_or_default()),
                full_name: u.display_name.unwrap_or_default(),
                username: upn,
                disabled: !enabled,
                sign_in_name: String::new(),
            });
        })
        .await
        .map_err(failed)?;
        // Graph leaves out what was not selected: no status is a wrong answer, and
        // guessing "enabled" could let a disabled account in.
        if missing_status > 0 {
            return Err(DirectoryError::Incomplete {
                detail: format!("Graph sent {missing_status} user(s) without accountEnabled"),
            });
        }
        Ok(users)
    }

    async fn read_groups(
        &self,
        eventual_search: Option<&str>,
    ) -> Result<Vec<GraphGroup>, DirectoryError> {
        let mut query = format!("/v1.0/groups?$select=id,displayName,description&$top={PAGE}");
        if let Some(term) = eventual_search {
            let term: String = term.chars().filter(|c| !matches!(c, '"' | '\\')).collect();
            let search = format!("\"displayName:{term}\"");
            query.push_str("&$search=");
            query.extend(url::form_urlencoded::byte_serialize(search.as_bytes()));
        }
        let mut groups = Vec::new();
        self.all(
            self.graph(&query),
            eventual_search.is_some(),
            |g: GraphGroup| groups.push(g),
        )
        .await
        .map_err(failed)?;
        Ok(groups)
    }

    /// A group's member users (nested groups' users included), or `None` when Graph says
    /// the group no longer exists.
    async fn members(&self, group_id: &str) -> Result<Option<Vec<String>>, DirectoryError> {
        let id: String = url::form_urlencoded::byte_serialize(group_id.as_bytes()).collect();
        let first = self.graph(&format!(
            "/v1.0/groups/{id}/transitiveMembers?$select=id&$top={PAGE}"
        ));
        let mut members = Vec::new();
        match self
            .all(first, false, |o: DirectoryObject| {
                // Devices, contacts and service principals are members too; groups inside
                // are how nesting shows, their users are listed themselves.
                if o.kind == "#microsoft.graph.user" {
                    members.push(o.id);
                }
            })
            .await
        {
            Ok(()) => Ok(Some(members)),
            Err(Failure::NotFound(_)) => Ok(None),
            Err(Failure::Other(e)) => Err(e),
        }
    }
}

impl Directory for EntraDirectory {
    async fn test_connection(&self) -> Result<ConnectionReport, DirectoryError> {
        let started = Instant::now();
        self.access_token().await?;
        let users: Page<DirectoryObject> = self
            .get(
                &self.graph(&format!("/v1.0/users?$select=id&$top={PAGE}")),
                false,
            )
            .await
            .map_err(failed)?;
        let groups: Page<DirectoryObject> = self
            .get(
                &self.graph(&format!("/v1.0/groups?$select=id&$top={PAGE}")),
                false,
            )
            .await
            .map_err(failed)?;
        Ok(ConnectionReport {
            bound_as: format!(
                "application {} in tenant {}",
                self.settings.client_id, self.settings.tenant_id
            ),
            users_matched: users.value.len(),
            groups_matched: groups.value.len(),
            elapsed: started.elapsed(),
        })
    }

    async fn list_groups(&self, search: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let search = search.trim();
        let found = self
            .read_groups((!search.is_empty()).then_some(search))
            .await?;
        let needle = search.to_lowercase();
        let mut groups: Vec<DirectoryGroup> = found
            .into_iter()
            .filter_map(|g| {
                let name = g.display_name?;
                // Graph's $search matches words; the picker promises a substring.
                name.to_lowercase()
                    .contains(&needle)
                    .then(|| DirectoryGroup {
                        id: g.id,
                        name,
                        description: g.description.unwrap_or_default(),
                    })
            })
            .collect();
        groups.sort_by_key(|g| g.name.to_lowercase());
        Ok(groups)
    }

    async fn snapshot(&self, progress: &Progress) -> Result<Snapshot, DirectoryError> {
        progress.set_phase("connecting");
        self.access_token().await?;
        let mut warnings = Vec::new();
        progress.set_phase("reading users");
        let all_users = self.read_users(&mut warnings, progress).await?;
        progress.set_phase("reading groups");
        let listed = self.read_groups(None).await?;
        let chosen: HashSet<String> = self
            .settings
            .groups_to_sync
            .iter()
            .map(|g| g.to_lowercase())
            .collect();
        for name in &chosen {
            if !listed
                .iter()
                .any(|g| g.display_name.as_deref().map(str::to_lowercase).as_ref() == Some(name))
            {
                return Err(DirectoryError::Settings(format!(
                    "the group `{name}` chosen for synchronisation does not exist in the directory"
                )));
            }
        }
        let mut wanted = Vec::new();
        for g in listed {
            let Some(name) = g.display_name.clone().filter(|n| !n.trim().is_empty()) else {
                warnings.push(format!("group {}: no displayName; left out", g.id));
                continue;
            };
            if chosen.is_empty() || chosen.contains(&name.to_lowercase()) {
                wanted.push((g, name));
            }
        }

        progress.set_phase("reading members");
        // All member reads are started, a few at a time get to send (a semaphore, not a
        // stream: its borrowed futures would make the run's future not `Send`).
        let permits = tokio::sync::Semaphore::new(MEMBER_CONCURRENCY);
        let reads: Vec<_> = wanted
            .iter()
            .map(|(g, _)| {
                let permits = &permits;
                async move {
                    let _permit = permits.acquire().await;
                    self.members(&g.id).await
                }
            })
            .collect();
        let read = futures_util::future::join_all(reads).await;
        let known: HashMap<&str, usize> = all_users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.external_id.as_str(), i))
            .collect();
        let mut in_chosen = HashSet::new();
        let mut groups = Vec::new();
        for ((g, name), members) in wanted.iter().zip(read) {
            let Some(members) = members? else {
                warnings.push(format!(
                    "group {name}: deleted in Entra ID while it was being read; left out"
                ));
                continue;
            };
            progress.group_read();
            let (inside, outside): (Vec<String>, Vec<String>) = members
                .into_iter()
                .partition(|id| known.contains_key(id.as_str()));
            if !outside.is_empty() {
                warnings.push(format!(
                    "group {name}: {} member user(s) are not synchronised (disabled, guests, without a mailbox, or created after the users were read)",
                    outside.len()
                ));
            }
            in_chosen.extend(
                inside
                    .iter()
                    .filter_map(|id| known.get(id.as_str()).copied()),
            );
            groups.push(SourceGroup {
                external_id: g.id.clone(),
                name: name.clone(),
                description: g.description.clone().unwrap_or_default(),
                members: inside,
            });
        }
        let total = all_users.len();
        let (users, scope) = if chosen.is_empty() {
            (all_users, None)
        } else {
            let users: Vec<SourceUser> = all_users
                .into_iter()
                .enumerate()
                .filter(|(i, _)| in_chosen.contains(i))
                .map(|(_, u)| u)
                .collect();
            let scope = format!(
                "{} of {total} users are in the chosen groups; only they are synchronised",
                users.len()
            );
            (users, Some(scope))
        };
        let domains: std::collections::BTreeSet<String> = users
            .iter()
            .filter_map(|u| u.username.rsplit_once('@'))
            .map(|(_, domain)| domain.trim().to_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        Ok(Snapshot {
            users,
            groups,
            warnings,
            scope,
            sign_in_domains: Some(domains.into_iter().collect()),
        })
    }

    async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError> {
        let name: String = url::form_urlencoded::byte_serialize(username.trim().as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let url = self.graph(&format!("/v1.0/users/{name}?$select={USER_FIELDS}"));
        match self.get::<GraphUser>(&url, false).await {
            Ok(u) => Ok(Some(SourceUser {
                external_id: u.id,
                emails: emails(u.mail.as_deref(), u.proxy_addresses.as_deref().unwrap_or_default()),
                full_name: u.display_name.unwrap_or_default(),
                username: u.user_principal_name.unwrap_or_default(),
                disabled: !u.account_enabled.unwrap_or(false),
                sign_in_name: String::new(),
            })),
            Err(Failure::NotFound(_)) => Ok(None),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    async fn authenticate(
        &self,
        _external_id: &str,
        _password: &SecretString,
    ) -> Result<PasswordCheck, DirectoryError> {
        Ok(PasswordCheck::Refused {
            reason: "Entra ID users sign in with Microsoft, not with a password".into(),
        })
    }
}

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The token endpoint of a tenant.
pub fn token_url(authority: &str, tenant_id: &str) -> String {
    format!(
        "{}/{tenant_id}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    )
}

/// A client assertion for `audience` (the token endpoint it is sent to), signed PS256 with
/// the profile's key; `x5t#S256` names the certificate the admin registered.
pub fn client_assertion(
    private_key_pem: &SecretString,
    certificate_pem: &str,
    client_id: &str,
    audience: &str,
) -> Result<String, DirectoryError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unusable =
        |what: &str| DirectoryError::Settings(format!("the certificate credential {what}"));
    let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
        .map_err(|_| unusable("has no readable certificate"))?;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(private_key_pem.expose_secret())
        .map_err(|_| unusable("has no readable private key"))?;
    let header = serde_json::json!({
        "alg": "PS256",
        "typ": "JWT",
        "x5t#S256": URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref())),
    });
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": crate::crypto::random_token(),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_SECONDS,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signer = rsa::pss::BlindedSigningKey::<Sha256>::new(key);
    let signature = signer
        .try_sign_with_rng(&mut rand::rngs::OsRng, signing_input.as_bytes())
        .map_err(|e| unusable(&format!("cannot sign: {e}")))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}

/// The HTTP client of a connector: Roster's TLS trust, the profile's timeout on every
/// request, no redirects (Graph and the token endpoint do not send any).
pub fn http_client(
    tls: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<reqwest::Client, DirectoryError> {
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Roster/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DirectoryError::Settings(format!("cannot make an HTTP client: {e}")))
}

/// The addresses of a user: the primary (`SMTP:`) first, then `mail`, then the other
/// `smtp:` proxy addresses, each once.
fn emails(mail: Option<&str>, proxies: &[String]) -> Vec<String> {
    let smtp = |p: &String, primary: bool| {
        let (prefix, rest) = p.split_at_checked(5)?;
        let wanted = if primary {
            prefix == "SMTP:"
        } else {
            prefix.eq_ignore_ascii_case("smtp:") && prefix != "SMTP:"
        };
        wanted.then(|| rest.trim().to_owned())
    };
    let primary = proxies.iter().filter_map(|p| smtp(p, true));
    let others = proxies.iter().filter_map(|p| smtp(p, false));
    let mut seen = HashSet::new();
    primary
        .chain(mail.map(|m| m.trim().to_owned()))
        .chain(others)
        .filter(|a| !a.is_empty() && seen.insert(a.to_lowercase()))
        .collect()
}

/// Entra's own words for a refused token request (`AADSTS…: …`).
fn token_error(status: reqwest::StatusCode, body: &[u8]) -> DirectoryError {
    let detail = match serde_json::from_slice::<TokenError>(body) {
        Ok(e) if !e.error_description.is_empty() => {
            // Entra appends trace and correlation ids on new lines; the first line says it.
            let first = e.error_description.lines().next().unwrap_or_default();
            format!("{} ({})", first.trim(), e.error)
        }
        _ => format!("HTTP {status}: {}", excerpt(body)),
    };
    let invalid_client = detail.contains("AADSTS700027")
        || detail.contains("AADSTS7000215")
        || detail.contains("invalid_client");
    if invalid_client {
        DirectoryError::InvalidCredentials {
            detail,
            sub_code: None,
        }
    } else {
        DirectoryError::Protocol {
            detail: format!("Entra ID refused the token request: {detail}"),
        }
    }
}

/// Graph's error in its words: `HTTP 403 Authorization_RequestDenied: Insufficient …`.
fn graph_error(status: reqwest::StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<GraphErrorBody>(body) {
        Ok(e) => {
            let hint = if e.error.code == "Authorization_RequestDenied" {
                " (grant the application permissions User.Read.All and GroupMember.Read.All with admin consent)"
            } else {
                ""
            };
            format!(
                "Graph answered HTTP {} {}: {}{hint}",
                status.as_u16(),
                e.error.code,
                e.error.message
            )
        }
        Err(_) => format!("Graph answered HTTP {}: {}", status.as_u16(), excerpt(body)),
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut short: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        short.push('…');
    }
    short
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
