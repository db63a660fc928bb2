//! Real headless Chromium, the HTTP kinds end to end: an admin creates an Application
//! Integration and an IceWarp profile pointed at their local fakes (over HTTPS, each
//! certificate pasted as the trusted one), tests the connection, picks a group or a
//! domain, synchronises; a synchronised user signs in with the password the server checks.

use crate::support::app::{Backend, spawn_app};
use crate::support::app_integration::{AppGroup, AppIntegrationFake, AppUser};
use crate::support::browser;
use crate::support::icewarp::{Account, IceWarpFake};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sets_up_application_integration_and_a_user_signs_in_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let fake = AppIntegrationFake::start_tls().await;
    fake.require_basic("roster", "roster's password");
    let mut dora = AppUser::new("dora", "Dora Example", &["dora@mailstore.example"]);
    dora.password = Some("dora's password".into());
    let mut eli = AppUser::new("eli", "Eli Other", &["eli@mailstore.example"]);
    eli.password = Some("eli's password".into());
    fake.set_users(vec![dora, eli]);
    fake.set_groups(Some(vec![
        AppGroup::new("Sales", "", &["dora"]),
        AppGroup::new("Operations", "", &["eli"]),
    ]));

    let b = browser::open().await;
    b.sign_in_as_admin(&app.address).await;
    b.client
        .goto(&app.url("/admin/profiles/new?kind=application_integration"))
        .await
        .expect("goto");
    b.wait_for_text("h1", "New Application Integration profile")
        .await;
    b.fill_labelled("Name", "MailStore").await;
    b.fill_labelled("URL", &fake.url()).await;
    b.fill_labelled(
        "Trusted certificate (PEM)",
        fake.certificate_pem().expect("https"),
    )
    .await;
    b.click("#requires_auth").await;
    b.fill_labelled("User name", "roster").await;
    b.fill_labelled("Password", "roster's password").await;
    // MFA by default is on for new profiles; this user signs in with the password only.
    b.click("input[name=mfa_by_default]").await;
    b.click_button("Test connection").await;
    let result = b
        .wait_for_text("#profile-dialog", "Connection succeeded")
        .await;
    assert!(result.contains("offers groups"), "{result}");
    b.screenshot("40-app-integration-test-connection").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    b.click_button("Choose groups…").await;
    b.wait_for_text("#profile-dialog", "Sales").await;
    b.click("#group-list input[value='Sales']").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    assert_eq!(b.value_of("Groups to synchronise").await, "Sales");
    b.click("#profile-main-form button[type=submit]:not([formaction])")
        .await;
    b.wait_for_text("h1", "Edit MailStore").await;
    b.click(".sync-actions button:not(.secondary)").await;
    let page = b.wait_for_text("#run", "Synchronisation finished").await;
    assert!(page.contains("1 created"), "only Sales' member: {page}");
    b.screenshot("41-app-integration-synchronised").await;
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("h1", "Sign in").await;

    b.fill("#username", "dora").await;
    b.fill("#password", "dora's password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("main", "Dora Example").await;
    b.screenshot("42-app-integration-signed-in").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sets_up_icewarp_picks_a_domain_and_a_user_signs_in_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let fake = IceWarpFake::start().await;
    fake.admin("admin@ice.example", "admin's password");
    fake.upsert_account(Account::user(
        "fay@ice.example",
        "Fay Example",
        "fay's password",
    ));
    fake.upsert_account(Account::user(
        "gus@snow.example",
        "Gus Other",
        "gus's password",
    ));
    fake.upsert_account(Account::group(
        "crew@ice.example",
        "Crew",
        &["fay@ice.example"],
    ));

    let b = browser::open().await;
    b.sign_in_as_admin(&app.address).await;
    b.client
        .goto(&app.url("/admin/profiles/new?kind=icewarp"))
        .await
        .expect("goto");
    b.wait_for_text("h1", "New IceWarp Server profile").await;
    b.fill_labelled("Name", "IceWarp").await;
    b.fill_labelled("Server name", &fake.server()).await;
    b.fill_labelled("Trusted certificate (PEM)", &fake.certificate_pem())
        .await;
    b.fill_labelled("Admin user name", "admin@ice.example")
        .await;
    b.fill_labelled("Password", "admin's password").await;
    b.click("input[name=mfa_by_default]").await;
    b.click_button("Test connection").await;
    let result = b
        .wait_for_text("#profile-dialog", "Connection succeeded")
        .await;
    assert!(result.contains("2 domain(s)"), "{result}");
    b.screenshot("43-icewarp-test-connection").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    b.click_button("Choose groups…").await;
    b.wait_for_text("#profile-dialog", "crew@ice.example").await;
    b.click("#group-list input[value='ice.example']").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    assert_eq!(
        b.value_of("Domains and groups to synchronise").await,
        "ice.example"
    );
    b.click("#profile-main-form button[type=submit]:not([formaction])")
        .await;
    b.wait_for_text("h1", "Edit IceWarp").await;
    b.click(".sync-actions button:not(.secondary)").await;
    let page = b.wait_for_text("#run", "Synchronisation finished").await;
    assert!(
        page.contains("2 created"),
        "the admin and fay, not gus: {page}"
    );
    b.screenshot("44-icewarp-synchronised").await;
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("h1", "Sign in").await;

    b.fill("#username", "fay@ice.example").await;
    b.fill("#password", "fay's password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("main", "Fay Example").await;
    b.screenshot("45-icewarp-signed-in").await;
    b.close().await;
}
