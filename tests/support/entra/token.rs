//! Entra's v2.0 token endpoint: client credentials and authorization code, both
//! authenticated by a certificate-signed client assertion that is verified for real; and
//! Entra's OAuth error body, which the sign-in endpoints share.
//!
//! AADSTS codes are the ones Microsoft's error reference documents for each case. Where it
//! names none, the closest documented one is used and the comment says so.

use std::collections::{HashMap, HashSet};

use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use serde_json::{Value, json};

use super::server::{Call, Reply};
use super::{AccessToken, App, Certificate, Shared, State, jose, sign_in};

const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Clock skew allowed on assertion times.
const SKEW: u64 = 60;
/// The longest client assertion accepted: PROTOCOLS.md gives 5–10 minutes.
const MAX_ASSERTION_LIFETIME: u64 = 600;
const ACCESS_TOKEN_LIFETIME: u64 = 3599;
/// Entra's authorization codes live about ten minutes.
const CODE_LIFETIME: u64 = 600;

pub fn read_certificate(pem: &str) -> Certificate {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
        .expect("a PEM certificate to register");
    let (_, certificate) =
        x509_parser::parse_x509_certificate(&pem.contents).expect("an X.509 certificate");
    let key = RsaPublicKey::from_public_key_der(certificate.public_key().raw)
        .expect("an RSA public key in the certificate");
    Certificate {
        key,
        sha1: jose::sha1(&pem.contents),
        sha256: jose::sha256(&pem.contents),
    }
}

/// A refusal in Entra's OAuth error shape.
pub struct Refusal {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

pub fn refuse(
    status: u16,
    error: &'static str,
    code: u32,
    description: impl Into<String>,
) -> Refusal {
    Refusal {
        status,
        error,
        code,
        description: description.into(),
    }
}

pub fn missing(name: &str) -> Refusal {
    refuse(
        400,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// Entra's error body: `error`, an `error_description` that starts with the AADSTS code and
/// ends with trace and correlation ids, and the same facts as separate members.
pub fn error(shared: &Shared, status: u16, error: &str, code: u32, description: &str) -> Reply {
    body_with_trace(
        shared,
        status,
        error,
        &format!("AADSTS{code}: {description}"),
        vec![code],
    )
}

/// An error with a test-chosen text (Fault::Error); the code is read from an `AADSTS…`
/// prefix when there is one.
pub fn raw_error(shared: &Shared, status: u16, error: &str, message: &str) -> Reply {
    let code = message
        .strip_prefix("AADSTS")
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse::<u32>().ok());
    body_with_trace(shared, status, error, message, code.into_iter().collect())
}

fn body_with_trace(
    shared: &Shared,
    status: u16,
    error: &str,
    text: &str,
    codes: Vec<u32>,
) -> Reply {
    let (trace, correlation) = (jose::uuid(), jose::uuid());
    let timestamp = jose::entra_timestamp(jose::now());
    let mut body = json!({
        "error": error,
        "error_description": format!(
            "{text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": codes,
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
    });
    if let Some(code) = codes.first() {
        body["error_uri"] = json!(format!("{}/error?code={code}", shared.base_url));
    }
    Reply::json(status, &body)
        .header("cache-control", "no-store, no-cache")
        .header("pragma", "no-cache")
}

impl Refusal {
    pub fn reply(&self, shared: &Shared) -> Reply {
        error(
            shared,
            self.status,
            self.error,
            self.code,
            &self.description,
        )
    }
}

/// `common` and `organizations` stand for "the user's tenant".
pub fn is_multi_tenant(tenant: &str) -> bool {
    matches!(tenant.to_lowercase().as_str(), "common" | "organizations")
}

pub fn tenant_known(state: &State, tenant: &str) -> bool {
    let tenant = tenant.to_lowercase();
    is_multi_tenant(&tenant) || state.apps.keys().any(|(t, _)| *t == tenant)
}

pub fn unknown_tenant(tenant: &str) -> Refusal {
    refuse(
        400,
        "invalid_request",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and \
             are signing into the correct cloud. Check with your subscription administrator, \
             this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

/// The app registration a request names, as its key in `State::apps`.
pub fn find_app(state: &State, tenant: &str, client_id: &str) -> Result<(String, String), Refusal> {
    let found = state
        .apps
        .keys()
        .find(|(t, c)| c == client_id && (is_multi_tenant(tenant) || *t == tenant.to_lowercase()));
    found.cloned().ok_or_else(|| {
        refuse(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You may \
                 have sent your authentication request to the wrong tenant."
            ),
        )
    })
}

/// POST `/{tenant}/oauth2/v2.0/token`.
pub fn token(shared: &Shared, call: &Call, tenant: &str, truncate: bool) -> Reply {
    if call.method != "POST" {
        let text = format!(
            "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
            call.method
        );
        return error(shared, 400, "invalid_request", 900561, &text);
    }
    let form = call.form();
    let mut state = shared.state();
    let answer = if !tenant_known(&state, tenant) {
        Err(unknown_tenant(tenant))
    } else {
        let token_url = format!("{}/{tenant}/oauth2/v2.0/token", shared.base_url);
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => client_credentials(&mut state, tenant, &token_url, &form),
            Some("authorization_code") => {
                authorization_code(&mut state, &shared.base_url, tenant, &token_url, &form)
            }
            None => Err(missing("grant_type")),
            Some(other) => Err(refuse(
                400,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            )),
        }
    };
    match answer {
        Ok(_) if truncate => Reply::json(200, &json!({"token_type": "Bearer", "expires_in": 3599})),
        Ok(body) => Reply::json(200, &body)
            .header("cache-control", "no-store, no-cache")
            .header("pragma", "no-cache"),
        Err(refusal) => refusal.reply(shared),
    }
}

/// `http://host:port` of a URL.
fn origin(url: &str) -> String {
    url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/")
}

fn client_credentials(
    state: &mut State,
    tenant: &str,
    token_url: &str,
    form: &HashMap<String, String>,
) -> Result<Value, Refusal> {
    let client_id = form.get("client_id").ok_or_else(|| missing("client_id"))?;
    let app = find_app(state, tenant, client_id)?;
    match form.get("scope") {
        None => return Err(missing("scope")),
        // Graph's own resource, or this fake standing in for it (a profile's Graph URL).
        Some(scope)
            if scope != GRAPH_DEFAULT_SCOPE
                && *scope != format!("{}/.default", origin(token_url)) =>
        {
            return Err(refuse(
                400,
                "invalid_scope",
                70011,
                format!(
                    "The provided request must include a 'scope' input parameter. The provided \
                     value for the input parameter 'scope' is not valid. The scope {scope} is \
                     not valid."
                ),
            ));
        }
        Some(_) => {}
    }
    authenticate(state, &app, token_url, form)?;
    let access_token = issue_access_token(state, &app);
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "ext_expires_in": ACCESS_TOKEN_LIFETIME,
        "access_token": access_token,
    }))
}

