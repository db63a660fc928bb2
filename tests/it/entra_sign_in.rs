//! "Sign in with Microsoft": the whole authorization-code flow against the real
//! `oidc-provider` serving Entra-shaped claims with a `private_key_jwt` client, and every
//! refusal SECURITY.md lists — the forged and tampered tokens come from the local Entra
//! fake (`support::entra`), which signs what a test asks for. Both backends.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;

use roster::db::ids::ProfileId;
use roster::db::models::audit_events;
use roster::db::models::sign_in_domains;
use roster::db::models::user_privileges::Privilege;
use roster::db::models::users::{self as user_rows, NewDirectoryUser, NewUsersOf};

use crate::entra::{Profile, TENANT, entra_profile};
use crate::support::app::{TestApp, csrf_token_in, location};
use crate::support::entra::{IdClaims, Tamper};
use crate::support::servers;

/// A user as a sync of `profile` would have made them, with their Graph id.
pub async fn synchronised(app: &TestApp, profile: ProfileId, oid: &str, upn: &str, mfa: bool) {
    let (oid, upn) = (oid.to_owned(), upn.to_owned());
    app.conn(move |c| {
        let of = NewUsersOf {
            profile_id: profile,
            domain: "",
            mfa_required: mfa,
            privileges: &[Privilege::LogOn],
        };
        let user = NewDirectoryUser {
            external_id: &oid,
            username: &upn,
            full_name: "Synced",
            emails: &[],
            disabled: false,
            sign_in_name: "",
            directory_name: &upn,
        };
        user_rows::insert_directory_users(c, &of, &[user]).expect("user");
        let domain = upn
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        sign_in_domains::replace(c, profile, &[domain]).expect("domains");
    })
    .await;
}

/// The public key of a certificate as a JWK (for registering the client at the provider).
fn jwk_of(certificate_pem: &str) -> serde_json::Value {
    let (_, pem) = x509_parser::pem::parse_x509_pem(certificate_pem.as_bytes()).expect("pem");
    let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).expect("cert");
    let key = rsa::RsaPublicKey::from_public_key_der(cert.public_key().raw).expect("rsa");
    serde_json::json!({
        "kty": "RSA", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    })
}

/// The shared provider's Entra-shaped instance, with this profile's client registered
/// (its own client id, so tests do not share one) and an account.
pub struct Provider {
    pub base: String,
    pub issuer: String,
}

