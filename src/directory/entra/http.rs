//! Entra ID's and Graph's HTTP: the app-only token (cached until shortly before it
//! expires), GETs with the bearer token only ever sent to the profile's Graph URL, paging to
//! the end, throttling waited out within the run's budget, and every failure in the
//! server's own words.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use serde::Deserialize;

use super::{ASSERTION_TYPE, EntraDirectory, client_assertion, token_url};

/// The run's throttling so far: pauses taken, time waited, and the pause now on.
#[derive(Default)]
pub(super) struct Throttle {
    retries: u32,
    waited: Duration,
    until: Option<Instant>,
}
use crate::directory::DirectoryError;

/// A token is renewed this long before Entra says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// What went wrong with one request: Graph's 404 is told apart, because a group deleted
/// between listing it and reading its members is not a failed read.
pub(super) enum Failure {
    NotFound(String),
    Other(DirectoryError),
}

impl From<DirectoryError> for Failure {
    fn from(e: DirectoryError) -> Failure {
        Failure::Other(e)
    }
}

pub(super) fn failed(f: Failure) -> DirectoryError {
    match f {
        Failure::NotFound(detail) => DirectoryError::Protocol { detail },
        Failure::Other(e) => e,
    }
}

#[derive(Deserialize)]
pub(super) struct Page<T> {
    pub(super) value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub(super) next_link: Option<String>,
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
    fn token_url(&self) -> String {
        token_url(&self.settings.authority, &self.settings.tenant_id)
    }

    /// An app-only Graph token, reused until shortly before it expires.
    pub(super) async fn access_token(&self) -> Result<String, DirectoryError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let url = self.token_url();
        let scope = format!("{}/.default", self.settings.graph_url.trim_end_matches('/'));
        let assertion = client_assertion(
            &self.settings.private_key_pem,
            &self.settings.certificate_pem,
            &self.settings.client_id,
            &url,
        )?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.settings.client_id.as_str()),
            // Graph of the profile's cloud: Entra issues no token for another resource.
            ("scope", scope.as_str()),
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
    pub(super) async fn get<T: serde::de::DeserializeOwned>(
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
    pub(super) async fn all<T: serde::de::DeserializeOwned>(
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
            // Graph throttles the application, not one request: while a pause is on, no
            // request of this run is sent.
            if let Some(left) = self.pause_left() {
                tokio::time::sleep(left).await;
            }
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
            self.pause(wait).map_err(|why| {
                Failure::Other(DirectoryError::Protocol {
                    detail: format!("{why}; Graph's last answer: {}", graph_error(status, &body)),
                })
            })?;
            tracing::info!(%status, wait_seconds = wait.as_secs(), "Graph throttled a request; waiting");
            attempt += 1;
        }
    }

    fn pause_left(&self) -> Option<Duration> {
        let until = self.throttle.lock().ok()?.until?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Starts (or lengthens) the run's pause, taken from the budget: each pause counts as
    /// one retry however many requests were told to wait at once, and its length once.
    fn pause(&self, wait: Duration) -> Result<(), String> {
        let budget = self.settings.retry;
        let mut t = self
            .throttle
            .lock()
            .map_err(|_| "the retry budget is unreadable".to_owned())?;
        let now = Instant::now();
        let until = now + wait;
        let (retries, extra) = match t.until {
            Some(current) if current > now => (t.retries, until.saturating_duration_since(current)),
            _ => (t.retries + 1, wait),
        };
        if retries > budget.retries || t.waited + extra > budget.total_wait {
            return Err(format!(
                "throttled past the retry budget ({} retries, {} s of waiting)",
                budget.retries,
                budget.total_wait.as_secs()
            ));
        }
        t.retries = retries;
        t.waited += extra;
        t.until = Some(t.until.map_or(until, |u| u.max(until)));
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

/// An error with what caused it, each cause after a colon.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