fn issue_access_token(state: &mut State, app: &(String, String)) -> String {
    let token = jose::random_token(48);
    state.access_tokens.insert(
        token.clone(),
        AccessToken {
            tenant: app.0.clone(),
            client_id: app.1.clone(),
            expires_at: jose::now() + ACCESS_TOKEN_LIFETIME,
        },
    );
    token
}

/// Checks the client's certificate assertion and spends its `jti`.
fn authenticate(
    state: &mut State,
    app: &(String, String),
    token_url: &str,
    form: &HashMap<String, String>,
) -> Result<(), Refusal> {
    if form.contains_key("client_secret") {
        return Err(refuse(
            401,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app \
                 '{}'.",
                app.1
            ),
        ));
    }
    let Some(assertion) = form.get("client_assertion") else {
        return Err(refuse(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        ));
    };
    match form.get("client_assertion_type") {
        None => return Err(missing("client_assertion_type")),
        // No dedicated code is documented for a wrong assertion type; 50027 (invalid JWT)
        // is the nearest.
        Some(kind) if kind != JWT_BEARER => {
            return Err(refuse(
                400,
                "invalid_request",
                50027,
                format!(
                    "JWT token is invalid or malformed: client_assertion_type '{kind}' is not '{JWT_BEARER}'."
                ),
            ));
        }
        Some(_) => {}
    }
    let registration = &state.apps[app];
    let jti = verify_assertion(registration, token_url, assertion, &state.used_jtis)?;
    state.used_jtis.insert(jti);
    Ok(())
}

