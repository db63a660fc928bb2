//! Google's token endpoint: the JWT-bearer grant of a service account (its assertion
//! verified with the account's key, then domain-wide delegation and the impersonated user
//! checked), the authorization code grant of a web client, OAuth's error body, and the
//! service-account key file the console downloads.
//!
//! Error texts are those of "Using OAuth 2.0 for Server to Server Applications" (error
//! codes) and of the code exchange as Google answers it; where Google documents none, the
//! comment says what was chosen.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{Value, json};

use super::server::{Call, Reply};
use super::{AccessToken, Account, ServiceAccount, Shared, State, jose, sign_in};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ACCESS_TOKEN_LIFETIME: u64 = 3599;
/// The longest assertion Google accepts: an hour from `iat` to `exp`.
const MAX_ASSERTION_LIFETIME: u64 = 3600;
/// Clock skew allowed on an `iat` in the future.
const SKEW: u64 = 300;
/// Google's authorization codes are short-lived; ten minutes here.
const CODE_LIFETIME: u64 = 600;
const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a \
     reasonable timeframe. Check your iat and exp values in the JWT claim.";
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this \
     method, or client not authorized for any of the scopes requested.";

/// A refusal: OAuth's `error` and `error_description`, and the HTTP status.
pub struct Refusal(u16, &'static str, String);

fn refuse(status: u16, error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal(status, error, description.into())
}

fn missing(name: &str) -> Refusal {
    refuse(
        400,
        "invalid_request",
        format!("Missing required parameter: {name}"),
    )
}

fn bad_signature() -> Refusal {
    refuse(400, "invalid_grant", "Invalid JWT Signature.")
}

/// OAuth's error body, with the headers Google's token endpoint sends.
pub fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    no_store(Reply::json(
        status,
        &json!({"error": error, "error_description": description}),
    ))
}

fn no_store(reply: Reply) -> Reply {
    reply
        .header(
            "cache-control",
            "no-cache, no-store, max-age=0, must-revalidate",
        )
        .header("pragma", "no-cache")
}

/// POST `/token`.
pub fn token(shared: &Shared, call: &Call, truncate: bool) -> Reply {
    if call.method != "POST" {
        // Google documents no answer for this; OAuth's invalid_request is the nearest.
        return oauth_error(400, "invalid_request", "Invalid request method.");
    }
    let form = call.form();
    let token_url = format!("{}/token", shared.base_url);
    let mut state = shared.state();
    let answer = match form.get("grant_type").map(String::as_str) {
        Some(JWT_BEARER) => jwt_bearer(&mut state, &token_url, &form),
        Some("authorization_code") => authorization_code(&mut state, &shared.base_url, call, &form),
        None => Err(missing("grant_type")),
        Some(other) => Err(refuse(
            400,
            "unsupported_grant_type",
            format!("Invalid grant_type: {other}"),
        )),
    };
    match answer {
        Ok(_) if truncate => Reply::json(200, &json!({"expires_in": 3599, "token_type": "Bearer"})),
        Ok(body) => no_store(Reply::json(200, &body)),
        Err(Refusal(status, error, description)) => oauth_error(status, error, &description),
    }
}

fn issue(state: &mut State, client_id: &str, user: Option<String>, scopes: Vec<String>) -> String {
    let token = format!("ya29.{}", jose::random_token(96));
    let expires_at = jose::now() + ACCESS_TOKEN_LIFETIME;
    let issued = AccessToken {
        client_id: client_id.into(),
        user,
        scopes,
        expires_at,
    };
    state.access_tokens.insert(token.clone(), issued);
    token
}

