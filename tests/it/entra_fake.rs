//! The Entra fake against the protocol, not against itself: a client written here from
//! Microsoft's documentation (its own assertion signer, JWKS verification with the rsa
//! crate) must get what the real service gives, and be refused where it refuses.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer, Verifier};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::entra::{
    EntraFake, Fault, GraphGroup, GraphUser, IdClaims, Member, Route, Tamper,
};

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

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

/// A certificate credential as Roster holds one: the certificate's DER and the private key.
struct Credential {
    certificate_pem: String,
    der: Vec<u8>,
    key: RsaPrivateKey,
}

impl Credential {
    fn generate() -> Credential {
        let made = roster::profiles::certificate::generate("entra-fake-test").expect("certificate");
        let (_, pem) = x509_parser::pem::parse_x509_pem(made.certificate_pem.as_bytes())
            .expect("PEM certificate");
        let key = RsaPrivateKey::from_pkcs8_pem(made.private_key_pem.expose_secret())
            .expect("PKCS#8 key");
        Credential {
            certificate_pem: made.certificate_pem,
            der: pem.contents,
            key,
        }
    }
}

/// Two credentials per test run: generating RSA keys is the slow part.
fn credentials() -> &'static (Credential, Credential) {
    static CREDENTIALS: OnceLock<(Credential, Credential)> = OnceLock::new();
    CREDENTIALS.get_or_init(|| (Credential::generate(), Credential::generate()))
}

#[derive(Clone, Copy)]
enum Alg {
    Ps256,
    Rs256,
}

/// A client assertion per Microsoft's certificate-credential page, with `change` applied to
/// the claims before signing.
fn assertion_with(
    header_from: &Credential,
    signer: &Credential,
    alg: Alg,
    aud: &str,
    change: impl FnOnce(&mut Value),
) -> String {
    let header = match alg {
        Alg::Ps256 => {
            json!({"alg": "PS256", "typ": "JWT", "x5t#S256": b64(&Sha256::digest(&header_from.der))})
        }
        Alg::Rs256 => {
            json!({"alg": "RS256", "typ": "JWT", "x5t": b64(&sha1::Sha1::digest(&header_from.der))})
        }
    };
    let now = now();
    let mut claims = json!({
        "aud": aud, "iss": CLIENT, "sub": CLIENT,
        "jti": format!("{:x}", rand::random::<u128>()),
        "nbf": now, "iat": now, "exp": now + 300,
    });
    change(&mut claims);
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match alg {
        Alg::Ps256 => rsa::pss::BlindedSigningKey::<Sha256>::new(signer.key.clone())
            .sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes())
            .to_vec(),
        Alg::Rs256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(signer.key.clone())
            .sign(input.as_bytes())
            .to_vec(),
    };
    format!("{input}.{}", b64(&signature))
}

fn assertion(fake: &EntraFake) -> String {
    let (good, _) = credentials();
    assertion_with(good, good, Alg::Ps256, &fake.token_url(TENANT), |_| {})
}

async fn start() -> (EntraFake, reqwest::Client) {
    roster::install_crypto_provider();
    let fake = EntraFake::start().await;
    fake.register_app(TENANT, CLIENT, &credentials().0.certificate_pem);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    (fake, http)
}

async fn post_token(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http
        .post(url)
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON token answer"))
}

async fn client_credentials(
    http: &reqwest::Client,
    fake: &EntraFake,
    tenant: &str,
    assertion: &str,
) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT),
        ("scope", GRAPH_SCOPE),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    post_token(http, &fake.token_url(tenant), &form).await
}

async fn graph_token(http: &reqwest::Client, fake: &EntraFake) -> String {
    let (status, body) = client_credentials(http, fake, TENANT, &assertion(fake)).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn graph_get(
    http: &reqwest::Client,
    token: &str,
    url: &str,
    eventual: bool,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http.get(url).bearer_auth(token);
    if eventual {
        request = request.header("ConsistencyLevel", "eventual");
    }
    let response = request.send().await.expect("Graph request");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.expect("JSON Graph answer"),
    )
}

fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().expect("error_codes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_certificate_assertion_gets_a_graph_token_either_algorithm() {
    let (fake, http) = start().await;
    let (good, _) = credentials();
    for alg in [Alg::Ps256, Alg::Rs256] {
        let signed = assertion_with(good, good, alg, &fake.token_url(TENANT), |_| {});
        let (status, body) = client_credentials(&http, &fake, TENANT, &signed).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert_eq!(body["ext_expires_in"], 3599);
        let token = body["access_token"].as_str().expect("access_token");
        let users = format!("{}/v1.0/users", fake.base_url());
        let (status, _, _) = graph_get(&http, token, &users, false).await;
        assert_eq!(status, 200);
    }
    assert_eq!(fake.token_requests(), 2);

    let users = format!("{}/v1.0/users", fake.base_url());
    let (status, _, body) = graph_get(&http, "not-a-token", &users, false).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_misaddressed_or_replayed_assertions_are_refused_with_entras_codes() {
    let (fake, http) = start().await;
    let (good, other) = credentials();
    let url = fake.token_url(TENANT);

    // Registered thumbprint, signed by another key.
    let forged = assertion_with(good, other, Alg::Ps256, &url, |_| {});
    let (status, body) = client_credentials(&http, &fake, TENANT, &forged).await;
    assert_eq!((status, aadsts(&body)), (401, 700027), "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .contains("did not match")
    );

    // A certificate the app registration does not hold.
    let unknown = assertion_with(other, other, Alg::Ps256, &url, |_| {});
    let (status, body) = client_credentials(&http, &fake, TENANT, &unknown).await;
    assert_eq!((status, aadsts(&body)), (401, 700027));
    let text = body["error_description"].as_str().expect("text");
    assert!(text.contains("The key was not found"), "{text}");
    assert!(
        text.contains("Trace ID: ") && text.contains("Correlation ID: "),
        "{text}"
    );

    // Addressed to another token endpoint (the v1 one).
    let v1 = format!("{}/{TENANT}/oauth2/token", fake.base_url());
    let misaddressed = assertion_with(good, good, Alg::Ps256, &v1, |_| {});
    let (status, body) = client_credentials(&http, &fake, TENANT, &misaddressed).await;
    assert_eq!((status, aadsts(&body)), (401, 700023));

    let expired = assertion_with(good, good, Alg::Ps256, &url, |c| {
        c["nbf"] = json!(now() - 1200);
        c["exp"] = json!(now() - 600);
    });
    let (_, body) = client_credentials(&http, &fake, TENANT, &expired).await;
    assert_eq!(aadsts(&body), 700024);
    let too_long = assertion_with(good, good, Alg::Ps256, &url, |c| {
        c["exp"] = json!(now() + 3600)
    });
    let (_, body) = client_credentials(&http, &fake, TENANT, &too_long).await;
    assert_eq!(aadsts(&body), 700024);

    let replayed = assertion(&fake);
    let (status, _) = client_credentials(&http, &fake, TENANT, &replayed).await;
    assert_eq!(status, 200);
    let (status, body) = client_credentials(&http, &fake, TENANT, &replayed).await;
    assert_eq!((status, aadsts(&body)), (401, 50013));

    let (status, body) =
        client_credentials(&http, &fake, "no-such-tenant", &assertion(&fake)).await;
    assert_eq!((status, aadsts(&body)), (400, 90002));
    assert_eq!(body["error"], "invalid_request");

    fake.register_app("other-tenant", "someone-else", &other.certificate_pem);
    let (status, body) = client_credentials(&http, &fake, "other-tenant", &assertion(&fake)).await;
    assert_eq!((status, aadsts(&body)), (400, 700016));
    assert_eq!(body["error"], "unauthorized_client");

    let wrong_scope = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT),
        ("scope", "User.Read"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &assertion(&fake)),
    ];
    let (status, body) = post_token(&http, &url, &wrong_scope).await;
    assert_eq!((status, aadsts(&body)), (400, 70011));
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_page_through_opaque_next_links_each_once() {
    let (fake, http) = start().await;
    fake.generate(2_500, 0, 0);
    let token = graph_token(&http, &fake).await;
    let first = format!(
        "{}/v1.0/users?$select=id,userPrincipalName,accountEnabled&$top=999",
        fake.base_url()
    );
    let (mut ids, mut pages, mut next) = (Vec::new(), Vec::new(), Some(first));
    while let Some(url) = next.take() {
        let (status, _, body) = graph_get(&http, &token, &url, false).await;
        assert_eq!(status, 200, "{body}");
        let value = body["value"].as_array().expect("value");
        pages.push(value.len());
        ids.extend(
            value
                .iter()
                .map(|u| u["id"].as_str().expect("id").to_owned()),
        );
        assert!(value.iter().all(|u| u["accountEnabled"] == true));
        next = body["@odata.nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            assert!(link.contains("$skiptoken="), "{link}");
            assert!(
                !link.contains("999&$skip=") && !link.contains("1998"),
                "{link}"
            );
        }
    }
    assert_eq!(pages, [999, 999, 502]);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2_500);

    let too_big = format!("{}/v1.0/users?$top=1000", fake.base_url());
    let (status, _, body) = graph_get(&http, &token, &too_big, false).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("between 1 and 999")
    );

    let bogus = format!("{}/v1.0/users?$skiptoken=made-up", fake.base_url());
    let (status, _, body) = graph_get(&http, &token, &bogus, false).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("Request_BadRequest"))
    );

    // Without $top a page holds Graph's default of 100.
    let plain = format!("{}/v1.0/users", fake.base_url());
    let (_, _, body) = graph_get(&http, &token, &plain, false).await;
    assert_eq!(body["value"].as_array().map(Vec::len), Some(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_without_select_lack_the_sync_properties() {
    let (fake, http) = start().await;
    fake.set_users(vec![GraphUser::member("u1", "alice@example.test", "Alice")]);
    let token = graph_token(&http, &fake).await;
    let (_, _, body) = graph_get(
        &http,
        &token,
        &format!("{}/v1.0/users", fake.base_url()),
        false,
    )
    .await;
    let user = body["value"][0].as_object().expect("a user");
    let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "businessPhones",
            "displayName",
            "givenName",
            "id",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname",
            "userPrincipalName"
        ]
    );
    assert_eq!(
        body["@odata.context"],
        format!("{}/v1.0/$metadata#users", fake.base_url())
    );

    let url = format!(
        "{}/v1.0/users?$select=accountEnabled,assignedPlans,proxyAddresses,userType",
        fake.base_url()
    );
    let (_, _, body) = graph_get(&http, &token, &url, false).await;
    let user = &body["value"][0];
    assert_eq!(user["accountEnabled"], true);
    assert_eq!(user["userType"], "Member");
    assert_eq!(user["proxyAddresses"], json!(["SMTP:alice@example.test"]));
    assert_eq!(user["assignedPlans"][0]["service"], "exchange");
    assert_eq!(user["assignedPlans"][0]["capabilityStatus"], "Enabled");
    assert_eq!(user["id"], "u1");
    assert!(user.get("displayName").is_none());

    let unknown = format!("{}/v1.0/users?$select=id,favouriteColour", fake.base_url());
    let (status, _, _) = graph_get(&http, &token, &unknown, false).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitive_members_expand_nesting_once_each_with_their_types() {
    let (fake, http) = start().await;
    fake.set_users(vec![
        GraphUser::member("u1", "one@example.test", "One"),
        GraphUser::member("u2", "two@example.test", "Two"),
    ]);
    let mut staff = GraphGroup::new(
        "g-staff",
        "Staff",
        vec![
            Member::User("u1".into()),
            Member::Group("g-team".into()),
            Member::Device("d1".into()),
        ],
    );
    staff.description = Some("Everyone".into());
    let team = GraphGroup::new(
        "g-team",
        "Team",
        vec![
            Member::User("u2".into()),
            Member::User("u1".into()),
            Member::Group("g-staff".into()),
            Member::Contact("c1".into()),
            Member::ServicePrincipal("s1".into()),
        ],
    );
    fake.set_groups(vec![staff, team]);
    let token = graph_token(&http, &fake).await;
    let url = format!(
        "{}/v1.0/groups/g-staff/transitiveMembers?$select=id,userPrincipalName&$top=999",
        fake.base_url()
    );
    let (status, _, body) = graph_get(&http, &token, &url, false).await;
    assert_eq!(status, 200, "{body}");
    let got: Vec<(String, String)> = body["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|o| {
            (
                o["@odata.type"].as_str().expect("type").into(),
                o["id"].as_str().expect("id").into(),
            )
        })
        .collect();
    let want = [
        ("#microsoft.graph.user", "u1"),
        ("#microsoft.graph.group", "g-team"),
        ("#microsoft.graph.device", "d1"),
        ("#microsoft.graph.user", "u2"),
        ("#microsoft.graph.orgContact", "c1"),
        ("#microsoft.graph.servicePrincipal", "s1"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(t, i)| (t.to_string(), i.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(body["value"][0]["userPrincipalName"], "one@example.test");

    let missing = format!("{}/v1.0/groups/nope/transitiveMembers", fake.base_url());
    let (status, _, body) = graph_get(&http, &token, &missing, false).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_search_needs_the_eventual_consistency_header() {
    let (fake, http) = start().await;
    fake.set_groups(vec![
        GraphGroup::new("g1", "Sales Team", vec![]),
        GraphGroup::new("g2", "Engineering", vec![]),
        GraphGroup::new("g3", "Presales", vec![]),
    ]);
    let token = graph_token(&http, &fake).await;
    let url = format!(
        "{}/v1.0/groups?$search=%22displayName:sales%22&$select=id,displayName",
        fake.base_url()
    );
    let (status, _, body) = graph_get(&http, &token, &url, false).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("ConsistencyLevel: eventual")
    );

    let (status, _, body) = graph_get(&http, &token, &url, true).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|g| g["displayName"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Sales Team", "Presales"]);
    let recorded = fake.requests();
    assert_eq!(
        recorded.last().and_then(|r| r.consistency_level.as_deref()),
        Some("eventual")
    );
    assert!(
        recorded
            .last()
            .expect("recorded")
            .path_and_query
            .contains("$search=\"displayName:sales\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_fault_answers_429_with_retry_after_once() {
    let (fake, http) = start().await;
    let token = graph_token(&http, &fake).await;
    fake.fault(
        Route::Users,
        0,
        Fault::Throttle {
            retry_after: Some(7),
        },
    );
    let url = format!("{}/v1.0/users?$top=5", fake.base_url());
    let (status, headers, body) = graph_get(&http, &token, &url, false).await;
    assert_eq!(status, 429);
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("7")
    );
    assert_eq!(body["error"]["code"], "TooManyRequests");
    let (status, _, _) = graph_get(&http, &token, &url, false).await;
    assert_eq!(status, 200);
    assert_eq!(fake.request_count(Route::Users), 2);

    // The second matching request from now, not the first.
    fake.fault(Route::Users, 1, Fault::Unavailable { retry_after: None });
    let (first, _, _) = graph_get(&http, &token, &url, false).await;
    let (second, headers, _) = graph_get(&http, &token, &url, false).await;
    assert_eq!((first, second), (200, 503));
    assert!(headers.get("retry-after").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_garbage_truncated_and_stalled_answers_fail_as_they_would() {
    let (fake, http) = start().await;
    fake.generate(300, 0, 0);
    let token = graph_token(&http, &fake).await;
    let url = format!("{}/v1.0/users?$top=50", fake.base_url());

    fake.fault(Route::Users, 0, Fault::CutOff);
    let response = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.bytes().await.is_err(), "the body read must fail");

    fake.fault(Route::Users, 0, Fault::Garbage);
    let response = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.json::<Value>().await.is_err());

    fake.fault(Route::Users, 0, Fault::Truncated);
    let (status, _, body) = graph_get(&http, &token, &url, false).await;
    assert_eq!(status, 200);
    assert_eq!(body["value"].as_array().map(Vec::len), Some(50));
    let next = body["@odata.nextLink"].as_str().expect("a next link");
    let (status, _, _) = graph_get(&http, &token, next, false).await;
    assert_eq!(status, 400);

    fake.fault(Route::Users, 0, Fault::Stall);
    let stalled = http
        .get(&url)
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(stalled.is_err_and(|e| e.is_timeout()));
}

/// What the browser does: authorize (302 back with a code), then the relying party redeems
/// the code with its assertion and PKCE verifier.
async fn authorize(fake: &EntraFake, http: &reqwest::Client, verifier: &str) -> String {
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let url = reqwest::Url::parse_with_params(
        &format!("{}/{TENANT}/oauth2/v2.0/authorize", fake.base_url()),
        &[
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", "https://roster.example/callback"),
            ("scope", "openid profile email"),
            ("state", "st&te=1"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorize URL");
    let response = http.get(url).send().await.expect("authorize");
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let back = reqwest::Url::parse(&location).expect("redirect");
    assert!(
        location.starts_with("https://roster.example/callback?"),
        "{location}"
    );
    let params: HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(params.get("state").map(String::as_str), Some("st&te=1"));
    params["code"].clone()
}

async fn redeem(
    fake: &EntraFake,
    http: &reqwest::Client,
    code: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let signed = assertion(fake);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT),
        ("code", code),
        ("redirect_uri", "https://roster.example/callback"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &signed),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    post_token(http, &fake.token_url(TENANT), &form).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_gives_an_id_token_verifiable_against_the_jwks_and_codes_are_single_use() {
    let (fake, http) = start().await;
    let mut alice = IdClaims::new("oid-alice", "alice@example.test", "Alice Example");
    alice.email = Some("alice@example.test".into());
    fake.sign_in_as(alice);
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = authorize(&fake, &http, verifier).await;
    assert_eq!(
        fake.last_authorize().expect("recorded")["nonce"],
        "n-0S6_WzA2Mj"
    );

    let (status, body) = redeem(&fake, &http, &code, Some(verifier)).await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().expect("id_token");

    let discovery: Value = http
        .get(format!(
            "{}/{TENANT}/v2.0/.well-known/openid-configuration",
            fake.base_url()
        ))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("JSON");
    assert_eq!(discovery["issuer"], fake.issuer(TENANT));
    let jwks: Value = http
        .get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JSON");
    assert_eq!(fake.jwks_requests(), 1);

    let parts: Vec<&str> = id_token.split('.').collect();
    let header: Value = serde_json::from_slice(&unb64(parts[0])).expect("header");
    let claims: Value = serde_json::from_slice(&unb64(parts[1])).expect("claims");
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str()),
        (Some("RS256"), Some("JWT"))
    );
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the signing key is published");
    assert!(jwk.get("alg").is_none() && jwk["issuer"] == fake.issuer(TENANT));
    let key = RsaPublicKey::new(
        BigUint::from_bytes_be(&unb64(jwk["n"].as_str().expect("n"))),
        BigUint::from_bytes_be(&unb64(jwk["e"].as_str().expect("e"))),
    )
    .expect("RSA key");
    let signature =
        rsa::pkcs1v15::Signature::try_from(unb64(parts[2]).as_slice()).expect("signature");
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the ID token verifies against the JWKS");

    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["iss"], fake.issuer(TENANT));
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["oid"], "oid-alice");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["preferred_username"], "alice@example.test");
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(claims["ver"], "2.0");
    assert_ne!(
        claims["sub"], claims["oid"],
        "Entra's sub is pairwise, not the oid"
    );
    assert!(claims.get("azp").is_none());
    assert!(claims["exp"].as_u64().expect("exp") > now() + 3000);

    let (status, body) = redeem(&fake, &http, &code, Some(verifier)).await;
    assert_eq!((status, aadsts(&body)), (400, 54005));
    assert_eq!(body["error"], "invalid_grant");

    // The next token is tampered with: alg none, empty signature.
    fake.tamper_next_id_token(Tamper::AlgNone);
    let code = authorize(&fake, &http, verifier).await;
    let (_, body) = redeem(&fake, &http, &code, Some(verifier)).await;
    let tampered = body["id_token"].as_str().expect("id_token");
    assert!(tampered.ends_with('.'));
    let header: Value = serde_json::from_slice(&unb64(tampered.split('.').next().expect("header")))
        .expect("header");
    assert_eq!(header["alg"], "none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_without_its_pkce_verifier_is_refused() {
    let (fake, http) = start().await;
    fake.sign_in_as(IdClaims::new("oid-bob", "bob@example.test", "Bob"));
    let verifier = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag";
    let code = authorize(&fake, &http, verifier).await;
    let (status, body) = redeem(&fake, &http, &code, None).await;
    assert_eq!((status, aadsts(&body)), (400, 50148));
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = redeem(
        &fake,
        &http,
        &code,
        Some("another-verifier-entirely-0123456789abcdef"),
    )
    .await;
    assert_eq!((status, aadsts(&body)), (400, 50148));
    let (status, _) = redeem(&fake, &http, &code, Some(verifier)).await;
    assert_eq!(status, 200);

    // No one signed in and a login the test denies both go back to the redirect URI.
    let fresh = EntraFake::start().await;
    fresh.register_app(TENANT, CLIENT, &credentials().0.certificate_pem);
    fresh.deny_next_login("interaction_required", "AADSTS50076: MFA required.");
    let url = format!(
        "{}/{TENANT}/oauth2/v2.0/authorize?client_id={CLIENT}&response_type=code&redirect_uri=https://rp/cb&scope=openid&state=s&nonce=n&code_challenge=abc&code_challenge_method=S256",
        fresh.base_url()
    );
    for expected in ["error=interaction_required", "error=access_denied"] {
        let response = http.get(&url).send().await.expect("authorize");
        let location = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert!(
            location.starts_with("https://rp/cb?") && location.contains(expected),
            "{location}"
        );
    }
}
