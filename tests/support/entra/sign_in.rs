//! Entra's sign-in side: the authorize endpoint (no login page: it signs in the identity
//! the test chose), discovery, JWKS, and the ID tokens the token endpoint hands out, which
//! tests can tamper with.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::server::{Call, Reply};
use super::token::{
    Refusal, error, find_app, is_multi_tenant, missing, refuse, tenant_known, unknown_tenant,
};
use super::{AuthCode, IdClaims, Shared, State, Tamper, jose};

const ID_TOKEN_LIFETIME: u64 = 3600;

/// The v2.0 ID token for `identity` (whose `tid` is resolved), with the pending tampering.
pub fn id_token(
    state: &mut State,
    base_url: &str,
    client_id: &str,
    identity: &IdClaims,
    nonce: &str,
) -> String {
    enum Signing {
        Rs256,
        Unsigned,
        Hmac(Vec<u8>),
        Broken,
    }
    let key = jose::signing_key(state.signer);
    let tid = identity.tid.clone().unwrap_or_default();
    let now = jose::now();
    // Entra's `sub` is pairwise, per application: never the oid.
    let sub = jose::b64(&jose::sha256(
        format!("{client_id}:{}", identity.oid).as_bytes(),
    ));
    let mut claims = json!({
        "aud": client_id,
        "iss": format!("{base_url}/{tid}/v2.0"),
        "iat": now,
        "nbf": now,
        "exp": now + ID_TOKEN_LIFETIME,
        "name": identity.name,
        "nonce": nonce,
        "oid": identity.oid,
        "preferred_username": identity.preferred_username,
        "sub": sub,
        "tid": tid,
        "uti": jose::random_token(16),
        "ver": "2.0",
    });
    if let Some(email) = &identity.email {
        claims["email"] = json!(email);
    }
    let mut header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
    let mut signing = Signing::Rs256;
    for tamper in std::mem::take(&mut state.tampers) {
        match tamper {
            Tamper::Issuer(iss) => claims["iss"] = json!(iss),
            Tamper::ExtraAudience(extra) => claims["aud"] = json!([client_id, extra]),
            Tamper::Audience(aud) => claims["aud"] = json!(aud),
            Tamper::Azp(azp) => claims["azp"] = json!(azp),
            Tamper::UnknownKid => {
                header["kid"] = json!(format!("unknown-{}", jose::random_token(8)))
            }
            Tamper::AlgNone => {
                header["alg"] = json!("none");
                signing = Signing::Unsigned;
            }
            Tamper::HmacWithPublicKey => {
                header["alg"] = json!("HS256");
                signing = Signing::Hmac(key.public_pem.as_bytes().to_vec());
            }
            Tamper::HmacWithJwksModulus => {
                header["alg"] = json!("HS256");
                signing = Signing::Hmac(key.modulus.clone());
            }
            Tamper::BadSignature => signing = Signing::Broken,
            Tamper::Expired => {
                claims["iat"] = json!(now - 7200);
                claims["nbf"] = json!(now - 7200);
                claims["exp"] = json!(now - 3600);
            }
            Tamper::NotYetValid => {
                claims["nbf"] = json!(now + 3600);
                claims["exp"] = json!(now + 3600 + ID_TOKEN_LIFETIME);
            }
            Tamper::Tenant(other) => claims["tid"] = json!(other),
            Tamper::Nonce(other) => claims["nonce"] = json!(other),
            Tamper::Claim(name, Value::Null) => {
                if let Some(map) = claims.as_object_mut() {
                    map.remove(&name);
                }
            }
            Tamper::Claim(name, value) => claims[name.as_str()] = value,
        }
    }
    let input = jose::signing_input(&header, &claims);
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

/// GET `/{tenant}/oauth2/v2.0/authorize`. Problems with the client or its redirect URI are
/// shown on Entra's error page; every later one goes back to the redirect URI.
pub fn authorize(shared: &Shared, call: &Call, tenant: &str) -> Reply {
    // The login page posts the request's parameters back with the typed credentials.
    let mut params: HashMap<String, String> = call.query.iter().cloned().collect();
    let posted = call.method == "POST";
    if posted {
        params.extend(call.form());
    }
    let mut state = shared.state();
    state.last_authorize = Some(params.clone());
    if !tenant_known(&state, tenant) {
        return error_page(&unknown_tenant(tenant));
    }
    let Some(client_id) = params.get("client_id") else {
        return error_page(&missing("client_id"));
    };
    let app_key = match find_app(&state, tenant, client_id) {
        Ok(key) => key,
        Err(refusal) => return error_page(&refusal),
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return error_page(&missing("redirect_uri"));
    };
    let app = &state.apps[&app_key];
    if !app.redirect_uris.is_empty() && !app.redirect_uris.contains(redirect_uri) {
        return error_page(&refuse(
            400,
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the \
                 redirect URIs configured for the application '{client_id}'. Make sure the \
                 redirect URI sent in the request matches one added to your application in the \
                 Azure portal."
            ),
        ));
    }
    let app_tenant = app.tenant.clone();
    let mode = params.get("response_mode").map_or("query", String::as_str);
    let client_state = params.get("state");
    let back = |error: &str, description: &str| {
        let mut answer = vec![("error", error), ("error_description", description)];
        if let Some(s) = client_state {
            answer.push(("state", s.as_str()));
        }
        respond(redirect_uri, mode, &answer)
    };
    let required = |name: &str| {
        format!("AADSTS900144: The request body must contain the following parameter: '{name}'.")
    };
    if !matches!(mode, "query" | "fragment" | "form_post") {
        let text = format!("AADSTS900144: The response_mode '{mode}' is not supported.");
        return back("invalid_request", &text);
    }
    match params.get("response_type").map(String::as_str) {
        None => return back("invalid_request", &required("response_type")),
        Some("code") => {}
        Some(other) => {
            let text = format!(
                "AADSTS700054: response_type '{other}' is not enabled for the application."
            );
            return back("invalid_request", &text);
        }
    }
    let scope = params.get("scope").map_or("", String::as_str);
    if !scope.split(' ').any(|s| s == "openid") {
        let text = format!(
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid: a \
             sign-in must ask for 'openid' (got '{scope}')."
        );
        return back("invalid_request", &text);
    }
    let Some(challenge) = params.get("code_challenge").filter(|c| !c.is_empty()) else {
        return back(
            "invalid_request",
            "AADSTS9002325: Proof Key for Code Exchange is required: send a code_challenge.",
        );
    };
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return back(
            "invalid_request",
            "AADSTS9002325: Proof Key for Code Exchange is required with \
             code_challenge_method=S256.",
        );
    }
    // Entra itself takes a sign-in without state or nonce; Roster must always send both,
    // so the fake refuses one that does not.
    if client_state.is_none() {
        return back("invalid_request", &required("state"));
    }
    let Some(nonce) = params.get("nonce") else {
        return back("invalid_request", &required("nonce"));
    };
    if let Some((error, description)) = state.deny_next_login.take() {
        return back(&error, &description);
    }
    if let Some(login) = state.login_page.clone() {
        let typed = (params.get("login"), params.get("password"));
        let right = typed == (Some(&login.login), Some(&login.password));
        if !right {
            let error = if posted {
                "Your account or password is incorrect."
            } else {
                ""
            };
            return login_page(tenant, &params, error);
        }
        state.signed_in = Some(login.claims);
    }
    let Some(mut identity) = state.signed_in.clone() else {
        return back(
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.",
        );
    };
    if identity.tid.is_none() {
        let home = if is_multi_tenant(tenant) {
            app_tenant
        } else {
            tenant.to_owned()
        };
        identity.tid = Some(home);
    }
    let code = jose::random_token(64);
    state.codes.insert(
        code.clone(),
        AuthCode {
            client_id: client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            code_challenge: challenge.clone(),
            nonce: nonce.clone(),
            identity,
            issued_at: jose::now(),
            redeemed: false,
        },
    );
    let session = jose::uuid();
    let mut answer = vec![("code", code.as_str())];
    if let Some(s) = client_state {
        answer.push(("state", s.as_str()));
    }
    answer.push(("session_state", session.as_str()));
    respond(redirect_uri, mode, &answer)
}