async fn provider_for(app: &TestApp, name: &str) -> (Provider, Profile, String) {
    // Each test (and backend) its own client: registering an id again replaces it.
    let client_id = {
        use rand::Rng;
        let b: [u8; 16] = rand::thread_rng().r#gen();
        let h = hex::encode(b);
        format!(
            "{}-{}-4{}-8{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    };
    let client_id = client_id.as_str();
    let oidc = servers::oidc();
    let base = oidc.fact("ISSUER").to_owned();
    let issuer = oidc.fact("ENTRA_ISSUER").to_owned();
    assert_eq!(
        oidc.fact("ENTRA_TENANT"),
        TENANT,
        "the provider serves the tests' tenant"
    );
    app.sign_in_as_admin().await;
    let profile = entra_profile(app, name, &base, &base, |f| {
        crate::profile_pages::set(f, "client_id", client_id)
    })
    .await;
    let redirect = app.url(&format!("/login/oidc/{}/callback", profile.slug));
    let registration = serde_json::json!({
        "client_id": client_id,
        "redirect_uris": [redirect],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": { "keys": [jwk_of(&profile.certificate_pem)] },
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    });
    let res = reqwest::Client::new()
        .post(format!("{issuer}/reg"))
        .json(&registration)
        .send()
        .await
        .expect("register");
    assert_eq!(
        res.status().as_u16(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    // The admin signs out: the rest happens as the end user.
    let token = csrf_token_in(&app.get_html("/admin").await);
    app.client
        .post(app.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .expect("logout");
    (Provider { base, issuer }, profile, client_id.to_owned())
}

async fn account(provider: &Provider, sub: &str, login: &str, claims: serde_json::Value) {
    let body =
        serde_json::json!({ "sub": sub, "login": login, "password": "pw", "claims": claims });
    let res = reqwest::Client::new()
        .post(format!("{}/__test/entra/accounts", provider.base))
        .json(&body)
        .send()
        .await
        .expect("account");
    assert_eq!(res.status().as_u16(), 201);
}

/// Where "Sign in with …" sends the browser (the continue page's Refresh target).
pub async fn start(app: &TestApp, slug: &str) -> String {
    let token = csrf_token_in(&app.get_html("/login").await);
    let res = app
        .client
        .post(app.url(&format!("/login/oidc/{slug}")))
        .form(&[("csrf_token", token.as_str()), ("next", "")])
        .send()
        .await
        .expect("start");
    assert_eq!(res.status().as_u16(), 200);
    let refresh = res
        .headers()
        .get("refresh")
        .and_then(|v| v.to_str().ok())
        .expect("Refresh header")
        .to_owned();
    refresh
        .split_once("url=")
        .map(|(_, u)| u.to_owned())
        .expect("url")
}

/// Follows the provider's redirects and login form until it sends the browser back to
/// Roster; returns that callback URL (not yet requested).
pub async fn through_provider(
    app: &TestApp,
    provider: &Provider,
    authorize: &str,
    login: &str,
) -> String {
    let absolute = |to: &str| {
        if to.starts_with('/') {
            format!("{}{to}", provider.base)
        } else {
            to.to_owned()
        }
    };
    let mut url = authorize.to_owned();
    for _ in 0..10 {
        if url.starts_with(&app.address) {
            return url;
        }
        let res = app.client.get(&url).send().await.expect("provider");
        if res.status().is_redirection() {
            url = absolute(&location(&res));
            continue;
        }
        let page = res.text().await.expect("page");
        let action = page
            .split("action=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no login form at {url}: {page}"));
        let res = app
            .client
            .post(absolute(action))
            .form(&[("login", login), ("password", "pw")])
            .send()
            .await
            .expect("login");
        assert!(res.status().is_redirection(), "login accepted");
        url = absolute(&location(&res));
    }
    panic!("the provider never sent the browser back");
}

pub async fn audited(app: &TestApp, needle: &'static str) -> bool {
    app.conn(move |c| {
        audit_events::recent(c, 50)
            .expect("audit")
            .iter()
            .any(|e| e.detail.contains(needle) || e.target.contains(needle))
    })
    .await
}

crate::db_test! {
    async fn sign_in_with_microsoft_through_the_real_provider(app) {
        let (provider, profile, client_id) = provider_for(&app, "Contoso").await;
        let oid = "8f1c6a0e-0000-4000-8000-00000000a11c";
        account(&provider, "pairwise-sub-alice", "alice@contoso.example", serde_json::json!({
            "oid": oid, "tid": TENANT, "preferred_username": "alice@contoso.example", "name": "Alice", "email": "alice@contoso.example",
        })).await;
        synchronised(&app, profile.id, oid, "alice@contoso.example", false).await;

        // The sign-in page offers the profile by name.
        let login_page = app.get_html("/login").await;
        assert!(login_page.contains("Sign in with Contoso"), "{login_page}");
        // Typing the name (any password, even none) goes to the provider with a hint.
        let token = csrf_token_in(&login_page);
        let res = app.client.post(app.url("/login")).form(&[("csrf_token", token.as_str()), ("username", "Alice@Contoso.example"), ("password", ""), ("next", "/account")]).send().await.expect("login");
        assert_eq!(res.status().as_u16(), 200);
        let authorize = res.headers().get("refresh").and_then(|v| v.to_str().ok()).and_then(|v| v.split_once("url=")).map(|(_, u)| u.to_owned()).expect("refresh");
        assert!(authorize.starts_with(&provider.issuer), "{authorize}");
        for part in ["code_challenge_method=S256", "code_challenge=", "nonce=", "state=", "login_hint=Alice%40Contoso.example", &format!("client_id={client_id}")] {
            assert!(authorize.contains(part), "{part} in {authorize}");
        }
        let callback = through_provider(&app, &provider, &authorize, "alice@contoso.example").await;
        let res = app.client.get(&callback).send().await.expect("callback");
        assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap_or_default());
        assert_eq!(location(&res), "/account", "next is followed");
        let account = app.get_html("/account").await;
        assert!(account.contains("alice@contoso.example"), "signed in as the synchronised user");
        assert!(audited(&app, "with Microsoft").await);

        // The same answer again (a replayed callback, hence a reused code): refused.
        let res = app.new_client().client.get(&callback).send().await.expect("replay");
        assert_eq!(res.status().as_u16(), 403);
        let res = app.client.get(&callback).send().await.expect("replay");
        assert_eq!(res.status().as_u16(), 403);
    }
}

crate::db_test! {
    async fn microsoft_sign_in_refuses_unsynchronised_users_other_browsers_and_swapped_answers(app) {
        let (provider, profile, _) = provider_for(&app, "Fabrikam").await;
        account(&provider, "sub-mallory", "mallory@fabrikam.example", serde_json::json!({
            "oid": "oid-mallory-not-synced", "tid": TENANT, "preferred_username": "admin", "email": "admin@fabrikam.example",
        })).await;
        // A local user whose name and address match the token's claims: never linked.
        let admin_page = app.new_client();
        admin_page.sign_in_as_admin().await;
        let res = admin_page.post_form("/admin/users/new", "/admin/users", &[
            ("username", "lookalike"), ("full_name", "Local Lookalike"), ("emails", "admin@fabrikam.example"),
            ("password", "a long local password"), ("password_confirm", "a long local password"), ("privilege", "log_on"),
        ]).await;
        assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap_or_default());

        let authorize = start(&app, &profile.slug).await;
        let callback = through_provider(&app, &provider, &authorize, "mallory@fabrikam.example").await;
        let res = app.client.get(&callback).send().await.expect("callback");
        assert_eq!(res.status().as_u16(), 403);
        let body = res.text().await.expect("body");
        assert!(body.contains("has not been synchronised"), "{body}");
        assert!(audited(&app, "no synchronised user with id oid-mallory-not-synced").await);
        assert_eq!(app.get("/account").await.status().as_u16(), 303, "not signed in");

        // A state started in one browser and answered in another is refused.
        synchronised(&app, profile.id, "oid-mallory-not-synced", "mallory@fabrikam.example", false).await;
        let authorize = start(&app, &profile.slug).await;
        let callback = through_provider(&app, &provider, &authorize, "mallory@fabrikam.example").await;
        let other = app.new_client();
        let res = other.client.get(&callback).send().await.expect("callback");
        assert_eq!(res.status().as_u16(), 403);
        assert!(audited(&app, "state from another browser").await);

        // Two sign-ins begun; the code of the first delivered with the state of the
        // second (code injection): the code belongs to the first's PKCE challenge, so the
        // provider refuses it for the second's verifier.
        let first = start(&app, &profile.slug).await;
        let second = start(&app, &profile.slug).await;
        let first_callback = through_provider(&app, &provider, &first, "mallory@fabrikam.example").await;
        let code = url::Url::parse(&first_callback).expect("url").query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("code");
        let state = url::Url::parse(&second).expect("url").query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).expect("state");
        let swapped = app.url(&format!("/login/oidc/{}/callback?code={code}&state={state}", profile.slug));
        let res = app.client.get(&swapped).send().await.expect("swapped");
        assert_eq!(res.status().as_u16(), 403);
        assert!(audited(&app, "invalid_grant").await, "refused by PKCE");

        // The provider's own refusal is shown in words.
        let authorize = start(&app, &profile.slug).await;
        let state = url::Url::parse(&authorize).expect("url").query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).expect("state");
        let denied = app.url(&format!("/login/oidc/{}/callback?error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent&state={state}", profile.slug));
        let body = app.client.get(&denied).send().await.expect("denied").text().await.expect("body");
        assert!(body.contains("cancelled or refused at Microsoft") && body.contains("AADSTS65004"), "{body}");
    }
}