fn jwt_bearer(
    state: &mut State,
    token_url: &str,
    form: &HashMap<String, String>,
) -> Result<Value, Refusal> {
    let assertion = form.get("assertion").ok_or_else(|| missing("assertion"))?;
    // Google documents no text for an assertion that is not a JWS at all.
    let jwt = jose::parse_jwt(assertion)
        .ok_or_else(|| refuse(400, "invalid_grant", "Invalid JWT: malformed assertion."))?;
    let text = |name: &str| jwt.claims.get(name).and_then(Value::as_str);
    let Some(account) = state
        .accounts
        .iter()
        .find(|a| Some(a.client_email.as_str()) == text("iss"))
    else {
        return Err(refuse(
            401,
            "invalid_client",
            "The OAuth client was not found.",
        ));
    };
    verify_signature(account, &jwt)?;
    if text("aud") != Some(token_url) {
        return Err(refuse(
            400,
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
        ));
    }
    let time = |name: &str| jwt.claims.get(name).and_then(Value::as_u64);
    let now = jose::now();
    match (time("iat"), time("exp")) {
        (Some(iat), Some(exp))
            if exp > now
                && iat <= now + SKEW
                && exp >= iat
                && exp - iat <= MAX_ASSERTION_LIFETIME => {}
        _ => return Err(refuse(400, "invalid_grant", SHORT_LIVED)),
    }
    let scopes: Vec<String> = text("scope")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(refuse(
            400,
            "invalid_scope",
            "Empty or missing scope not allowed.",
        ));
    }
    let client_id = account.client_id.clone();
    // Without `sub` the token is the service account's own, which no Directory call accepts
    // (it is no administrator); delegation is only consulted for a `sub`.
    let user = match text("sub") {
        None => None,
        Some(sub) => {
            let Some(i) = state.directory.find_user(sub) else {
                return Err(refuse(400, "invalid_grant", "Invalid email or User ID"));
            };
            let delegated = state.delegation.get(&client_id);
            let granted = |s: &String| delegated.is_some_and(|d| d.contains(s));
            if !scopes.iter().all(granted) {
                return Err(refuse(401, "unauthorized_client", UNAUTHORIZED_CLIENT));
            }
            Some(state.directory.users[i].id.clone())
        }
    };
    let access_token = issue(state, &client_id, user, scopes);
    Ok(json!({
        "access_token": access_token,
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "token_type": "Bearer",
    }))
}

/// RS256 by the account's key; a `kid` naming another key fails as Google fails a deleted
/// key: "Invalid JWT Signature."
fn verify_signature(account: &Account, jwt: &jose::Jwt) -> Result<(), Refusal> {
    if jwt.header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(bad_signature());
    }
    if let Some(kid) = jwt.header.get("kid")
        && kid.as_str() != Some(account.private_key_id.as_str())
    {
        return Err(bad_signature());
    }
    let input = jwt.signing_input.as_bytes();
    if !jose::verify_rs256(&account.key.public_key(), input, &jwt.signature) {
        return Err(bad_signature());
    }
    Ok(())
}

/// The client's id and secret: HTTP Basic (each form-urlencoded first, RFC 6749 §2.3.1) or
/// the form's `client_id` and `client_secret`.
fn client_credentials(
    call: &Call,
    form: &HashMap<String, String>,
) -> Result<(String, Option<String>), Refusal> {
    let basic = call.header("authorization").and_then(|h| {
        h.split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, value)| value.trim().to_owned())
    });
    let Some(encoded) = basic else {
        let client_id = form.get("client_id").ok_or_else(|| {
            refuse(
                400,
                "invalid_request",
                "Could not determine client ID from request.",
            )
        })?;
        return Ok((client_id.clone(), form.get("client_secret").cloned()));
    };
    let unauthorized = || refuse(401, "invalid_client", "Unauthorized");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(unauthorized)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(unauthorized)?;
    let unescape = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let id = unescape(id);
    if form.get("client_id").is_some_and(|f| *f != id) {
        return Err(unauthorized());
    }
    Ok((id, Some(unescape(secret))))
}

