//! Google's HTTP: the service account's token (a JWT-bearer assertion signed RS256 with
//! its key, acting as the profile's admin user), cached until shortly before it expires;
//! Directory API GETs followed page by page through `nextPageToken`; throttling (429, and
//! 403 with a rate-limit reason) waited out within the run's budget; every failure in
//! Google's words with what to do about it.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::objects::Listing;
use super::{GoogleDirectory, SCOPES, ServiceAccountKey};
use crate::directory::DirectoryError;
use crate::directory::rest::{Dialect, Failure, TokenError, excerpt};

/// Assertions live this long (Google takes at most an hour).
const ASSERTION_SECONDS: i64 = 600;
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Google's error reasons that mean "slow down" (PROTOCOLS.md, "Google Workspace").
const RATE_LIMITED: [&str; 3] = [
    "userRateLimitExceeded",
    "rateLimitExceeded",
    "quotaExceeded",
];

pub(super) const DIRECTORY_API: Dialect = Dialect {
    service: "Google's Directory API",
    throttled: |status, body| {
        status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            || (status == reqwest::StatusCode::FORBIDDEN
                && api_reasons(body)
                    .iter()
                    .any(|r| RATE_LIMITED.contains(&r.as_str())))
    },
    describe: |status, body| api_error(status, body, ""),
};

#[derive(Deserialize)]
struct ApiErrorBody {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ApiErrorItem>,
}

#[derive(Deserialize)]
struct ApiErrorItem {
    #[serde(default)]
    reason: String,
}

impl GoogleDirectory {
    /// A Directory API token acting as the admin user, reused until shortly before it
    /// expires.
    pub(super) async fn access_token(&self) -> Result<String, DirectoryError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let url = self.settings.token_url.clone();
        let assertion = assertion(&self.settings.key, &self.settings.admin_user, &url)?;
        let form = [
            ("grant_type", GRANT_TYPE),
            ("assertion", assertion.as_str()),
        ];
        let (status, body) = self
            .rest
            .send(|| self.rest.client.post(&url).form(&form))
            .await?;
        if !status.is_success() {
            return Err(self.token_error(status, &body));
        }
        let (token, until) = crate::directory::rest::access_token(&body)?;
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    /// One Directory API GET, throttling retried; the body as JSON of type `T`.
    pub(super) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, Failure> {
        let token = self.access_token().await?;
        let (status, body) = self
            .rest
            .send(|| self.rest.client.get(url).bearer_auth(&token))
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Failure::NotFound(api_error(status, &body, "")));
        }
        if !status.is_success() {
            return Err(Failure::Other(DirectoryError::Protocol {
                detail: api_error(status, &body, &self.settings.admin_user),
            }));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Failure::Other(DirectoryError::Incomplete {
                detail: format!(
                    "a page from Google's Directory API does not parse ({e}): {}",
                    excerpt(&body)
                ),
            })
        })
    }

    /// Every page of a list, from `first` (a URL with its query) while Google sends a
    /// `nextPageToken`; each page must be the list asked for.
    pub(super) async fn all<P: Listing>(
        &self,
        first: &str,
        mut each: impl FnMut(P),
    ) -> Result<(), Failure> {
        let mut url = first.to_owned();
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut page: P = self.get(&url).await?;
            if page.kind() != P::KIND {
                return Err(Failure::Other(DirectoryError::Incomplete {
                    detail: format!(
                        "Google sent a page of kind {:?}, not {}",
                        page.kind(),
                        P::KIND
                    ),
                }));
            }
            let next = page.next_page_token();
            each(page);
            let Some(token) = next.filter(|t| !t.is_empty()) else {
                return Ok(());
            };
            // A token sent twice would page forever.
            if !seen.insert(token.clone()) {
                return Err(Failure::Other(DirectoryError::Incomplete {
                    detail: "Google sent the same nextPageToken twice".into(),
                }));
            }
            let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
            url = format!("{first}&pageToken={token}");
        }
    }

    /// Google's words for a refused token request, with what the admin should check.
    fn token_error(&self, status: reqwest::StatusCode, body: &[u8]) -> DirectoryError {
        let Ok(e) = serde_json::from_slice::<TokenError>(body) else {
            return DirectoryError::Protocol {
                detail: format!(
                    "Google's token endpoint answered HTTP {}: {}",
                    status.as_u16(),
                    excerpt(body)
                ),
            };
        };
        let said = if e.error_description.is_empty() {
            e.error.clone()
        } else {
            format!("{}: {}", e.error, e.error_description)
        };
        let key = &self.settings.key;
        let hint = match e.error.as_str() {
            "unauthorized_client" => format!(
                " — in the Google Admin console (Security → Access and data control → API controls → Domain-wide delegation) allow client ID {} the scopes {}",
                key.client_id,
                SCOPES.join(",")
            ),
            "invalid_grant" if e.error_description.contains("Invalid email or User ID") => format!(
                " — the admin user name `{}` is not a user of this Google Workspace",
                self.settings.admin_user
            ),
            "invalid_grant" if e.error_description.contains("Signature") => format!(
                " — the key {} of {} was deleted or is not this service account's: import a current JSON key",
                key.private_key_id, key.client_email
            ),
            "invalid_grant" if e.error_description.contains("timeframe") => {
                " — check this machine's clock".into()
            }
            _ => String::new(),
        };
        let detail = format!("Google refused the token request: {said}{hint}");
        match e.error.as_str() {
            "invalid_client" | "unauthorized_client" | "invalid_grant" => {
                DirectoryError::InvalidCredentials {
                    detail,
                    sub_code: None,
                }
            }
            _ => DirectoryError::Protocol { detail },
        }
    }
}