crate::db_test! {
    async fn the_provider_refuses_a_missing_pkce_verifier_and_a_reused_code(app) {
        let (provider, profile, client_id) = provider_for(&app, "PKCE").await;
        account(&provider, "sub-pat", "pat@pkce.example", serde_json::json!({ "oid": "oid-pat", "tid": TENANT })).await;
        let authorize = start(&app, &profile.slug).await;
        let callback = through_provider(&app, &provider, &authorize, "pat@pkce.example").await;
        let code = url::Url::parse(&callback).expect("url").query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("code");
        // Roster's own client, without the verifier: the provider says no.
        let client = oidc_client(&app, &profile, &provider.base, &client_id).await;
        let providers = roster::auth::oidc::Providers::new(roster::tls::client_config(None).expect("tls")).expect("providers");
        let refused = providers.finish(&client, &code, "any nonce", "").await.expect_err("no verifier");
        assert!(matches!(refused, roster::auth::oidc::OidcError::TokenEndpoint(_)), "{refused}");
        // With what Roster kept for this sign-in (its nonce and verifier), the code works
        // once; the provider refuses it the second time.
        let (nonce, verifier) = app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::oidc_logins;
            oidc_logins::table.select((oidc_logins::nonce, oidc_logins::pkce_verifier)).order(oidc_logins::id.desc()).first::<(String, String)>(c).expect("the sign-in in flight")
        }).await;
        let identity = providers.finish(&client, &code, &nonce, &verifier).await.expect("first use");
        assert_eq!(identity.subject, "oid-pat");
        let reused = providers.finish(&client, &code, &nonce, &verifier).await.expect_err("reused code");
        assert!(reused.to_string().contains("invalid_grant"), "{reused}");
    }
}

