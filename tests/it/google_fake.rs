//! The Google fake against the protocol, not against itself: a client written here from
//! Google's documentation (its own assertion signer reading the downloaded key file, ID
//! token verification against the published JWKS with the rsa crate) must get what Google
//! gives, and be refused where Google refuses.

mod directory;
mod faults;
mod sign_in;
mod token;

use std::collections::HashMap;

use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::google::{
    DirectoryUser, GoogleClaims, GoogleFake, READONLY_SCOPES, ServiceAccount, user_id,
};

const ADMIN: &str = "admin@example.com";
const SERVICE_ACCOUNT: &str = "roster-sync@roster-test.iam.gserviceaccount.com";
const CLIENT: &str = "1234567890-abcdefghijklmnop.apps.googleusercontent.com";
/// Characters that HTTP Basic must carry form-urlencoded (RFC 6749 §2.3.1).
const SECRET: &str = "GOCSPX-s3cr+t/=:%&x";
const REDIRECT: &str = "https://roster.example/auth/google/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The administrator the service account acts as, and an ordinary user.
fn admin() -> DirectoryUser {
    let mut admin = DirectoryUser::new(&user_id(1), ADMIN, "Ada Admin");
    admin.is_admin = true;
    admin
}

fn alice() -> DirectoryUser {
    let mut alice = DirectoryUser::new(&user_id(2), "alice@example.com", "Alice Liddell");
    alice.aliases = vec!["ally@example.com".into()];
    alice
}

struct Setup {
    fake: GoogleFake,
    http: reqwest::Client,
    account: ServiceAccount,
}

async fn start() -> Setup {
    roster::install_crypto_provider();
    let fake = GoogleFake::start().await;
    fake.set_users(vec![admin(), alice()]);
    fake.register_oauth_client(CLIENT, SECRET, &[REDIRECT]);
    let account = fake.new_service_account(SERVICE_ACCOUNT);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    Setup {
        fake,
        http,
        account,
    }
}

/// What a client reads from the downloaded key file.
struct KeyFile {
    client_email: String,
    private_key_id: String,
    key: RsaPrivateKey,
}

impl KeyFile {
    fn read(account: &ServiceAccount) -> KeyFile {
        let file: Value = serde_json::from_str(&account.key_json).expect("JSON key file");
        let pem = file["private_key"].as_str().expect("private_key");
        KeyFile {
            client_email: file["client_email"].as_str().expect("email").into(),
            private_key_id: file["private_key_id"].as_str().expect("id").into(),
            key: RsaPrivateKey::from_pkcs8_pem(pem).expect("PKCS#8 key"),
        }
    }
}

/// An assertion per "Using OAuth 2.0 for Server to Server Applications", with `change`
/// applied to the header and claims before signing.
fn assertion(file: &KeyFile, aud: &str, change: impl FnOnce(&mut Value, &mut Value)) -> String {
    let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": file.private_key_id});
    let now = now();
    let mut claims = json!({
        "iss": file.client_email,
        "scope": READONLY_SCOPES.join(" "),
        "aud": aud,
        "iat": now,
        "exp": now + 3600,
        "sub": ADMIN,
    });
    change(&mut header, &mut claims);
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = rsa::pkcs1v15::SigningKey::<Sha256>::new(file.key.clone())
        .sign(input.as_bytes())
        .to_vec();
    format!("{input}.{}", b64(&signature))
}

async fn post_form(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http
        .post(url)
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON token answer"))
}

async fn grant(setup: &Setup, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion),
    ];
    post_form(&setup.http, &setup.fake.token_url(), &form).await
}

/// A Directory token for ADMIN with `change` applied to the assertion.
async fn token_with(setup: &Setup, change: impl FnOnce(&mut Value, &mut Value)) -> String {
    let file = KeyFile::read(&setup.account);
    let signed = assertion(&file, &setup.fake.token_url(), change);
    let (status, body) = grant(setup, &signed).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("access_token").into()
}

async fn directory_token(setup: &Setup) -> String {
    token_with(setup, |_, _| {}).await
}

/// GET `{base}/admin/directory/v1/{path}` with a bearer token.
async fn api(setup: &Setup, token: &str, path: &str) -> (u16, Value) {
    let url = format!("{}/admin/directory/v1/{path}", setup.fake.base_url());
    let response = setup
        .http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("Directory request");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.expect("JSON Directory answer"),
    )
}

fn error_reason(body: &Value) -> (&str, &str) {
    (
        body["error"]["errors"][0]["reason"].as_str().unwrap_or(""),
        body["error"]["message"].as_str().unwrap_or(""),
    )
}

// ---- sign-in helpers ----

fn challenge() -> String {
    b64(&Sha256::digest(VERIFIER.as_bytes()))
}

/// The authorize request a relying party sends, with `extra` parameters added or replaced.
async fn authorize(setup: &Setup, extra: &[(&str, &str)]) -> reqwest::Response {
    let challenge = challenge();
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email profile"),
        ("state", "st&te=1"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    params.extend_from_slice(extra);
    let url = reqwest::Url::parse_with_params(
        &format!("{}/o/oauth2/v2/auth", setup.fake.base_url()),
        &params,
    )
    .expect("authorize URL");
    setup.http.get(url).send().await.expect("authorize")
}

/// The query Google redirected back with.
fn redirected(response: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().expect("location");
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let url = reqwest::Url::parse(location).expect("redirect URL");
    url.query_pairs().into_owned().collect()
}

async fn sign_in_code(setup: &Setup) -> String {
    let back = redirected(&authorize(setup, &[]).await);
    back["code"].clone()
}

/// The code exchange with `client_secret_post`.
async fn redeem(setup: &Setup, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    post_form(&setup.http, &setup.fake.token_url(), &form).await
}

async fn id_token_for(setup: &Setup, claims: GoogleClaims) -> String {
    setup.fake.sign_in_as(claims);
    let code = sign_in_code(setup).await;
    let (status, body) = redeem(setup, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
    body["id_token"].as_str().expect("id_token").into()
}

async fn jwks(setup: &Setup) -> Value {
    let discovery: Value = get_json(
        setup,
        &format!("{}/.well-known/openid-configuration", setup.fake.base_url()),
    )
    .await;
    get_json(setup, discovery["jwks_uri"].as_str().expect("jwks_uri")).await
}

async fn get_json(setup: &Setup, url: &str) -> Value {
    let response = setup.http.get(url).send().await.expect("GET");
    response.json().await.expect("JSON")
}

fn decode(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    let header = serde_json::from_slice(&unb64(parts[0])).expect("header");
    let claims = serde_json::from_slice(&unb64(parts[1])).expect("claims");
    (header, claims)
}

fn jwk_key(jwk: &Value) -> RsaPublicKey {
    let n = BigUint::from_bytes_be(&unb64(jwk["n"].as_str().expect("n")));
    let e = BigUint::from_bytes_be(&unb64(jwk["e"].as_str().expect("e")));
    RsaPublicKey::new(n, e).expect("RSA key")
}

/// RS256 against the JWKS key the header names; `false` when there is none or it fails.
fn verifies(jwks: &Value, token: &str) -> bool {
    let (header, _) = decode(token);
    let Some(jwk) = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
    else {
        return false;
    };
    verifies_with(&jwk_key(jwk), token)
}

fn verifies_with(key: &RsaPublicKey, token: &str) -> bool {
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(unb64(signature).as_slice()) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
        .verify(input.as_bytes(), &signature)
        .is_ok()
}
