//! Sign-in with Google: authorize, the code exchange with either client authentication,
//! PKCE and single-use codes, the ID token verified against the published JWKS, key
//! rotation, and each tamper.

use hmac::{Hmac, Mac};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    CLIENT, REDIRECT, SECRET, VERIFIER, alice, api, authorize, b64, decode, directory_token,
    id_token_for, jwk_key, jwks, now, post_form, redeem, redirected, sign_in_code, start, verifies,
    verifies_with,
};
use crate::support::google::{GoogleClaims, Tamper};

fn refused(status: u16, error: &str, description: &str) -> (u16, Value) {
    (
        status,
        json!({"error": error, "error_description": description}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_gives_an_id_token_whose_sub_is_the_directory_id() {
    let setup = start().await;
    setup.fake.sign_in_as(GoogleClaims::of(&alice()));
    let hints = [("login_hint", "alice@example.com"), ("hd", "example.com")];
    let back = redirected(&authorize(&setup, &hints).await);
    assert_eq!(back["state"], "st&te=1");
    assert_eq!(
        (back["authuser"].as_str(), back["prompt"].as_str()),
        ("0", "none")
    );
    assert_eq!(back["hd"], "example.com");
    assert!(
        back["scope"].split(' ').any(|s| s == "openid"),
        "{}",
        back["scope"]
    );
    assert!(back["code"].starts_with("4/0"), "{}", back["code"]);
    let asked = setup.fake.last_authorize().expect("recorded");
    assert_eq!(
        (asked["login_hint"].as_str(), asked["nonce"].as_str()),
        ("alice@example.com", "n-0S6_WzA2Mj")
    );

    let (status, body) = redeem(&setup, &back["code"], Some(VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_u64()),
        (Some("Bearer"), Some(3599))
    );
    assert!(
        body["scope"]
            .as_str()
            .expect("scope")
            .contains("https://www.googleapis.com/auth/userinfo.email")
    );
    let id_token = body["id_token"].as_str().expect("id_token");
    let access_token = body["access_token"].as_str().expect("access_token");
    assert!(
        verifies(&jwks(&setup).await, id_token),
        "signed by a published key"
    );
    let (header, claims) = decode(id_token);
    assert_eq!(
        header,
        json!({"alg": "RS256", "kid": setup.fake.signing_kid(), "typ": "JWT"})
    );
    assert_eq!(claims["iss"], setup.fake.issuer());
    assert_eq!(
        (claims["azp"].as_str(), claims["aud"].as_str()),
        (Some(CLIENT), Some(CLIENT))
    );
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], json!(true), "a JSON boolean");
    assert_eq!(claims["hd"], "example.com");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(
        (
            claims["given_name"].as_str(),
            claims["family_name"].as_str()
        ),
        (Some("Alice"), Some("Liddell"))
    );
    assert_eq!(
        claims["at_hash"],
        b64(&Sha256::digest(access_token.as_bytes())[..16])
    );
    let iat = claims["iat"].as_u64().expect("iat");
    assert_eq!(claims["exp"].as_u64(), Some(iat + 3600));
    // One person: the token's sub is their Directory id.
    let token = directory_token(&setup).await;
    let (_, user) = api(&setup, &token, "users/alice@example.com?fields=id").await;
    assert_eq!(claims["sub"], user["id"]);

    let again = redeem(&setup, &back["code"], Some(VERIFIER)).await;
    assert_eq!(
        again,
        refused(400, "invalid_grant", "Bad Request"),
        "codes are single-use"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_basic_is_form_urlencoded_and_secrets_are_checked() {
    let setup = start().await;
    setup.fake.sign_in_as(GoogleClaims::of(&alice()));
    let code = sign_in_code(&setup).await;
    let url = setup.fake.token_url();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let basic = |id: &str, secret: &str| {
        setup
            .http
            .post(&url)
            .basic_auth(id, Some(secret))
            .form(&form)
    };
    let status = |response: reqwest::Response| response.status().as_u16();
    // The secret as is, not form-urlencoded: '+' and '%' come out wrong.
    let raw = basic(CLIENT, SECRET).send().await.expect("token request");
    assert_eq!(status(raw), 401);
    let encoded: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    let response = basic(CLIENT, &encoded).send().await.expect("token request");
    assert_eq!(status(response), 200);

    let code = sign_in_code(&setup).await;
    let with = |id: &'static str, secret: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", id),
        ];
        form.extend(secret.map(|s| ("client_secret", s)));
        form
    };
    let wrong = post_form(&setup.http, &url, &with(CLIENT, Some("GOCSPX-wrong"))).await;
    assert_eq!(wrong, refused(401, "invalid_client", "Unauthorized"));
    let none = post_form(&setup.http, &url, &with(CLIENT, None)).await;
    assert_eq!(
        none,
        refused(400, "invalid_request", "client_secret is missing.")
    );
    let unknown = post_form(
        &setup.http,
        &url,
        &with("nobody.apps.googleusercontent.com", Some(SECRET)),
    )
    .await;
    assert_eq!(
        unknown,
        refused(401, "invalid_client", "The OAuth client was not found.")
    );
    let (ok, _) = post_form(&setup.http, &url, &with(CLIENT, Some(SECRET))).await;
    assert_eq!(ok, 200, "refused attempts leave the code usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_and_the_redirect_uri_bind_the_code() {
    let setup = start().await;
    setup.fake.sign_in_as(GoogleClaims::of(&alice()));
    let code = sign_in_code(&setup).await;
    assert_eq!(
        redeem(&setup, &code, None).await,
        refused(400, "invalid_grant", "Missing code verifier.")
    );
    let wrong = redeem(
        &setup,
        &code,
        Some("another-verifier-entirely-0123456789abcdef"),
    )
    .await;
    assert_eq!(
        wrong,
        refused(400, "invalid_grant", "Invalid code verifier.")
    );
    let elsewhere = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://roster.example/other"),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("code_verifier", VERIFIER),
    ];
    let mismatch = post_form(&setup.http, &setup.fake.token_url(), &elsewhere).await;
    assert_eq!(
        mismatch,
        refused(400, "redirect_uri_mismatch", "Bad Request")
    );
    let made_up = redeem(&setup, "4/0Amade-up", Some(VERIFIER)).await;
    assert_eq!(
        made_up,
        refused(400, "invalid_grant", "Malformed auth code.")
    );
    assert_eq!(redeem(&setup, &code, Some(VERIFIER)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_shows_request_errors_on_its_page_and_sends_the_users_answer_back() {
    let setup = start().await;
    for (extra, status, shown) in [
        (
            vec![("client_id", "nobody.apps.googleusercontent.com")],
            401,
            "Error 401: invalid_client",
        ),
        (
            vec![("redirect_uri", "https://evil.example/cb")],
            400,
            "Error 400: redirect_uri_mismatch",
        ),
        (
            vec![("code_challenge", "")],
            400,
            "Error 400: invalid_request",
        ),
        (
            vec![("code_challenge_method", "plain")],
            400,
            "Error 400: invalid_request",
        ),
        (
            vec![("scope", "email profile")],
            400,
            "Error 400: invalid_scope",
        ),
        (
            vec![("scope", "openid https://www.googleapis.com/auth/drive")],
            400,
            "Error 400: invalid_scope",
        ),
        (
            vec![("response_type", "token")],
            400,
            "Error 400: unsupported_response_type",
        ),
    ] {
        let response = authorize(&setup, &extra).await;
        assert_eq!(response.status().as_u16(), status, "{extra:?}");
        let page = response.text().await.expect("page");
        assert!(page.contains(shown), "{extra:?}: {page}");
    }
    // Nobody signed in: the user did not consent.
    let back = redirected(&authorize(&setup, &[]).await);
    assert_eq!(
        (back["error"].as_str(), back["state"].as_str()),
        ("access_denied", "st&te=1")
    );
    setup.fake.deny_next_login("interaction_required", "");
    let back = redirected(&authorize(&setup, &[]).await);
    assert_eq!(back["error"], "interaction_required");
    assert!(!back.contains_key("error_description") && !back.contains_key("code"));

    // `hd` in the request is a hint: a consumer account still signs in, without `hd`.
    let consumer = GoogleClaims {
        sub: "118234567890123456789".into(),
        email: "someone@gmail.com".into(),
        email_verified: true,
        hd: None,
        name: "Some One".into(),
    };
    setup.fake.sign_in_as(consumer);
    let back = redirected(&authorize(&setup, &[("hd", "example.com")]).await);
    assert!(!back.contains_key("hd"));
    let (_, body) = redeem(&setup, &back["code"], Some(VERIFIER)).await;
    let (_, claims) = decode(body["id_token"].as_str().expect("id_token"));
    assert!(claims.get("hd").is_none(), "{claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_jwks_look_like_googles_and_rotation_keeps_the_old_key() {
    let setup = start().await;
    let base = setup.fake.base_url();
    let discovery =
        super::get_json(&setup, &format!("{base}/.well-known/openid-configuration")).await;
    assert_eq!(discovery["issuer"], base);
    assert_eq!(
        discovery["authorization_endpoint"],
        format!("{base}/o/oauth2/v2/auth")
    );
    assert_eq!(discovery["token_endpoint"], setup.fake.token_url());
    assert_eq!(discovery["subject_types_supported"], json!(["public"]));
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(
        discovery["token_endpoint_auth_methods_supported"],
        json!(["client_secret_post", "client_secret_basic"])
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["plain", "S256"])
    );
    assert_eq!(discovery["response_types_supported"][0], "code");
    let keys = jwks(&setup).await;
    assert_eq!(setup.fake.jwks_requests(), 1);
    let key = &keys["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert_eq!(key["e"], "AQAB");
    let kid = key["kid"].as_str().expect("kid");
    assert!(
        kid.len() == 40 && kid.chars().all(|c| c.is_ascii_hexdigit()),
        "{kid}"
    );

    let before = id_token_for(&setup, GoogleClaims::of(&alice())).await;
    let new_kid = setup.fake.rotate_signing_key().await;
    assert!(new_kid != kid && setup.fake.signing_kid() == new_kid);
    let after = id_token_for(&setup, GoogleClaims::of(&alice())).await;
    assert_eq!(decode(&after).0["kid"], new_kid);
    let keys = jwks(&setup).await;
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids, [new_kid.as_str(), kid]);
    assert!(verifies(&keys, &before) && verifies(&keys, &after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tamper_changes_what_it_names_in_the_next_token_only() {
    let setup = start().await;
    let keys = jwks(&setup).await;
    let signer = jwk_key(&keys["keys"][0]);
    let alice = GoogleClaims::of(&alice());
    let bare = setup
        .fake
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    type Check<'a> = Box<dyn Fn(&str, &Value, &Value) + 'a>;
    let claim = |name: &'static str, want: Value| -> Check<'_> {
        Box::new(move |_, _, c| assert_eq!(c[name], want, "{name}"))
    };
    let cases: Vec<(Vec<Tamper>, Check<'_>)> = vec![
        (
            vec![Tamper::Issuer("https://accounts.example".into())],
            claim("iss", json!("https://accounts.example")),
        ),
        (vec![Tamper::IssuerWithoutScheme], claim("iss", json!(bare))),
        (
            vec![Tamper::ExtraAudience("other-client".into())],
            claim("aud", json!([CLIENT, "other-client"])),
        ),
        (
            vec![Tamper::Audience("other-client".into())],
            claim("aud", json!("other-client")),
        ),
        (
            vec![Tamper::Azp("other-client".into())],
            claim("azp", json!("other-client")),
        ),
        (
            vec![Tamper::Nonce("replayed".into())],
            claim("nonce", json!("replayed")),
        ),
        (
            vec![Tamper::Claim("email_verified".into(), json!(false))],
            claim("email_verified", json!(false)),
        ),
        (
            vec![Tamper::Claim("hd".into(), Value::Null)],
            Box::new(|_, _, c| assert!(c.get("hd").is_none())),
        ),
        (
            vec![Tamper::Expired],
            Box::new(|_, _, c| assert!(c["exp"].as_u64() < Some(now()))),
        ),
        (
            vec![Tamper::UnknownKid],
            Box::new(|t, h, _| {
                assert!(!verifies(&keys, t) && verifies_with(&signer, t), "{h}");
            }),
        ),
        (
            vec![Tamper::BadSignature],
            Box::new(|t, _, _| assert!(!verifies_with(&signer, t))),
        ),
        (
            vec![Tamper::AlgNone],
            Box::new(|t, h, _| assert!(h["alg"] == "none" && t.ends_with('.'))),
        ),
        (
            vec![Tamper::HmacWithPublicKey],
            Box::new(|t, h, _| {
                assert_eq!(h["alg"], "HS256");
                let pem = signer.to_public_key_pem(LineEnding::LF).expect("PEM");
                let (input, signature) = t.rsplit_once('.').expect("parts");
                let mut mac = Hmac::<Sha256>::new_from_slice(pem.as_bytes()).expect("key");
                mac.update(input.as_bytes());
                assert_eq!(b64(&mac.finalize().into_bytes()), signature);
            }),
        ),
        // Several tampers before one sign-in all apply to it.
        (
            vec![Tamper::Azp("x".into()), Tamper::Nonce("y".into())],
            Box::new(|_, _, c| {
                assert_eq!(
                    (c["azp"].as_str(), c["nonce"].as_str()),
                    (Some("x"), Some("y"))
                );
            }),
        ),
    ];
    for (tampers, check) in cases {
        for tamper in tampers {
            setup.fake.tamper_next_id_token(tamper);
        }
        let token = id_token_for(&setup, alice.clone()).await;
        let (header, claims) = decode(&token);
        check(&token, &header, &claims);
    }
    let clean = id_token_for(&setup, alice).await;
    assert!(verifies(&keys, &clean));
    assert_eq!(decode(&clean).1["azp"], CLIENT);
}