// Entra's multi-tenant discovery documents name the issuer with a literal `{tenantid}`:
// filled in with the profile's tenant, the tokens of that tenant are accepted.
crate::db_test! {
    async fn a_multi_tenant_discovery_document_is_filled_in_with_the_tenant(app) {
        let (fake, profile) = crate::entra::tenant(&app, "Multi", |_| {}).await;
        fake.set_multi_tenant_discovery(true);
        synchronised(&app, profile.id, "oid-mia", "mia@multi.example", true).await;
        fake.sign_in_as(IdClaims::new("oid-mia", "mia@multi.example", "Mia"));
        let client = app.new_client();
        let authorize = start(&client, &profile.slug).await;
        let res = client.client.get(&authorize).send().await.expect("authorize");
        let res = client.client.get(location(&res)).send().await.expect("callback");
        assert_eq!(res.status().as_u16(), 303);
        // Mia must use MFA (the profile's default): the half session opens only the code step.
        assert_eq!(location(&res), "/mfa");
        assert_eq!(client.get("/account").await.status().as_u16(), 303, "no page before the code");
    }
}

/// The OpenID client Roster makes of a profile (as `services::oidc` does).
async fn oidc_client(
    app: &TestApp,
    profile: &Profile,
    authority: &str,
    client_id: &str,
) -> roster::auth::oidc::Client {
    let id = profile.id;
    let master = app.master_key.clone();
    let key = app
        .conn(move |c| {
            let p = roster::db::models::directory_profiles::find(c, id)
                .expect("find")
                .expect("profile");
            let settings = roster::profiles::KindSettings::of(&p).expect("settings");
            roster::profiles::store::reveal(
                c,
                &master,
                &settings,
                roster::profiles::SecretSlot::CertificateKey,
            )
            .expect("reveal")
            .expect("key")
        })
        .await;
    let issuer = format!("{authority}/{TENANT}/v2.0");
    roster::auth::oidc::Client {
        discovery_url: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
        client_id: client_id.to_owned(),
        redirect_uri: app.url(&format!("/login/oidc/{}/callback", profile.slug)),
        auth: roster::auth::oidc::ClientAuth::Assertion {
            private_key_pem: key,
            certificate_pem: profile.certificate_pem.clone(),
        },
        rules: roster::auth::oidc::Rules::Entra {
            tenant: TENANT.to_owned(),
        },
        endpoint_hosts: &[],
    }
}