fn verify_assertion(
    app: &App,
    token_url: &str,
    assertion: &str,
    used_jtis: &HashSet<String>,
) -> Result<String, Refusal> {
    let malformed = || {
        refuse(
            400,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    };
    let jwt = jose::parse_jwt(assertion).ok_or_else(malformed)?;
    let alg = jwt.header.get("alg").and_then(Value::as_str).unwrap_or("");
    let thumbprint_member = match alg {
        "PS256" => "x5t#S256",
        "RS256" => "x5t",
        other => {
            return Err(refuse(
                400,
                "invalid_request",
                50027,
                format!(
                    "JWT token is invalid or malformed: '{other}' is not a supported signing algorithm (PS256, RS256)."
                ),
            ));
        }
    };
    let thumbprint = jwt
        .header
        .get(thumbprint_member)
        .and_then(Value::as_str)
        .and_then(jose::unb64)
        .unwrap_or_default();
    let shown: String = thumbprint.iter().map(|b| format!("{b:02X}")).collect();
    let certificate = app.certificates.iter().find(|c| {
        let registered = if alg == "PS256" { &c.sha256 } else { &c.sha1 };
        !thumbprint.is_empty() && *registered == thumbprint
    });
    let invalid_signature = |reason: &str| {
        refuse(
            401,
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint \
                 of key used by client: '{shown}', Please visit the Azure Portal, Graph Explorer \
                 or directly use MS Graph to see configured keys for app Id '{}'.]",
                app.client_id
            ),
        )
    };
    let certificate = certificate.ok_or_else(|| invalid_signature("The key was not found."))?;
    let input = jwt.signing_input.as_bytes();
    let verified = if alg == "PS256" {
        jose::verify_ps256(&certificate.key, input, &jwt.signature)
    } else {
        jose::verify_rs256(&certificate.key, input, &jwt.signature)
    };
    if !verified {
        return Err(invalid_signature(
            "The provided signature value did not match the expected signature value.",
        ));
    }
    let text = |name: &str| jwt.claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(app.client_id.as_str()) || text("sub") != Some(app.client_id.as_str()) {
        return Err(refuse(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. \
             Review the documentation at https://aka.ms/certCredentials .",
        ));
    }
    if text("aud") != Some(token_url) {
        return Err(refuse(
            401,
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the \
             documentation at https://aka.ms/certCredentials .",
        ));
    }
    let required_time = |name: &str| {
        let value = jwt.claims.get(name);
        value
            .and_then(Value::as_u64)
            .or_else(|| value.and_then(Value::as_f64).map(|f| f as u64))
            .ok_or_else(|| missing_field(name))
    };
    let (exp, nbf) = (required_time("exp")?, required_time("nbf")?);
    let now = jose::now();
    if exp + SKEW <= now || nbf > now + SKEW || exp > now + MAX_ASSERTION_LIFETIME + SKEW {
        return Err(refuse(
            401,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, \
                 assertion valid from {}, expiry time of assertion {}. Review the documentation \
                 at https://aka.ms/certCredentials .",
                jose::entra_timestamp(now),
                jose::entra_timestamp(nbf),
                jose::entra_timestamp(exp)
            ),
        ));
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| missing_field("jti"))?;
    if used_jtis.contains(jti) {
        // The reference documents no replay code; 50013 (InvalidAssertion, "assertion is
        // invalid because of various reasons") is the nearest.
        return Err(refuse(
            401,
            "invalid_client",
            50013,
            format!(
                "Assertion is invalid: the client assertion with jti '{jti}' was already used."
            ),
        ));
    }
    Ok(jti.to_owned())
}

fn missing_field(name: &str) -> Refusal {
    refuse(
        400,
        "invalid_request",
        90014,
        format!(
            "The required field '{name}' is missing from the credential. Ensure that you have \
             all the necessary parameters for the login request."
        ),
    )
}

fn authorization_code(
    state: &mut State,
    base_url: &str,
    tenant: &str,
    token_url: &str,
    form: &HashMap<String, String>,
) -> Result<Value, Refusal> {
    let client_id = form.get("client_id").ok_or_else(|| missing("client_id"))?;
    let app = find_app(state, tenant, client_id)?;
    authenticate(state, &app, token_url, form)?;
    let code = form.get("code").ok_or_else(|| missing("code"))?;
    let invalid_grant = |code: u32, text: &str| refuse(400, "invalid_grant", code, text);
    let Some(stored) = state.codes.get_mut(code) else {
        return Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed.",
        ));
    };
    if stored.redeemed {
        return Err(invalid_grant(
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid \
             code or use an existing refresh token.",
        ));
    }
    if stored.client_id != *client_id {
        return Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed: the code was issued to another application.",
        ));
    }
    if jose::now() > stored.issued_at + CODE_LIFETIME {
        return Err(invalid_grant(
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. \
             Send a new interactive authorization request for this user and resource.",
        ));
    }
    if form.get("redirect_uri") != Some(&stored.redirect_uri) {
        return Err(invalid_grant(
            500112,
            "The reply address does not match the reply address provided when requesting the \
             authorization code.",
        ));
    }
    match form.get("code_verifier") {
        None => {
            return Err(invalid_grant(
                50148,
                "The code_verifier is missing, but the authorization request carried a \
                 code_challenge (PKCE).",
            ));
        }
        Some(verifier)
            if jose::b64(&jose::sha256(verifier.as_bytes())) != stored.code_challenge =>
        {
            return Err(invalid_grant(
                50148,
                "The code_verifier does not match the code_challenge supplied in the \
                 authorization request for PKCE.",
            ));
        }
        Some(_) => {}
    }
    stored.redeemed = true;
    let (identity, nonce) = (stored.identity.clone(), stored.nonce.clone());
    let access_token = issue_access_token(state, &app);
    let id_token = sign_in::id_token(state, base_url, client_id, &identity, &nonce);
    Ok(json!({
        "token_type": "Bearer",
        "scope": "openid profile email",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "ext_expires_in": ACCESS_TOKEN_LIFETIME,
        "access_token": access_token,
        "id_token": id_token,
    }))
}
