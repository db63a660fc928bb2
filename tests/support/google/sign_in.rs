//! Google's sign-in side: the authorize endpoint (no login page: it signs in the identity
//! the test chose), discovery, JWKS, and the ID tokens the token endpoint hands out, which
//! tests can tamper with.
//!
//! Problems with the client or its redirect URI, and malformed requests, are shown on
//! Google's error page ("Error 400: redirect_uri_mismatch"); only the user's answer
//! (`access_denied`, or what `deny_next_login` chose) goes back to the redirect URI.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::server::{Call, Reply};
use super::{AuthCode, DirectoryUser, Shared, State, jose};

/// The identity the fake signs in at the authorize endpoint (it has no login page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoogleClaims {
    /// At Google, the same string as the person's Directory user `id`.
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    /// The Workspace domain; `None` for a consumer account (no `hd` claim at all).
    pub hd: Option<String>,
    /// `given_name` and `family_name` are its first word and the rest.
    pub name: String,
}

impl GoogleClaims {
    /// The Workspace user as Google signs them in: `sub` = the Directory `id`, a verified
    /// primary email, `hd` = its domain. (For a user of a secondary domain Google puts the
    /// primary domain in `hd`; build the claims by hand for that.)
    pub fn of(user: &DirectoryUser) -> GoogleClaims {
        let domain = user.primary_email.rsplit_once('@').map(|(_, d)| d);
        GoogleClaims {
            sub: user.id.clone(),
            email: user.primary_email.clone(),
            email_verified: true,
            hd: domain.map(str::to_lowercase),
            name: user.full_name.clone(),
        }
    }
}

/// A change to the next ID token only, for tests of what a relying party must refuse (or,
/// for `IssuerWithoutScheme`, accept). Several calls before one sign-in all apply to it.
#[derive(Clone, Debug)]
pub enum Tamper {
    Issuer(String),
    /// `iss` without `http://`, as Google also writes `accounts.google.com`.
    IssuerWithoutScheme,
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
    /// Signed by the real key, then one signature byte flipped.
    BadSignature,
    /// `iat` two hours and `exp` one hour in the past.
    Expired,
    Nonce(String),
    /// Sets any claim; `Value::Null` removes it.
    Claim(String, Value),
}

const ID_TOKEN_LIFETIME: u64 = 3600;
const EMAIL: &str = "https://www.googleapis.com/auth/userinfo.email";
const PROFILE: &str = "https://www.googleapis.com/auth/userinfo.profile";

