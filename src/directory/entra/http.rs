//! Entra ID's and Graph's HTTP: the app-only token (cached until shortly before it
//! expires), GETs with the bearer token only ever sent to the profile's Graph URL, paging to
//! the end, throttling waited out within the run's budget, and every failure in the
//! server's own words.

use std::time::Instant;

use serde::Deserialize;

use super::{ASSERTION_TYPE, EntraDirectory, client_assertion, token_url};

use crate::directory::DirectoryError;
use crate::directory::rest::{Dialect, Failure, TokenError, excerpt};

#[derive(Deserialize)]
pub(super) struct Page<T> {
    pub(super) value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub(super) next_link: Option<String>,
    /// The last page of a delta round: where the next round starts.
    #[serde(rename = "@odata.deltaLink")]
    pub(super) delta_link: Option<String>,
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
        let (status, body) = self
            .rest
            .send(|| self.rest.client.post(&url).form(&form))
            .await?;
        if !status.is_success() {
            return Err(token_error(status, &body));
        }
        let (token, until) = crate::directory::rest::access_token(&body)?;
        *cached = Some((token.clone(), until));
        Ok(token)
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
            .rest
            .send(|| {
                let request = self.rest.client.get(url).bearer_auth(&token);
                if eventual {
                    request.header("ConsistencyLevel", "eventual")
                } else {
                    request
                }
            })
            .await?;
        if resync_asked(status, &body) {
            return Err(Failure::Resync(graph_error(status, &body)));
        }
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

    /// Every page of a collection, from `first` until there is no `nextLink`; the last
    /// page's `deltaLink` when it is a delta round.
    pub(super) async fn all<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
        eventual: bool,
        mut each: impl FnMut(T),
    ) -> Result<Option<String>, Failure> {
        let mut next = Some(first);
        let mut seen = std::collections::HashSet::new();
        while let Some(url) = next.take() {
            // A link handed out twice would page forever.
            if !seen.insert(url.clone()) {
                return Err(Failure::Other(DirectoryError::Protocol {
                    detail: format!("Graph sent the same page link twice: {url}"),
                }));
            }
            let page: Page<T> = self.get(&url, eventual).await?;
            page.value.into_iter().for_each(&mut each);
            if page.next_link.is_none() {
                return Ok(page.delta_link);
            }
            next = page.next_link;
        }
        Ok(None)
    }
}

/// Whether Graph no longer knows a delta link: 410 Gone, or a 4xx whose code says so.
fn resync_asked(status: reqwest::StatusCode, body: &[u8]) -> bool {
    if status == reqwest::StatusCode::GONE {
        return true;
    }
    status.is_client_error()
        && serde_json::from_slice::<GraphErrorBody>(body).is_ok_and(|e| {
            ["syncStateNotFound", "resyncRequired", "syncStateInvalid"]
                .iter()
                .any(|code| e.error.code.eq_ignore_ascii_case(code))
        })
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

/// Graph's throttling: 429, and 503 (which Graph sends with `Retry-After` too).
pub(super) const GRAPH: Dialect = Dialect {
    service: "Graph",
    throttled: |status, _| {
        status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
    },
    describe: graph_error,
};

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
