//! Real headless Chromium, Google Workspace end to end: an admin creates a profile with the
//! service-account key file, pointed at the local Google fake (token endpoint and Directory
//! API) and at the real OpenID provider for sign-in, tests the connection, synchronises; a
//! synchronised user signs in with Google through the provider's login page (a token whose
//! `sub` is their Directory id and `hd` the domain) and Roster's TOTP step.

use fantoccini::Locator;

use crate::google::{ADMIN, DOMAIN, uid};
use crate::support::app::{Backend, spawn_app};
use crate::support::browser;
use crate::support::google::{DirectoryGroup, DirectoryUser, GoogleFake, GroupMember};
use crate::support::servers;

/// Waits (up to 10 s) until `done` says so.
async fn wait_until<F: std::future::Future<Output = bool>>(done: impl Fn() -> F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "waited 10 s in vain");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sets_up_google_and_a_user_signs_in_with_google_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let fake = GoogleFake::start().await;
    fake.set_domain(DOMAIN);
    let mut admin = DirectoryUser::new(&uid(999), ADMIN, "Ada Admin");
    admin.is_admin = true;
    let gina = DirectoryUser::new(&uid(1), "gina@acme.example", "Gina Example");
    fake.set_users(vec![admin, gina.clone()]);
    fake.set_groups(vec![DirectoryGroup::new(
        "03sales001",
        "sales@acme.example",
        "Sales",
        vec![GroupMember::User(gina.id.clone())],
    )]);
    let account = fake.new_service_account("roster@acme-project.iam.gserviceaccount.com");
    let key_file = std::env::temp_dir().join(format!("roster-key-{}.json", std::process::id()));
    std::fs::write(&key_file, &account.key_json).expect("key file");
    let oidc = servers::oidc();
    let issuer = oidc.fact("ISSUER").to_owned();

    let b = browser::open().await;
    b.sign_in_as_admin(&app.address).await;
    b.client
        .goto(&app.url("/admin/profiles/new?kind=google_workspace"))
        .await
        .expect("goto");
    b.wait_for_text("h1", "New Google Workspace profile").await;

    // The OAuth client is registered with the redirect URI the form shows.
    let redirect_uri = b.value_of("OpenID redirect URI").await;
    assert!(redirect_uri.starts_with(&app.address), "{redirect_uri}");
    let client_id = format!(
        "{}.apps.googleusercontent.com",
        roster::crypto::random_token()
    );
    let registered: serde_json::Value = reqwest::Client::new()
        .post(format!("{issuer}/reg"))
        .json(&serde_json::json!({
            "client_id": client_id, "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code"], "response_types": ["code"],
        }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let secret = registered["client_secret"].as_str().expect("secret");
    let body = serde_json::json!({ "sub": gina.id, "login": "gina@acme.example", "password": "gina's password",
        "claims": { "email": "gina@acme.example", "email_verified": true, "hd": DOMAIN, "name": "Gina Example" } });
    let res = reqwest::Client::new()
        .post(format!("{issuer}/__test/accounts"))
        .json(&body)
        .send()
        .await
        .expect("account");
    assert_eq!(res.status().as_u16(), 201);

    b.fill_labelled("Name", "Acme").await;
    b.fill_labelled("Domain", DOMAIN).await;
    b.fill_labelled("Admin user name", ADMIN).await;
    // The key file is read into the form, as the admin would pick it.
    b.client
        .find(Locator::Css("input[data-file-into='service_account_key']"))
        .await
        .expect("file input")
        .send_keys(&key_file.display().to_string())
        .await
        .expect("pick the key file");
    wait_until(|| async {
        b.value_of("Service-account key (JSON)")
            .await
            .contains("service_account")
    })
    .await;
    b.fill_labelled("OpenID client ID", &client_id).await;
    b.fill_labelled("OpenID client secret", secret).await;
    b.fill_labelled("Token URL (advanced)", &fake.token_url())
        .await;
    b.fill_labelled("Directory API URL (advanced)", fake.base_url())
        .await;
    b.fill_labelled("OpenID issuer (advanced)", &issuer).await;
    b.screenshot("30-google-new").await;
    b.click_button("Test connection").await;
    let result = b
        .wait_for_text("#profile-dialog", "Connection succeeded")
        .await;
    assert!(result.contains("acting as admin@acme.example"), "{result}");
    b.screenshot("31-google-test-connection").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    b.click_button("Choose groups…").await;
    b.wait_for_text("#profile-dialog", "Sales").await;
    b.click("#group-list input[value='Sales']").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    assert_eq!(b.value_of("Groups to synchronise").await, "Sales");
    b.click("#profile-main-form button[type=submit]:not([formaction])")
        .await;
    b.wait_for_text("h1", "Edit Acme").await;
    b.click(".sync-actions button:not(.secondary)").await;
    let page = b.wait_for_text("#run", "Synchronisation finished").await;
    assert!(page.contains("1 created"), "only Sales' member: {page}");
    b.screenshot("32-google-synchronised").await;
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("h1", "Sign in").await;

    // Gina signs in with Google: the provider's login page, then Roster's TOTP step.
    b.click_button("Sign in with Acme").await;
    wait_until(|| async {
        b.client
            .current_url()
            .await
            .is_ok_and(|u| u.as_str().starts_with(&issuer))
    })
    .await;
    b.wait_for_text("h1", "Sign in").await;
    b.fill("input[name=login]", "gina@acme.example").await;
    b.fill("input[name=password]", "gina's password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("h1", "Set up two-step sign-in").await;
    let secret = b.totp_key().await;
    let totp = roster::auth::totp::totp(&secret, "gina").expect("totp");
    crate::support::clear_of_totp_step_boundary(8).await;
    b.fill(
        "#code",
        &totp.generate(roster::db::now() as u64).to_string(),
    )
    .await;
    b.click("button[type=submit]").await;
    b.wait_for_text("h1", "Save your recovery codes").await;
    b.codes_saved_continue().await;
    b.wait_for_text("main", "gina@acme.example").await;
    assert_eq!(
        b.client.current_url().await.expect("url").path(),
        "/account"
    );
    b.screenshot("33-google-signed-in").await;
    b.close().await;
    let _ = std::fs::remove_file(key_file);
}