fn authorization_code(
    state: &mut State,
    base_url: &str,
    call: &Call,
    form: &HashMap<String, String>,
) -> Result<Value, Refusal> {
    let (client_id, secret) = client_credentials(call, form)?;
    let Some(client) = state.clients.get(&client_id) else {
        return Err(refuse(
            401,
            "invalid_client",
            "The OAuth client was not found.",
        ));
    };
    match secret {
        None => return Err(refuse(400, "invalid_request", "client_secret is missing.")),
        Some(secret) if secret != client.secret => {
            return Err(refuse(401, "invalid_client", "Unauthorized"));
        }
        Some(_) => {}
    }
    let code = form.get("code").ok_or_else(|| missing("code"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| refuse(400, "invalid_request", "Missing parameter: redirect_uri"))?;
    let Some(stored) = state.codes.get_mut(code) else {
        return Err(refuse(400, "invalid_grant", "Malformed auth code."));
    };
    // A spent or stale code, or one issued to another client, is only "Bad Request".
    if stored.redeemed
        || stored.client_id != client_id
        || jose::now() > stored.issued_at + CODE_LIFETIME
    {
        return Err(refuse(400, "invalid_grant", "Bad Request"));
    }
    if *redirect_uri != stored.redirect_uri {
        return Err(refuse(400, "redirect_uri_mismatch", "Bad Request"));
    }
    match form.get("code_verifier") {
        None => return Err(refuse(400, "invalid_grant", "Missing code verifier.")),
        Some(verifier)
            if jose::b64(&jose::sha256(verifier.as_bytes())) != stored.code_challenge =>
        {
            return Err(refuse(400, "invalid_grant", "Invalid code verifier."));
        }
        Some(_) => {}
    }
    stored.redeemed = true;
    let (claims, nonce, scope) = (
        stored.claims.clone(),
        stored.nonce.clone(),
        stored.scope.clone(),
    );
    let access_token = issue(state, &client_id, Some(claims.sub.clone()), scope.clone());
    let id_token = sign_in::id_token(state, base_url, &client_id, &claims, &nonce, &access_token);
    Ok(json!({
        "access_token": access_token,
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "scope": scope.join(" "),
        "token_type": "Bearer",
        "id_token": id_token,
    }))
}

/// The account's key file, member for member and in the order the console writes it.
pub fn service_account(client_email: &str, key: &jose::SigningKey) -> ServiceAccount {
    let digest = jose::sha256(client_email.as_bytes());
    let number = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let client_id = format!("1{number:020}");
    let private_key_id = key.hex_fingerprint();
    let project_id = client_email
        .split_once('@')
        .and_then(|(_, domain)| domain.split_once(".iam.gserviceaccount.com"))
        .map_or("roster-fake", |(project, _)| project);
    let encoded_email: String =
        url::form_urlencoded::byte_serialize(client_email.as_bytes()).collect();
    let members = [
        ("type", "service_account".to_owned()),
        ("project_id", project_id.to_owned()),
        ("private_key_id", private_key_id.clone()),
        ("private_key", key.private_pkcs8_pem()),
        ("client_email", client_email.to_owned()),
        ("client_id", client_id.clone()),
        (
            "auth_uri",
            "https://accounts.google.com/o/oauth2/auth".to_owned(),
        ),
        // The real file's value: Roster posts to the token URL it is configured with.
        (
            "token_uri",
            "https://oauth2.googleapis.com/token".to_owned(),
        ),
        (
            "auth_provider_x509_cert_url",
            "https://www.googleapis.com/oauth2/v1/certs".to_owned(),
        ),
        (
            "client_x509_cert_url",
            format!("https://www.googleapis.com/robot/v1/metadata/x509/{encoded_email}"),
        ),
        ("universe_domain", "googleapis.com".to_owned()),
    ];
    let lines: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("  \"{name}\": {}", Value::from(value.as_str())))
        .collect();
    ServiceAccount {
        key_json: format!("{{\n{}\n}}\n", lines.join(",\n")),
        client_email: client_email.to_owned(),
        client_id,
        private_key_id,
    }
}
