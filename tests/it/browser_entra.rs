//! Real headless Chromium, Microsoft Entra ID end to end: an admin creates a profile
//! pointed at the local Entra fake, tests the connection, picks a group, synchronises; a
//! synchronised user signs in with Microsoft through the provider's login page and
//! Roster's TOTP step.

use crate::entra::{CLIENT_ID, TENANT};
use crate::support::app::{Backend, spawn_app};
use crate::support::browser;
use crate::support::entra::{EntraFake, GraphGroup, GraphUser, IdClaims, Member};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sets_up_entra_and_a_user_signs_in_with_microsoft_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let fake = EntraFake::start().await;
    fake.set_users(vec![
        GraphUser::member("oid-erin", "erin@contoso.example", "Erin Example"),
        GraphUser::member("oid-finn", "finn@contoso.example", "Finn Other"),
    ]);
    fake.set_groups(vec![
        GraphGroup::new("g-sales", "Sales", vec![Member::User("oid-erin".into())]),
        GraphGroup::new("g-ops", "Operations", vec![Member::User("oid-finn".into())]),
    ]);

    let b = browser::open().await;
    b.sign_in_as_admin(&app.address).await;
    b.client
        .goto(&app.url("/admin/profiles/new?kind=entra_id"))
        .await
        .expect("goto");
    b.wait_for_text("h1", "New Microsoft Entra ID profile")
        .await;
    b.fill_labelled("Name", "Contoso").await;
    b.fill_labelled("Application (client) ID", CLIENT_ID).await;
    b.fill_labelled("Directory (tenant) ID", TENANT).await;
    b.fill_labelled("Sign-in authority (advanced)", fake.base_url())
        .await;
    b.fill_labelled("Microsoft Graph URL (advanced)", fake.base_url())
        .await;
    b.screenshot("20-entra-new").await;
    b.click("#profile-main-form button[type=submit]:not([formaction])")
        .await;
    b.wait_for_text("h1", "Edit Contoso").await;

    // The certificate was made on save: the admin uploads it to the app registration.
    let certificate = app
        .conn(|c| {
            let p = roster::db::models::directory_profiles::list(c, "", false)
                .expect("list")
                .remove(0);
            match roster::profiles::KindSettings::of(&p).expect("settings") {
                roster::profiles::KindSettings::Entra(s) => s.certificate_pem,
                other => panic!("{other:?}"),
            }
        })
        .await;
    fake.register_app(TENANT, CLIENT_ID, &certificate);

    b.click_button("Test connection").await;
    let result = b
        .wait_for_text("#profile-dialog", "Connection succeeded")
        .await;
    assert!(result.contains(TENANT), "{result}");
    b.screenshot("21-entra-test-connection").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    b.click_button("Choose groups…").await;
    b.wait_for_text("#profile-dialog", "Sales").await;
    b.click("#group-list input[value='Sales']").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    assert_eq!(b.value_of("Groups to synchronise").await, "Sales");
    b.click("#profile-main-form button[type=submit]:not([formaction])")
        .await;
    b.wait_for_text("h1", "Edit Contoso").await;
    b.click(".sync-actions button:not(.secondary)").await;
    let page = b.wait_for_text("#run", "Synchronisation finished").await;
    assert!(page.contains("1 created"), "only Sales' member: {page}");
    b.screenshot("22-entra-synchronised").await;
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("h1", "Sign in").await;

    // Erin signs in with Microsoft: the fake's login page, then Roster's TOTP step.
    fake.require_login(
        "erin@contoso.example",
        "erin's password",
        IdClaims::new("oid-erin", "erin@contoso.example", "Erin Example"),
    );
    b.click_button("Sign in with Contoso").await;
    b.wait_for_text("h1", "Sign in to Microsoft").await;
    b.screenshot("23-entra-provider-login").await;
    b.fill("#login", "erin@contoso.example").await;
    b.fill("#password", "erin's password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("h1", "Set up two-step sign-in").await;
    let secret = b.totp_key().await;
    let totp = roster::auth::totp::totp(&secret, "erin").expect("totp");
    crate::support::clear_of_totp_step_boundary(8).await;
    b.fill(
        "#code",
        &totp.generate(roster::db::now() as u64).to_string(),
    )
    .await;
    b.click("button[type=submit]").await;
    b.wait_for_text("h1", "Save your recovery codes").await;
    b.codes_saved_continue().await;
    b.wait_for_text("main", "erin@contoso.example").await;
    assert_eq!(
        b.client.current_url().await.expect("url").path(),
        "/account"
    );
    b.screenshot("24-entra-signed-in").await;

    // Next time: typing the address on the usual form goes to Microsoft too.
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("h1", "Sign in").await;
    b.fill("#username", "erin@contoso.example").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("h1", "Sign in to Microsoft").await;
    b.close().await;
}
