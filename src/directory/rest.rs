//! What the connectors that speak HTTP share (Entra ID's Graph, Google's Directory API):
//! the client (Roster's TLS trust, the profile's timeout, no redirects), requests sent
//! again while the service throttles — within one budget per run, shared by every request
//! of the run — and network failures named the same way whichever service it was.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rustls::ClientConfig;

use super::DirectoryError;

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

/// A token is renewed this long before the service says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// An OAuth 2.0 error answer (RFC 6749 §5.2).
#[derive(serde::Deserialize)]
pub struct TokenError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: String,
}

/// Reads a successful OAuth 2.0 token answer (RFC 6749 §5.1): the access token, and until
/// when to use it (shortly before it expires).
pub fn access_token(body: &[u8]) -> Result<(String, Instant), DirectoryError> {
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        access_token: String,
        #[serde(default)]
        expires_in: u64,
    }
    let token: TokenAnswer =
        serde_json::from_slice(body).map_err(|e| DirectoryError::Protocol {
            detail: format!("the token endpoint's answer does not parse: {e}"),
        })?;
    let lifetime = Duration::from_secs(token.expires_in.max(60));
    let until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN).max(lifetime / 2);
    Ok((token.access_token, until))
}

/// What went wrong with one request: a 404 is told apart (with the service's words),
/// because a group deleted between listing it and reading its members is not a failed
/// read.
pub enum Failure {
    NotFound(String),
    /// The service no longer knows the change cursor it was asked from (Graph's 410, or
    /// `syncStateNotFound` / `resyncRequired`): everything must be read again.
    Resync(String),
    Other(DirectoryError),
}

impl From<DirectoryError> for Failure {
    fn from(e: DirectoryError) -> Failure {
        Failure::Other(e)
    }
}

/// The error of a request where a 404 is no different.
pub fn failed(f: Failure) -> DirectoryError {
    match f {
        Failure::NotFound(detail) | Failure::Resync(detail) => DirectoryError::Protocol { detail },
        Failure::Other(e) => e,
    }
}

/// A service's ways: what a throttling answer looks like and how its errors read.
#[derive(Clone, Copy)]
pub struct Dialect {
    /// "Graph", "Google's Directory API": who throttled, in the log.
    pub service: &'static str,
    /// Whether an answer asks to be sent again later.
    pub throttled: fn(reqwest::StatusCode, &[u8]) -> bool,
    /// An error answer in the service's own words.
    pub describe: fn(reqwest::StatusCode, &[u8]) -> String,
}

/// A connector's HTTP side.
pub struct Rest {
    pub client: reqwest::Client,
    timeout: Duration,
    /// Named when a failure does not say which host it was.
    server: String,
    dialect: Dialect,
    budget: RetryBudget,
    throttle: Mutex<Throttle>,
}

/// The run's throttling so far: pauses taken, time waited, and the pause now on.
#[derive(Default)]
struct Throttle {
    retries: u32,
    waited: Duration,
    until: Option<Instant>,
}

impl Rest {
    pub fn new(
        tls: Arc<ClientConfig>,
        timeout: Duration,
        base_url: &str,
        dialect: Dialect,
        budget: RetryBudget,
    ) -> Result<Rest, DirectoryError> {
        let server = url::Url::parse(base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| base_url.to_owned());
        Ok(Rest {
            client: http_client(tls, timeout)?,
            timeout,
            server,
            dialect,
            budget,
            throttle: Mutex::default(),
        })
    }

    /// Sends a request, waiting out throttling (`Retry-After`, else exponential backoff
    /// with jitter, as Google asks) while the run's budget lasts. Returns the status and
    /// the whole body; a stall or a cut-off body (a throttling answer's too) is an error.
    pub async fn send(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), DirectoryError> {
        loop {
            // Services throttle the application, not one request: while a pause is on, no
            // request of this run is sent.
            if let Some(left) = self.pause_left() {
                tokio::time::sleep(left).await;
            }
            let response = request().send().await.map_err(|e| self.transport(&e))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.bytes().await.map_err(|e| self.cut_off(&e))?;
            if !(self.dialect.throttled)(status, &body) {
                return Ok((status, body.to_vec()));
            }
            let wait = self
                .pause(retry_after)
                .map_err(|why| DirectoryError::Protocol {
                    detail: format!(
                        "{why}; the last answer: {}",
                        (self.dialect.describe)(status, &body)
                    ),
                })?;
            tracing::info!(
                service = self.dialect.service,
                %status,
                wait_ms = wait.as_millis() as u64,
                "throttled; waiting"
            );
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
    /// Without `Retry-After` the pause doubles with each of the run's pauses (not each
    /// request's), so a run that keeps being throttled backs off further and further.
    fn pause(&self, retry_after: Option<Duration>) -> Result<Duration, String> {
        let budget = self.budget;
        let mut t = self
            .throttle
            .lock()
            .map_err(|_| "the retry budget is unreadable".to_owned())?;
        let now = Instant::now();
        let on = t.until.filter(|current| *current > now);
        // A request throttled while a pause is on waits for that pause to end, unless the
        // service names a longer wait.
        let wait = match (retry_after, on) {
            (Some(wait), _) => wait,
            (None, Some(current)) => current - now,
            (None, None) => backoff(t.retries),
        };
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
        Ok(wait)
    }

    /// A request that failed before an answer came.
    pub fn transport(&self, e: &reqwest::Error) -> DirectoryError {
        let server = e
            .url()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| self.server.clone());
        if e.is_timeout() {
            DirectoryError::Timeout {
                server,
                timeout: self.timeout,
                hint: "",
            }
        } else if e.is_connect() {
            DirectoryError::Unreachable {
                server,
                detail: error_chain(e),
            }
        } else {
            DirectoryError::ConnectionLost { server }
        }
    }

    fn cut_off(&self, e: &reqwest::Error) -> DirectoryError {
        if e.is_timeout() {
            return self.transport(e);
        }
        DirectoryError::Incomplete {
            detail: format!("the answer was cut off: {}", error_chain(e)),
        }
    }
}

/// 1, 2, 4 … 64 s after the run's first, second, third … pause, plus up to a second at
/// random so that clients throttled together do not all come back at once.
fn backoff(pauses_so_far: u32) -> Duration {
    let jitter = rand::thread_rng().gen_range(0..1000);
    Duration::from_secs(1 << pauses_so_far.min(6)) + Duration::from_millis(jitter)
}

/// The HTTP client of a connector: Roster's TLS trust, the profile's timeout on every
/// request, no redirects (none of these services sends any to an API client).
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

/// The start of a body, for an error message.
pub fn excerpt(body: &[u8]) -> String {
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
