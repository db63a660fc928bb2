//! OpenID Connect sign-in, the protocol part (SECURITY.md, "OIDC"): the authorization
//! request (PKCE S256, `state`, `nonce`), the code exchange authenticated with a client
//! assertion, and the ID token checked exactly — signature against the provider's keys
//! (cached; fetched again once for an unknown `kid`), `alg: none` and HMAC refused, exact
//! `iss`, our client id in `aud` and no other audience, `azp` when present, `exp`/`nbf`
//! with a small skew, the `nonce`; then the provider's own rules: Entra's `tid`, Google's
//! `hd` and `email_verified`. Who the user is in Roster is the service's business
//! (`services::oidc`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod token;

use openidconnect::PkceCodeChallenge;
use openidconnect::core::CoreJsonWebKeySet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use token::Check;

/// A provider's discovery document and keys are read again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Requests to the provider must be answered within this.
const TIMEOUT: Duration = Duration::from_secs(15);

/// One OpenID client: a profile as its provider knows it.
#[derive(Clone)]
pub struct Client {
    /// `{authority}/{tenant}/v2.0/.well-known/openid-configuration`, say.
    pub discovery_url: String,
    /// The issuer the discovery document must name (after `{tenantid}` is filled in) and
    /// every ID token must carry, exactly.
    pub issuer: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub auth: ClientAuth,
    pub rules: Rules,
    /// Hosts besides the issuer's where the provider's endpoints may be (Google's token
    /// endpoint and keys are not at accounts.google.com); `https` only.
    pub endpoint_hosts: &'static [&'static str],
}

/// How Roster proves itself at the token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// Entra ID's `private_key_jwt`: a client assertion signed with the profile's key.
    Assertion {
        private_key_pem: SecretString,
        certificate_pem: String,
    },
    /// A client secret (Google): `client_secret_post` when the provider offers it, else
    /// `client_secret_basic`.
    Secret(SecretString),
}

/// Who, besides a valid token, may sign in through this client.
#[derive(Clone, Debug)]
pub enum Rules {
    /// Entra ID: only the tenant's users (`tid`), each named by `oid`.
    Entra { tenant: String },
    /// Google: only the Workspace domain's users (`hd`) with a verified address, each
    /// named by `sub`; `iss` may come without its `https://`.
    Google { domain: String },
}

/// What Roster sends the browser to, and what it must keep to check the answer.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The checked ID token's facts.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user's id in the directory: Entra's `oid` (the Graph id), Google's `sub` (the
    /// Directory API id).
    pub subject: String,
    /// Entra's `tid`, Google's `hd`.
    pub organisation: String,
    /// `preferred_username`, else `email`: for the audit log only.
    pub username: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider cannot be used (unreachable, bad discovery document): for the admin.
    #[error("the OpenID provider cannot be used: {0}")]
    Provider(String),
    /// The token endpoint refused the code, in its words.
    #[error("the OpenID provider refused the sign-in: {0}")]
    TokenEndpoint(String),
    /// The ID token failed a check: for the audit log.
    #[error("the ID token was refused: {0}")]
    Token(String),
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

struct Known {
    discovery: Discovery,
    keys: CoreJsonWebKeySet,
    fetched: Instant,
}

/// The providers' discovery documents and keys, shared by every sign-in.
#[derive(Clone)]
pub struct Providers {
    http: reqwest::Client,
    known: Arc<Mutex<HashMap<String, Arc<Known>>>>,
}

