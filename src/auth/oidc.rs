//! OpenID Connect sign-in, the protocol part (SECURITY.md, "OIDC"): the authorization
//! request (PKCE S256, `state`, `nonce`), the code exchange authenticated with a client
//! assertion, and the ID token checked exactly — signature against the provider's keys
//! (cached; fetched again once for an unknown `kid`), `alg: none` and HMAC refused, exact
//! `iss`, our client id in `aud` and no other audience, `azp` when present, `exp`/`nbf`
//! with a small skew, the `nonce`, and Entra's `tid`. Who the user is in Roster is the
//! service's business (`services::oidc`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreGenderClaim, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{AdditionalClaims, ClientId, IssuerUrl, Nonce, PkceCodeChallenge};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Clocks of Roster and the provider may differ by this much.
const SKEW: i64 = 120;
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
    /// The client assertion's key and certificate (Entra ID's `private_key_jwt`).
    pub private_key_pem: SecretString,
    pub certificate_pem: String,
    /// Entra ID: the tenant whose tokens are accepted (`tid`).
    pub tenant: Option<String>,
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
    /// Entra ID: `oid`, the Graph user id.
    pub object_id: String,
    pub tenant: String,
    pub preferred_username: String,
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

#[derive(Debug, Clone, Deserialize, Serialize)]
struct ExtraClaims {
    oid: Option<String>,
    tid: Option<String>,
    nbf: Option<i64>,
}
impl AdditionalClaims for ExtraClaims {}

type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
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
        let http = crate::directory::entra::http_client(tls, TIMEOUT)
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
                .append_pair("response_mode", "query")
                .append_pair("redirect_uri", &client.redirect_uri)
                .append_pair("scope", "openid profile email")
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", "S256");
            if let Some(hint) = login_hint.filter(|h| !h.is_empty()) {
                query.append_pair("login_hint", hint);
            }
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
        let assertion = crate::directory::entra::client_assertion(
            &client.private_key_pem,
            &client.certificate_pem,
            &client.client_id,
            token_url,
        )
        .map_err(|e| OidcError::Provider(e.to_string()))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", pkce_verifier),
            ("client_id", client.client_id.as_str()),
            (
                "client_assertion_type",
                crate::directory::entra::ASSERTION_TYPE,
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let response = self
            .http
            .post(token_url)
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
        let token: IdToken = id_token
            .parse()
            .map_err(|e| OidcError::Token(format!("not a JWT: {e}")))?;
        let known = self.known(client, false).await?;
        match check(client, &known.keys, &token, nonce) {
            Err(Check::NoKey) => {
                let known = self.known(client, true).await?;
                check(client, &known.keys, &token, nonce).map_err(Check::into_error)
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
        let issuer = match &client.tenant {
            Some(tenant) => discovery.issuer.replace("{tenantid}", tenant),
            None => discovery.issuer.clone(),
        };
        if issuer != client.issuer {
            return Err(OidcError::Provider(format!(
                "the discovery document names the issuer {issuer}, not {}",
                client.issuer
            )));
        }
        // The code, the PKCE verifier and our assertion go to the token endpoint, and the
        // keys decide what is believed: both must be the issuer's own.
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        for (name, endpoint) in [
            ("token_endpoint", &discovery.token_endpoint),
            ("jwks_uri", &discovery.jwks_uri),
            ("authorization_endpoint", &discovery.authorization_endpoint),
        ] {
            if origin(endpoint).is_none() || origin(endpoint) != origin(&issuer) {
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

enum Check {
    NoKey,
    Refused(String),
}

impl Check {
    fn into_error(self) -> OidcError {
        match self {
            Check::NoKey => OidcError::Token("no key of the provider has the token's kid".into()),
            Check::Refused(why) => OidcError::Token(why),
        }
    }
}

fn check(
    client: &Client,
    keys: &CoreJsonWebKeySet,
    token: &IdToken,
    nonce: &str,
) -> Result<Identity, Check> {
    let issuer =
        IssuerUrl::new(client.issuer.clone()).map_err(|e| Check::Refused(e.to_string()))?;
    // `new_public_client`: no shared secret, so an HMAC-signed token (e.g. keyed with the
    // provider's public key) is refused; only RS256 is allowed, so `alg: none` is too.
    // Untrusted extra audiences are refused by default. The clock is set back by the skew
    // so a token that expired a moment ago still counts.
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(client.client_id.clone()),
        issuer,
        keys.clone(),
    )
    .set_time_fn(|| chrono::Utc::now() - chrono::Duration::seconds(SKEW));
    let claims = token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|e| match e {
            openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            ) => Check::NoKey,
            other => Check::Refused(crate::directory::entra::error_chain(&other)),
        })?;
    let extra = claims.additional_claims();
    if let Some(azp) = claims.authorized_party()
        && azp.as_str() != client.client_id
    {
        return Err(Check::Refused(format!(
            "azp is {}, not our client id",
            azp.as_str()
        )));
    }
    let now = chrono::Utc::now().timestamp();
    if let Some(nbf) = extra.nbf
        && nbf > now + SKEW
    {
        return Err(Check::Refused("the token is not valid yet (nbf)".into()));
    }
    let tenant = extra.tid.clone().unwrap_or_default();
    if let Some(expected) = &client.tenant
        && !tenant.eq_ignore_ascii_case(expected)
    {
        return Err(Check::Refused(format!(
            "the token is from tenant {tenant:?}, not the profile's {expected}"
        )));
    }
    let object_id = extra
        .oid
        .clone()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Check::Refused("the token has no oid".into()))?;
    Ok(Identity {
        object_id,
        tenant,
        preferred_username: claims
            .preferred_username()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
    })
}