// A profile pointed at the Entra fake, one synchronised user, and the fake signing that
// user in: each tampering of the ID token must be refused.
crate::db_test! {
    async fn forged_and_tampered_id_tokens_are_refused(app) {
        let (fake, profile) = crate::entra::tenant(&app, "Tampered", |_| {}).await;
        let token = csrf_token_in(&app.get_html("/admin").await);
        app.client.post(app.url("/logout")).form(&[("csrf_token", token)]).send().await.expect("logout");
        synchronised(&app, profile.id, "oid-tom", "tom@tampered.example", false).await;
        let claims = IdClaims::new("oid-tom", "tom@tampered.example", "Tom");
        fake.sign_in_as(claims.clone());

        let sign_in = |tamper: Option<Tamper>| {
            let (app, fake, slug) = (&app, &fake, profile.slug.clone());
            async move {
                if let Some(t) = tamper {
                    fake.tamper_next_id_token(t);
                }
                let client = app.new_client();
                let authorize = start(&client, &slug).await;
                let res = client.client.get(&authorize).send().await.expect("authorize");
                assert!(res.status().is_redirection(), "the fake signs in at once");
                let callback = location(&res);
                assert!(callback.starts_with(&client.address), "{callback}");
                client.client.get(&callback).send().await.expect("callback").status().as_u16()
            }
        };
        assert_eq!(sign_in(None).await, 303, "an untampered token signs in");
        let other_tenant = "00000000-1111-4222-8333-444444444444";
        let cases = [
            (Tamper::Tenant(other_tenant.into()), "not the profile's"),
            (Tamper::Issuer(format!("{}/{other_tenant}/v2.0", fake.base_url())), "iss"),
            (Tamper::ExtraAudience("00000003-0000-0000-c000-000000000000".into()), "not a trusted audience"),
            (Tamper::Audience("another-client".into()), "aud"),
            (Tamper::Azp("another-client".into()), "azp"),
            (Tamper::UnknownKid, "kid"),
            (Tamper::AlgNone, "no signature"),
            (Tamper::HmacWithPublicKey, "HS256"),
            (Tamper::Expired, "expired"),
            (Tamper::NotYetValid, "nbf"),
            (Tamper::Nonce("replayed-nonce".into()), "nonce"),
        ];
        for (tamper, reason) in cases {
            let shown = format!("{tamper:?}");
            assert_eq!(sign_in(Some(tamper)).await, 403, "{shown} must be refused");
            let found = app.conn(move |c| {
                audit_events::recent(c, 1).expect("audit").first().map(|e| e.detail.clone()).unwrap_or_default()
            }).await;
            assert!(found.to_lowercase().contains(&reason.to_lowercase()), "{shown}: audited as {found}");
        }

        // The provider rotated its key: one fetch of the keys finds the new one.
        let fetched = fake.jwks_requests();
        fake.rotate_signing_key().await;
        assert_eq!(sign_in(None).await, 303, "the new key is fetched once");
        assert_eq!(fake.jwks_requests(), fetched + 1);
    }
}

// A hybrid organisation: the domain belongs to an Active Directory profile too. A typed
// password is checked at the directory as usual; an empty one goes to Microsoft.
crate::db_test! {
    async fn a_domain_shared_with_a_password_directory_routes_only_without_a_password(app) {
        let (_fake, profile) = crate::entra::tenant(&app, "Hybrid cloud", |_| {}).await;
        let mut ad = crate::profile_pages::slapd_profile_of(servers::slapd(), "Hybrid AD");
        crate::profile_pages::set(&mut ad, "domain", "hybrid.example");
        crate::profile_pages::set(&mut ad, "ignore_tls_errors", "on");
        crate::profile_pages::create(&app, &ad).await;
        synchronised(&app, profile.id, "oid-hal", "hal@hybrid.example", false).await;
        let client = app.new_client();
        let res = client.sign_in("someone@hybrid.example", "a password").await;
        assert_eq!(res.status().as_u16(), 401, "checked as a password");
        let res = client.sign_in("someone@hybrid.example", "").await;
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.headers().get("refresh").is_some(), "sent to Microsoft");
    }
}