/// Google's error page for an authorization request it will not send back.
pub fn error_page(status: u16, error: &str, description: &str) -> Reply {
    Reply::html(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error {status}: \
             {error}</title></head><body><h1>Access blocked: Authorization Error</h1><p>{}</p>\
             <p><b>Error {status}: {error}</b></p></body></html>",
            escape(description)
        ),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The scopes granted for a request's, as the token endpoint names them: `email` and
/// `profile` become their URLs.
fn granted(requested: &[&str]) -> Vec<String> {
    let mut scopes = vec!["openid".to_owned()];
    for scope in requested {
        let long = match *scope {
            "email" | EMAIL => EMAIL,
            "profile" | PROFILE => PROFILE,
            _ => continue,
        };
        if !scopes.iter().any(|s| s == long) {
            scopes.push(long.to_owned());
        }
    }
    scopes
}

/// GET `/o/oauth2/v2/auth`.
pub fn authorize(shared: &Shared, call: &Call) -> Reply {
    let params: HashMap<String, String> = call.query.iter().cloned().collect();
    let mut state = shared.state();
    state.last_authorize = Some(params.clone());
    let page = |status: u16, error: &str, description: &str| error_page(status, error, description);
    let invalid = |description: &str| page(400, "invalid_request", description);
    let Some(client_id) = params.get("client_id") else {
        return invalid("Missing required parameter: client_id");
    };
    let Some(client) = state.clients.get(client_id) else {
        return page(401, "invalid_client", "The OAuth client was not found.");
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return invalid("Missing required parameter: redirect_uri");
    };
    if !client.redirect_uris.contains(redirect_uri) {
        let text = format!(
            "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 \
             policy. If you're the app developer, register the redirect URI in the Google \
             Cloud Console. Request details: redirect_uri={redirect_uri}"
        );
        return page(400, "redirect_uri_mismatch", &text);
    }
    match params.get("response_type").map(String::as_str) {
        None => return invalid("Missing required parameter: response_type"),
        Some("code") => {}
        // Google has the implicit and hybrid flows; the fake serves the code flow only.
        Some(other) => {
            let text = format!("The Google fake serves response_type=code only, not {other}.");
            return page(400, "unsupported_response_type", &text);
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return invalid("The Google fake answers with response_mode=query only.");
    }
    let Some(scope) = params.get("scope").filter(|s| !s.trim().is_empty()) else {
        return invalid("Missing required parameter: scope");
    };
    let requested: Vec<&str> = scope.split_whitespace().collect();
    let unknown: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|s| !matches!(*s, "openid" | "email" | "profile" | EMAIL | PROFILE))
        .collect();
    if !unknown.is_empty() {
        let text = format!(
            "Some requested scopes were invalid. {{invalid=[{}]}}",
            unknown.join(", ")
        );
        return page(400, "invalid_scope", &text);
    }
    if !requested.contains(&"openid") {
        return page(
            400,
            "invalid_scope",
            "The Google fake signs in with OpenID Connect: ask for openid.",
        );
    }
    // Google takes PKCE as optional, and state and nonce too for the code flow; Roster must
    // always send all three, so the fake refuses a request without them.
    let Some(challenge) = params.get("code_challenge").filter(|c| !c.is_empty()) else {
        return invalid("The Google fake requires PKCE: code_challenge is missing.");
    };
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return invalid("The Google fake requires code_challenge_method=S256.");
    }
    let (Some(client_state), Some(nonce)) = (params.get("state"), params.get("nonce")) else {
        return invalid("The Google fake requires both state and nonce.");
    };
    let back = |answer: &[(&str, &str)]| {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(answer.iter())
            .finish();
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        Reply::redirect(&format!("{redirect_uri}{separator}{encoded}"))
    };
    if let Some((error, description)) = state.deny_next_login.take() {
        let mut answer = vec![("error", error.as_str())];
        if !description.is_empty() {
            answer.push(("error_description", description.as_str()));
        }
        answer.push(("state", client_state.as_str()));
        return back(&answer);
    }
    let Some(claims) = state.signed_in.clone() else {
        return back(&[("error", "access_denied"), ("state", client_state)]);
    };
    // As Google writes it back: what was asked for, then the URLs `email` and `profile` stand for.
    let mut echoed: Vec<String> = requested.iter().map(|s| s.to_string()).collect();
    let implied: Vec<String> = granted(&requested)
        .into_iter()
        .filter(|s| !echoed.contains(s))
        .collect();
    echoed.extend(implied);
    let code = format!("4/0A{}", jose::random_token(54));
    let stored = AuthCode {
        client_id: client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        code_challenge: challenge.clone(),
        nonce: nonce.clone(),
        claims: claims.clone(),
        scope: granted(&requested),
        issued_at: jose::now(),
        redeemed: false,
    };
    state.codes.insert(code.clone(), stored);
    let echoed = echoed.join(" ");
    let mut answer = vec![
        ("state", client_state.as_str()),
        ("code", code.as_str()),
        ("scope", echoed.as_str()),
        ("authuser", "0"),
    ];
    if let Some(hd) = &claims.hd {
        answer.push(("hd", hd.as_str()));
    }
    answer.push(("prompt", "none"));
    back(&answer)
}

