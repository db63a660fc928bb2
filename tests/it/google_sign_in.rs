//! "Sign in with Google": the authorization-code flow against the real `oidc-provider`
//! with Google-shaped claims (`hd`, `email_verified`) and a client secret, Google's
//! refusals (another domain, an unverified address, an unsynchronised `sub`, never linked
//! by e-mail), and the forged and tampered tokens from the local Google fake, which also
//! proves the token's `sub` is the Directory id Roster synchronised. Both backends.

use roster::sync::{self, Trigger};

use crate::entra_sign_in::{Provider, audited, start, synchronised, through_provider};
use crate::google::{ADMIN, CLIENT_ID, CLIENT_SECRET, DOMAIN, google_fields, google_profile, uid};
use crate::profile_pages::set;
use crate::support::app::{TestApp, csrf_token_in, location};
use crate::support::google::{DirectoryUser, GoogleClaims, GoogleFake, Tamper};
use crate::support::servers;

/// A fresh client id at the shared provider's Google-shaped (root) instance, registered
/// for a new profile's redirect URI with `client_secret_post`, and that profile. The admin
/// is signed out afterwards.
async fn provider_for(app: &TestApp, name: &str) -> (Provider, crate::google::Profile) {
    let oidc = servers::oidc();
    let base = oidc.fact("ISSUER").to_owned();
    app.sign_in_as_admin().await;
    let form = app
        .get_html("/admin/profiles/new?kind=google_workspace")
        .await;
    let slug = form
        .split("name=\"redirect_slug\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("slug")
        .to_owned();
    let client_id = format!(
        "{}.apps.googleusercontent.com",
        roster::crypto::random_token()
    );
    let redirect = app.url(&format!("/login/oidc/{slug}/callback"));
    let registration = serde_json::json!({
        "client_id": client_id,
        "redirect_uris": [redirect],
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    });
    let res = reqwest::Client::new()
        .post(format!("{base}/reg"))
        .json(&registration)
        .send()
        .await
        .expect("register");
    assert_eq!(res.status().as_u16(), 201);
    let registered: serde_json::Value = res.json().await.expect("json");
    let secret = registered["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();

    let fake = GoogleFake::start().await;
    let account = fake.new_service_account("signin@acme-project.iam.gserviceaccount.com");
    let mut fields = google_fields(name, &fake, &account);
    set(&mut fields, "oidc_client_id", &client_id);
    set(&mut fields, "oidc_client_secret", &secret);
    set(&mut fields, "oidc_issuer", &base);
    set(&mut fields, "redirect_slug", &slug);
    set(&mut fields, "mfa_by_default", "");
    let profile = google_profile(app, fields).await;
    let token = csrf_token_in(&app.get_html("/admin").await);
    app.client
        .post(app.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .expect("logout");
    (
        Provider {
            issuer: base.clone(),
            base,
        },
        profile,
    )
}

async fn account(provider: &Provider, sub: &str, login: &str, claims: serde_json::Value) {
    let body =
        serde_json::json!({ "sub": sub, "login": login, "password": "pw", "claims": claims });
    let res = reqwest::Client::new()
        .post(format!("{}/__test/accounts", provider.base))
        .json(&body)
        .send()
        .await
        .expect("account");
    assert_eq!(res.status().as_u16(), 201);
}

/// The token's claims of a Workspace user.
fn workspace_claims(email: &str, hd: Option<&str>, verified: bool) -> serde_json::Value {
    let mut claims =
        serde_json::json!({ "email": email, "email_verified": verified, "name": "Someone" });
    if let Some(hd) = hd {
        claims["hd"] = hd.into();
    }
    claims
}

crate::db_test! {
    async fn sign_in_with_google_through_the_real_provider(app) {
        let (provider, profile) = provider_for(&app, "Acme").await;
        let id = uid(1);
        account(&provider, &id, "alice@acme.example", workspace_claims("alice@acme.example", Some(DOMAIN), true)).await;
        synchronised(&app, profile.id, &id, "alice@acme.example", false).await;

        let login_page = app.get_html("/login").await;
        assert!(login_page.contains("Sign in with Acme"), "{login_page}");
        // Typing the address goes to Google with the name and the domain as hints.
        let token = csrf_token_in(&login_page);
        let res = app.client.post(app.url("/login")).form(&[("csrf_token", token.as_str()), ("username", "alice@acme.example"), ("password", ""), ("next", "/account")]).send().await.expect("login");
        assert_eq!(res.status().as_u16(), 200);
        let authorize = res.headers().get("refresh").and_then(|v| v.to_str().ok()).and_then(|v| v.split_once("url=")).map(|(_, u)| u.to_owned()).expect("refresh");
        assert!(authorize.starts_with(&provider.issuer), "{authorize}");
        for part in ["code_challenge_method=S256", "nonce=", "state=", "login_hint=alice%40acme.example", "hd=acme.example"] {
            assert!(authorize.contains(part), "{part} in {authorize}");
        }
        let callback = through_provider(&app, &provider, &authorize, "alice@acme.example").await;
        let res = app.client.get(&callback).send().await.expect("callback");
        assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap_or_default());
        assert_eq!(location(&res), "/account");
        assert!(app.get_html("/account").await.contains("alice@acme.example"));
        assert!(audited(&app, "with Google").await);
    }
}

crate::db_test! {
    async fn google_sign_in_refuses_other_domains_unverified_addresses_and_unsynchronised_users(app) {
        let (provider, profile) = provider_for(&app, "Refusing").await;
        // Synchronised, but the provider's token says another hosted domain, or none (a
        // personal account), or an unverified address: all refused.
        let cases = [
            (uid(10), "eve@acme.example", workspace_claims("eve@acme.example", Some("evil.example"), true), "not the profile's domain"),
            (uid(11), "gmail@acme.example", workspace_claims("someone@gmail.com", None, true), "not the profile's domain"),
            (uid(12), "unverified@acme.example", workspace_claims("unverified@acme.example", Some(DOMAIN), false), "email_verified"),
        ];
        for (id, login, claims, reason) in cases {
            account(&provider, &id, login, claims).await;
            synchronised(&app, profile.id, &id, login, false).await;
            let client = app.new_client();
            let authorize = start(&client, &profile.slug).await;
            let callback = through_provider(&client, &provider, &authorize, login).await;
            let res = client.client.get(&callback).send().await.expect("callback");
            assert_eq!(res.status().as_u16(), 403, "{login}");
            let found = app.conn(|c| roster::db::models::audit_events::recent(c, 1).expect("audit")[0].detail.clone()).await;
            assert!(found.contains(reason), "{login}: {found}");
        }

        // Never linked by e-mail: a synchronised user has the token's address, another id.
        synchronised(&app, profile.id, &uid(20), "mallory@acme.example", false).await;
        account(&provider, &uid(21), "mallory@acme.example", workspace_claims("mallory@acme.example", Some(DOMAIN), true)).await;
        let authorize = start(&app, &profile.slug).await;
        let callback = through_provider(&app, &provider, &authorize, "mallory@acme.example").await;
        let res = app.client.get(&callback).send().await.expect("callback");
        assert_eq!(res.status().as_u16(), 403);
        assert!(res.text().await.expect("body").contains("has not been synchronised"));
        assert_eq!(app.get("/account").await.status().as_u16(), 303, "not signed in");
    }
}

/// A Workspace at the Google fake (Directory API and sign-in), synchronised by a real run,
/// and its profile; the admin is signed out.
async fn synchronised_workspace(
    app: &TestApp,
) -> (GoogleFake, crate::google::Profile, DirectoryUser) {
    app.sign_in_as_admin().await;
    let fake = GoogleFake::start().await;
    fake.set_domain(DOMAIN);
    let mut admin = DirectoryUser::new(&uid(999), ADMIN, "Ada Admin");
    admin.is_admin = true;
    fake.upsert_user(admin);
    let tom = DirectoryUser::new(&uid(7), "tom@acme.example", "Tom Thumb");
    fake.upsert_user(tom.clone());
    let account = fake.new_service_account("tamper@acme-project.iam.gserviceaccount.com");
    let mut fields = google_fields("Tampered", &fake, &account);
    set(&mut fields, "mfa_by_default", "");
    let profile = google_profile(app, fields).await;
    fake.register_oauth_client(
        CLIENT_ID,
        CLIENT_SECRET,
        &[&app.url(&format!("/login/oidc/{}/callback", profile.slug))],
    );
    let run = sync::run(
        &crate::sync::context(app),
        profile.id,
        Trigger::Cli,
        "test",
        false,
    )
    .await
    .expect("run");
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let token = csrf_token_in(&app.get_html("/admin").await);
    app.client
        .post(app.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .expect("logout");
    (fake, profile, tom)
}

// The fake signs in the Directory user it synchronised: its token's `sub` is that user's
// Directory id, and that is who Roster signs in. Each tampering must be refused.
crate::db_test! {
    async fn google_tokens_name_the_directory_id_and_tampered_ones_are_refused(app) {
        let (fake, profile, tom) = synchronised_workspace(&app).await;
        fake.sign_in_as(GoogleClaims::of(&tom));
        let sign_in = |tamper: Vec<Tamper>| {
            let (app, fake, slug) = (&app, &fake, profile.slug.clone());
            async move {
                for t in tamper {
                    fake.tamper_next_id_token(t);
                }
                let client = app.new_client();
                let authorize = start(&client, &slug).await;
                let res = client.client.get(&authorize).send().await.expect("authorize");
                assert!(res.status().is_redirection(), "the fake signs in at once");
                let callback = location(&res);
                assert!(callback.starts_with(&client.address), "{callback}");
                let res = client.client.get(&callback).send().await.expect("callback");
                let status = res.status().as_u16();
                let signed_in_as = if status == 303 { client.get_html("/account").await } else { String::new() };
                (status, signed_in_as)
            }
        };
        let (status, page) = sign_in(vec![]).await;
        assert_eq!(status, 303, "an untampered token signs in");
        assert!(page.contains("tom@acme.example"), "the sub is the Directory id Roster synchronised");
        assert_eq!(GoogleClaims::of(&tom).sub, tom.id);

        // Google also writes the issuer without its scheme: accepted, signature checked.
        let bare = fake.base_url().trim_start_matches("http://").to_owned();
        assert_eq!(sign_in(vec![Tamper::Issuer(bare.clone())]).await.0, 303, "iss without scheme");
        assert_eq!(sign_in(vec![Tamper::Issuer(bare), Tamper::BadSignature]).await.0, 403, "…but signed");

        let cases = [
            (Tamper::Issuer("https://accounts.google.com.evil.example".into()), "iss"),
            (Tamper::ExtraAudience("another-client.apps.googleusercontent.com".into()), "not a trusted audience"),
            (Tamper::Audience("another-client".into()), "aud"),
            (Tamper::Azp("another-client".into()), "azp"),
            (Tamper::UnknownKid, "kid"),
            (Tamper::AlgNone, "no signature"),
            (Tamper::HmacWithPublicKey, "HS256"),
            (Tamper::Expired, "expired"),
            (Tamper::Nonce("replayed-nonce".into()), "nonce"),
            (Tamper::Claim("hd".into(), "evil.example".into()), "not the profile's domain"),
            (Tamper::Claim("hd".into(), serde_json::Value::Null), "not the profile's domain"),
            (Tamper::Claim("email_verified".into(), false.into()), "email_verified"),
            (Tamper::Claim("sub".into(), uid(404).into()), "no synchronised user"),
        ];
        for (tamper, reason) in cases {
            let shown = format!("{tamper:?}");
            assert_eq!(sign_in(vec![tamper]).await.0, 403, "{shown} must be refused");
            let found = app.conn(|c| roster::db::models::audit_events::recent(c, 1).expect("audit").first().map(|e| e.detail.clone()).unwrap_or_default()).await;
            assert!(found.to_lowercase().contains(&reason.to_lowercase()), "{shown}: audited as {found}");
        }

        // Google rotated its keys: one fetch of the keys finds the new one.
        let fetched = fake.jwks_requests();
        fake.rotate_signing_key().await;
        assert_eq!(sign_in(vec![]).await.0, 303, "the new key is fetched once");
        assert_eq!(fake.jwks_requests(), fetched + 1);
    }
}
