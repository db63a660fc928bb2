//! Real headless Chromium: what an administrator actually sees and clicks.

use fantoccini::Locator;

use crate::support::app::{ADMIN_PASSWORD, Backend, spawn_app};
use crate::support::browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_signs_in_opens_users_and_searches_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    app.sign_in_as_admin().await;
    for (name, full) in [
        ("alice", "Alice Archer"),
        ("bob", "Bob Baker"),
        ("carol", "Carol Clark"),
    ] {
        let res = app
            .post_form(
                "/admin/users/new",
                "/admin/users",
                &[
                    ("username", name),
                    ("full_name", full),
                    ("emails", &format!("{name}@example.test")),
                    ("password", "a long enough password"),
                    ("password_confirm", "a long enough password"),
                    ("privilege", "log_on"),
                ],
            )
            .await;
        assert_eq!(res.status().as_u16(), 303);
    }

    let b = browser::open().await;
    b.client.goto(&app.url("/admin/users")).await.expect("goto");
    // Not signed in: sent to the sign-in page, which comes back here afterwards.
    b.wait_for_text("h1", "Sign in").await;
    b.screenshot("01-sign-in").await;
    b.fill("#username", "admin").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("#users-results", "Showing 1–4 of 4 users")
        .await;
    b.screenshot("02-users").await;

    // Typing searches live (htmx), without a page load.
    b.client
        .find(Locator::Css("#users-q"))
        .await
        .expect("search box")
        .send_keys("BAKER")
        .await
        .expect("type");
    let results = b.wait_for_text("#users-results", "matching “BAKER”").await;
    assert!(
        results.contains("bob") && !results.contains("alice"),
        "{results}"
    );
    let url = b.client.current_url().await.expect("url");
    assert!(url.as_str().ends_with("/admin/users?q=BAKER"), "{url}");
    b.screenshot("03-users-search").await;

    b.client
        .find(Locator::LinkText("bob"))
        .await
        .expect("bob link")
        .click()
        .await
        .expect("click");
    b.wait_for_text("h1", "bob").await;
    assert!(b.text_of("dl.facts").await.contains("Bob Baker"));
    b.screenshot("04-user-detail").await;

    b.close().await;
}