/// The `reason`s of a Directory API error body.
fn api_reasons(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<ApiErrorBody>(body)
        .map(|b| b.error.errors.into_iter().map(|e| e.reason).collect())
        .unwrap_or_default()
}

/// A Directory API error in Google's words: `HTTP 403 forbidden: Not Authorized …`.
fn api_error(status: reqwest::StatusCode, body: &[u8], admin_user: &str) -> String {
    let Ok(e) = serde_json::from_slice::<ApiErrorBody>(body) else {
        return format!(
            "Google's Directory API answered HTTP {}: {}",
            status.as_u16(),
            excerpt(body)
        );
    };
    let reasons: Vec<&str> = e.error.errors.iter().map(|e| e.reason.as_str()).collect();
    let hint = if reasons.contains(&"forbidden") && !admin_user.is_empty() {
        format!(
            " (the admin user `{admin_user}` must be a Workspace administrator allowed to read users and groups)"
        )
    } else if reasons.contains(&"insufficientPermissions") {
        format!(
            " (domain-wide delegation must allow the scopes {})",
            SCOPES.join(",")
        )
    } else {
        String::new()
    };
    format!(
        "Google's Directory API answered HTTP {} {}: {}{hint}",
        status.as_u16(),
        reasons.join(","),
        e.error.message
    )
}

/// The signed JWT-bearer assertion: the service account (`iss`) acting as the admin
/// user (`sub`), for the read-only directory scopes, addressed to the token endpoint.
pub fn assertion(
    key: &ServiceAccountKey,
    admin_user: &str,
    audience: &str,
) -> Result<String, DirectoryError> {
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::pki_types::pem::PemObject;
    let pair = PrivatePkcs8KeyDer::from_pem_slice(key.private_key_pem.expose_secret().as_bytes())
        .ok()
        .and_then(|der| ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).ok())
        .ok_or_else(|| {
            DirectoryError::Settings(
                "the service-account key has no readable RSA private key".into(),
            )
        })?;
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": key.private_key_id });
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": key.client_email,
        "sub": admin_user,
        "scope": SCOPES.join(" "),
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_SECONDS,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| DirectoryError::Settings("the service-account key cannot sign".into()))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}