/// The ID token for `claims`, with the pending tampering.
pub fn id_token(
    state: &mut State,
    base_url: &str,
    client_id: &str,
    claims: &GoogleClaims,
    nonce: &str,
    access_token: &str,
) -> String {
    enum Signing {
        Rs256,
        Unsigned,
        Hmac(Vec<u8>),
        Broken,
    }
    let key = jose::signing_key(state.signer);
    let now = jose::now();
    let (given, family) = claims.name.split_once(' ').unwrap_or((&claims.name, ""));
    let at_hash = jose::b64(&jose::sha256(access_token.as_bytes())[..16]);
    let mut body = json!({
        "iss": base_url,
        "azp": client_id,
        "aud": client_id,
        "sub": claims.sub,
        "email": claims.email,
        "email_verified": claims.email_verified,
        "at_hash": at_hash,
        "nonce": nonce,
        "name": claims.name,
        "given_name": given,
        "iat": now,
        "exp": now + ID_TOKEN_LIFETIME,
    });
    if !family.is_empty() {
        body["family_name"] = json!(family);
    }
    if let Some(hd) = &claims.hd {
        body["hd"] = json!(hd);
    }
    let mut header = json!({"alg": "RS256", "kid": key.hex_fingerprint(), "typ": "JWT"});
    let mut signing = Signing::Rs256;
    for tamper in std::mem::take(&mut state.tampers) {
        match tamper {
            Tamper::Issuer(iss) => body["iss"] = json!(iss),
            Tamper::IssuerWithoutScheme => {
                let bare = base_url.trim_start_matches("http://");
                body["iss"] = json!(bare);
            }
            Tamper::ExtraAudience(extra) => body["aud"] = json!([client_id, extra]),
            Tamper::Audience(aud) => body["aud"] = json!(aud),
            Tamper::Azp(azp) => body["azp"] = json!(azp),
            Tamper::UnknownKid => header["kid"] = json!(hex_random()),
            Tamper::AlgNone => {
                header["alg"] = json!("none");
                signing = Signing::Unsigned;
            }
            Tamper::HmacWithPublicKey => {
                header["alg"] = json!("HS256");
                signing = Signing::Hmac(key.public_pem.as_bytes().to_vec());
            }
            Tamper::BadSignature => signing = Signing::Broken,
            Tamper::Expired => {
                body["iat"] = json!(now - 7200);
                body["exp"] = json!(now - 3600);
            }
            Tamper::Nonce(other) => body["nonce"] = json!(other),
            Tamper::Claim(name, Value::Null) => {
                if let Some(map) = body.as_object_mut() {
                    map.remove(&name);
                }
            }
            Tamper::Claim(name, value) => body[name.as_str()] = value,
        }
    }
    let input = jose::signing_input(&header, &body);
    let signature = match signing {
        Signing::Rs256 => key.sign_rs256(input.as_bytes()),
        Signing::Unsigned => Vec::new(),
        Signing::Hmac(secret) => jose::hs256(&secret, input.as_bytes()),
        Signing::Broken => {
            let mut signature = key.sign_rs256(input.as_bytes());
            signature[10] ^= 0x01;
            signature
        }
    };
    format!("{input}.{}", jose::b64(&signature))
}

/// 40 hex digits, the shape of Google's kids.
fn hex_random() -> String {
    let bytes = jose::unb64(&jose::random_token(20)).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// GET `/.well-known/openid-configuration`, Google's document with this fake's URLs; the
/// endpoints the fake does not serve (userinfo, revocation, device codes) are left out.
pub fn discovery(shared: &Shared) -> Reply {
    let base = &shared.base_url;
    let document = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/oauth2/v3/certs"),
        "response_types_supported": [
            "code", "token", "id_token", "code token", "code id_token", "token id_token",
            "code token id_token", "none"
        ],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": [
            "aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss",
            "name", "picture", "sub"
        ],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ],
    });
    Reply::json(200, &document).header("cache-control", "public, max-age=3600")
}

/// GET `/oauth2/v3/certs`: the published keys with `alg` and `use`, as Google's are.
pub fn jwks(shared: &Shared) -> Reply {
    let published = shared.state().published.clone();
    let keys: Vec<Value> = published
        .iter()
        .map(|&index| {
            let key = jose::signing_key(index);
            key.rs256_jwk(&key.hex_fingerprint())
        })
        .collect();
    Reply::json(200, &json!({ "keys": keys })).header(
        "cache-control",
        "public, max-age=21600, must-revalidate, no-transform",
    )
}