// Two profiles of one tenant (scoped to different groups): a user synchronised by one
// signs in through the other's button too, by the same oid.
crate::db_test! {
    async fn a_user_of_another_profile_of_the_same_tenant_signs_in(app) {
        let (fake, first) = crate::entra::tenant(&app, "Sales", |_| {}).await;
        let second = entra_profile(&app, "Support", fake.base_url(), fake.base_url(), |_| {}).await;
        fake.register_app(TENANT, crate::entra::CLIENT_ID, &second.certificate_pem);
        synchronised(&app, second.id, "oid-sue", "sue@support.example", false).await;
        fake.sign_in_as(IdClaims::new("oid-sue", "sue@support.example", "Sue"));
        let client = app.new_client();
        let authorize = start(&client, &first.slug).await;
        let res = client.client.get(&authorize).send().await.expect("authorize");
        let res = client.client.get(location(&res)).send().await.expect("callback");
        assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap_or_default());
    }
}

// Anyone can begin a sign-in: what Roster keeps for them is bounded per browser and per
// address, and answers with states Roster never issued leave no audit rows behind.
crate::db_test! {
    async fn sign_ins_in_flight_are_bounded_and_stray_answers_write_nothing(app) {
        let (_fake, profile) = crate::entra::tenant(&app, "Bounded", |_| {}).await;
        let rows = || app.conn(|c| {
            use diesel::prelude::*;
            roster::db::schema::oidc_logins::table.count().get_result::<i64>(c).expect("count")
        });
        let browser = app.new_client();
        for _ in 0..8 {
            start(&browser, &profile.slug).await;
        }
        assert_eq!(rows().await, 5, "one browser keeps five");
        for _ in 0..60 {
            start(&app.new_client(), &profile.slug).await;
        }
        assert_eq!(rows().await, 50, "one address keeps fifty");
        let audit_rows = || app.conn(|c| audit_events::recent(c, 10_000).expect("audit").len());
        let before = audit_rows().await;
        for i in 0..20 {
            let res = browser.get(&format!("/login/oidc/{}/callback?code=x&state=forged-{i}", profile.slug)).await;
            assert_eq!(res.status().as_u16(), 403);
        }
        assert_eq!(audit_rows().await, before, "no audit row for a state Roster never issued");
    }
}

// The code exchange is a remote call like any other: a token endpoint that stalls, cuts its
// answer off or answers garbage refuses the sign-in (within the OpenID client's timeout).
crate::db_test! {
    async fn a_token_endpoint_that_stalls_cuts_off_or_lies_refuses_the_sign_in(app) {
        use crate::support::entra::{Fault, Route};
        let (fake, profile) = crate::entra::tenant(&app, "Flaky", |_| {}).await;
        synchronised(&app, profile.id, "oid-flo", "flo@flaky.example", false).await;
        fake.sign_in_as(IdClaims::new("oid-flo", "flo@flaky.example", "Flo"));
        for (fault, words) in [
            (Fault::Garbage, "could not be read"),
            (Fault::CutOff, "could not be read"),
            (Fault::Stall, "did not arrive"),
        ] {
            let shown = format!("{fault:?}");
            let client = app.new_client();
            let authorize = start(&client, &profile.slug).await;
            let res = client.client.get(&authorize).send().await.expect("authorize");
            fake.fault(Route::Token, 0, fault);
            let started = std::time::Instant::now();
            let res = client.client.get(location(&res)).send().await.expect("callback");
            assert_eq!(res.status().as_u16(), 403, "{shown}");
            let body = res.text().await.expect("body");
            assert!(body.contains(words), "{shown}: {body}");
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "{shown}: bounded");
            assert_eq!(client.get("/account").await.status().as_u16(), 303, "{shown}: not signed in");
            fake.clear_faults();
        }
    }
}