/// Sends the authorize answer back the way `response_mode` asks.
fn respond(redirect_uri: &str, mode: &str, params: &[(&str, &str)]) -> Reply {
    if mode == "form_post" {
        let inputs: String = params
            .iter()
            .map(|(k, v)| {
                format!(
                    r#"<input type="hidden" name="{}" value="{}"/>"#,
                    escape(k),
                    escape(v)
                )
            })
            .collect();
        return Reply::html(
            200,
            format!(
                r#"<html><head><title>Working...</title></head><body onload="document.forms[0].submit()"><form method="POST" name="hiddenform" action="{}">{inputs}<noscript><input type="submit" value="Continue"/></noscript></form></body></html>"#,
                escape(redirect_uri)
            ),
        );
    }
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let separator = match mode {
        "fragment" => '#',
        _ if redirect_uri.contains('?') => '&',
        _ => '?',
    };
    Reply::redirect(&format!("{redirect_uri}{separator}{encoded}"))
}

fn error_page(refusal: &Refusal) -> Reply {
    Reply::html(
        refusal.status,
        format!(
            "<html><head><title>Sign in to your account</title></head><body>\
             <h1>Sorry, but we're having trouble signing you in.</h1>\
             <p>AADSTS{}: {}</p></body></html>",
            refusal.code,
            escape(&refusal.description)
        ),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The tenant part of the issuer the discovery document and JWKS name.
fn issuer_tenant<'a>(state: &State, tenant: &'a str) -> &'a str {
    if is_multi_tenant(tenant) || state.multi_tenant_discovery {
        "{tenantid}"
    } else {
        tenant
    }
}