impl Providers {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> anyhow::Result<Providers> {
        let http = crate::directory::rest::http_client(tls, TIMEOUT)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Providers {
            http,
            known: Arc::default(),
        })
    }

    /// The authorization request for `client`; `login_hint` saves the user typing again.
    pub async fn authorize(
        &self,
        client: &Client,
        login_hint: Option<&str>,
    ) -> Result<Authorization, OidcError> {
        let known = self.known(client, false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = crate::crypto::random_token();
        let nonce = crate::crypto::random_token();
        let mut url = url::Url::parse(&known.discovery.authorization_endpoint)
            .map_err(|e| OidcError::Provider(format!("authorization_endpoint: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &client.client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", &client.redirect_uri)
                .append_pair("scope", "openid profile email")
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", "S256");
            if let Some(hint) = login_hint.filter(|h| !h.is_empty()) {
                query.append_pair("login_hint", hint);
            }
            match &client.rules {
                // Entra answers in the fragment for some flows unless told.
                Rules::Entra { .. } => query.append_pair("response_mode", "query"),
                // Google's account chooser offers this domain's accounts; only a hint,
                // the token's `hd` is what is checked.
                Rules::Google { domain } => query.append_pair("hd", domain),
            };
        }
        Ok(Authorization {
            url: url.to_string(),
            state,
            nonce,
            pkce_verifier: verifier.into_secret(),
        })
    }

    /// Exchanges the code for tokens and checks the ID token.
    pub async fn finish(
        &self,
        client: &Client,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Identity, OidcError> {
        let known = self.known(client, false).await?;
        let token_url = &known.discovery.token_endpoint;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", client.redirect_uri.clone()),
            ("code_verifier", pkce_verifier.to_owned()),
            ("client_id", client.client_id.clone()),
        ];
        let mut request = self.http.post(token_url);
        match &client.auth {
            ClientAuth::Assertion {
                private_key_pem,
                certificate_pem,
            } => {
                let assertion = crate::directory::entra::client_assertion(
                    private_key_pem,
                    certificate_pem,
                    &client.client_id,
                    token_url,
                )
                .map_err(|e| OidcError::Provider(e.to_string()))?;
                form.push((
                    "client_assertion_type",
                    crate::directory::entra::ASSERTION_TYPE.to_owned(),
                ));
                form.push(("client_assertion", assertion));
            }
            ClientAuth::Secret(secret) => {
                let methods = &known.discovery.token_endpoint_auth_methods_supported;
                if methods.iter().any(|m| m == "client_secret_post") {
                    form.push(("client_secret", secret.expose_secret().to_owned()));
                } else {
                    // RFC 6749 §2.3.1: both halves form-encoded before Basic.
                    let encode = |v: &str| -> String {
                        url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
                    };
                    request = request.basic_auth(
                        encode(&client.client_id),
                        Some(encode(secret.expose_secret())),
                    );
                }
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            // A cut-off or garbled answer is not the provider refusing: it is a failed call.
            .map_err(|e| OidcError::Provider(format!("token endpoint: HTTP {status}, {e}")))?;
        if !status.is_success() {
            let text = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let description = text("error_description").lines().next().unwrap_or("");
            return Err(OidcError::TokenEndpoint(format!(
                "{} {description}",
                text("error")
            )));
        }
        let id_token = body
            .get("id_token")
            .and_then(|v| v.as_str())
            .ok_or_else(|| OidcError::TokenEndpoint("the answer has no id_token".into()))?;
        self.verify(client, id_token, nonce).await
    }

    /// Checks an ID token; an unknown `kid` fetches the provider's keys once more.
    pub async fn verify(
        &self,
        client: &Client,
        id_token: &str,
        nonce: &str,
    ) -> Result<Identity, OidcError> {
        let known = self.known(client, false).await?;
        match token::check(client, &known.keys, id_token, nonce) {
            Err(Check::NoKey) => {
                let known = self.known(client, true).await?;
                token::check(client, &known.keys, id_token, nonce).map_err(Check::into_error)
            }
            other => other.map_err(Check::into_error),
        }
    }

    /// The provider's facts, cached; `refetch` reads them again. (ID tokens only come from
    /// the provider's token endpoint, in answer to our own code exchange, so an unknown
    /// `kid` is the provider's key rotation, not something anyone can send at will.)
    async fn known(&self, client: &Client, refetch: bool) -> Result<Arc<Known>, OidcError> {
        let cached = self
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(&client.discovery_url).cloned());
        if let Some(known) = &cached
            && known.fetched.elapsed() < METADATA_TTL
            && !refetch
        {
            return Ok(known.clone());
        }
        let discovery: Discovery = self.get_json(&client.discovery_url).await?;
        // Entra's multi-tenant documents name the issuer with a literal `{tenantid}`.
        let issuer = match &client.rules {
            Rules::Entra { tenant } => discovery.issuer.replace("{tenantid}", tenant),
            Rules::Google { .. } => discovery.issuer.clone(),
        };
        if issuer != client.issuer {
            return Err(OidcError::Provider(format!(
                "the discovery document names the issuer {issuer}, not {}",
                client.issuer
            )));
        }
        // The code, the PKCE verifier and our credential go to the token endpoint, and the
        // keys decide what is believed: both must be the issuer's own (or the provider's
        // known hosts).
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        let known_host = |u: &str| {
            url::Url::parse(u).is_ok_and(|u| {
                u.scheme() == "https"
                    && u.host_str()
                        .is_some_and(|h| client.endpoint_hosts.contains(&h))
            })
        };
        for (name, endpoint) in [
            ("token_endpoint", &discovery.token_endpoint),
            ("jwks_uri", &discovery.jwks_uri),
            ("authorization_endpoint", &discovery.authorization_endpoint),
        ] {
            let at_issuer = origin(endpoint).is_some() && origin(endpoint) == origin(&issuer);
            if !at_issuer && !known_host(endpoint) {
                return Err(OidcError::Provider(format!(
                    "the discovery document's {name} {endpoint} is not at the issuer {issuer}"
                )));
            }
        }
        let keys: CoreJsonWebKeySet = self.get_json(&discovery.jwks_uri).await?;
        let known = Arc::new(Known {
            discovery: Discovery {
                issuer,
                ..discovery
            },
            keys,
            fetched: Instant::now(),
        });
        if let Ok(mut all) = self.known.lock() {
            all.insert(client.discovery_url.clone(), known.clone());
        }
        Ok(known)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(OidcError::Provider(format!("{url} answered HTTP {status}")));
        }
        response
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: the answer does not parse: {e}")))
    }
}