/// GET `/{tenant}/v2.0/.well-known/openid-configuration`, in Entra's shape.
pub fn discovery(shared: &Shared, tenant: &str) -> Reply {
    let state = shared.state();
    if !tenant_known(&state, tenant) {
        let refusal = unknown_tenant(tenant);
        return error(
            shared,
            400,
            "invalid_tenant",
            refusal.code,
            &refusal.description,
        );
    }
    let base = &shared.base_url;
    let issuer = format!("{base}/{}/v2.0", issuer_tenant(&state, tenant));
    let region: Value = if is_multi_tenant(tenant) {
        Value::Null
    } else {
        json!("EU")
    };
    let document = json!({
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{base}/{tenant}/kerberos"),
        "tenant_region_scope": region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    Reply::json(200, &document).header("cache-control", "max-age=86400, private")
}

/// GET `/{tenant}/discovery/v2.0/keys`: the published keys, each with an `issuer` and no
/// `alg`, as Entra's are.
pub fn jwks(shared: &Shared, tenant: &str) -> Reply {
    let state = shared.state();
    if !tenant_known(&state, tenant) {
        let refusal = unknown_tenant(tenant);
        return error(
            shared,
            400,
            "invalid_tenant",
            refusal.code,
            &refusal.description,
        );
    }
    let issuer = format!("{}/{}/v2.0", shared.base_url, issuer_tenant(&state, tenant));
    let keys: Vec<Value> = state
        .published
        .iter()
        .map(|&index| jose::signing_key(index).jwk(&issuer))
        .collect();
    Reply::json(200, &json!({ "keys": keys })).header("cache-control", "max-age=86400, private")
}

/// Microsoft's sign-in page, as far as a browser test needs it: the authorize request's
/// parameters carried in hidden fields, a login and a password.
fn login_page(tenant: &str, params: &HashMap<String, String>, error: &str) -> Reply {
    let hidden: String = params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "login" | "password"))
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            )
        })
        .collect();
    let hint = params.get("login_hint").map_or("", String::as_str);
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(r#"<p role="alert">{}</p>"#, escape(error))
    };
    Reply::html(
        200,
        format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>Sign in to your account</title></head><body><h1>Sign in to Microsoft</h1>{error}<form method="post" action="/{}/oauth2/v2.0/authorize">{hidden}<label for="login">Email</label><input id="login" name="login" value="{}"><label for="password">Password</label><input id="password" name="password" type="password"><button type="submit">Sign in</button></form></body></html>"#,
            escape(tenant),
            escape(hint)
        ),
    )
}
