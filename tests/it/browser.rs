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
    assert!(
        url.as_str().contains("/admin/users?q=BAKER"),
        "the search is in the address: {url}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_an_ldap_profile_tests_it_picks_groups_and_renames_it_in_chromium() {
    let app = crate::support::app::spawn_app_with(
        Backend::Sqlite,
        crate::profile_pages::trust_directories,
    )
    .await;
    let slapd = crate::support::servers::slapd();
    let server = slapd
        .fact("LDAP_URL")
        .trim_start_matches("ldap://")
        .trim_end_matches('/')
        .to_owned();

    let b = browser::open().await;
    b.sign_in_as_admin(&app.address).await;
    b.client
        .goto(&app.url("/admin/profiles"))
        .await
        .expect("goto");
    b.wait_for_text("#profiles-results", "No directory profiles yet")
        .await;
    b.client
        .find(Locator::LinkText("New profile"))
        .await
        .expect("New profile")
        .click()
        .await
        .expect("click");
    b.client
        .find(Locator::LinkText("Generic LDAP"))
        .await
        .expect("type choice")
        .click()
        .await
        .expect("click");
    b.wait_for_text("h1", "New Generic LDAP profile").await;

    // Switching the type swaps the fields and discards what was typed in them.
    b.fill_labelled("Server", "typed-before-switch.example.com")
        .await;
    b.field("Type")
        .await
        .select_by_label("Active Directory")
        .await
        .expect("choose AD");
    b.wait_for_text("#kind-fields", "Bind user").await;
    b.field("Type")
        .await
        .select_by_label("Generic LDAP")
        .await
        .expect("choose LDAP");
    b.wait_for_text("#kind-fields", "User filter").await;
    assert_eq!(
        b.value_of("Server").await,
        "",
        "old type's fields discarded"
    );
    assert_eq!(
        b.value_of("User filter").await,
        "(objectClass=inetOrgPerson)"
    );

    b.fill_labelled("Name", "Main LDAP").await;
    b.fill_labelled("Server", &server).await;
    b.fill_labelled("Domain", "example.test").await;
    b.fill_labelled("Bind DN", slapd.fact("BIND_DN")).await;
    b.fill_labelled("Bind password", slapd.fact("BIND_PASSWORD"))
        .await;
    b.fill_labelled("Base DN", slapd.fact("BASE_DN")).await;
    b.screenshot("05-profile-new").await;

    // Test connection opens a dialog with the real round trip.
    b.client
        .find(Locator::XPath(
            "//button[normalize-space(.)='Test connection']",
        ))
        .await
        .expect("Test connection")
        .click()
        .await
        .expect("click");
    let result = b
        .wait_for_text("#profile-dialog", "Connection succeeded")
        .await;
    assert!(
        result.contains("Users matching the filter 3") || result.contains("3"),
        "{result}"
    );
    b.screenshot("06-profile-test-connection").await;
    b.click("#profile-dialog [data-close-dialog]").await;

    // The group picker asks slapd; ticking groups fills the comma-separated list.
    b.client
        .find(Locator::XPath(
            "//button[normalize-space(.)='Choose groups…']",
        ))
        .await
        .expect("Choose groups")
        .click()
        .await
        .expect("click");
    b.wait_for_text("#profile-dialog", "staff").await;
    for group in ["staff", "admins"] {
        b.click(&format!("#group-list input[value='{group}']"))
            .await;
    }
    b.screenshot("07-profile-groups").await;
    b.click("#profile-dialog [data-close-dialog]").await;
    assert_eq!(b.value_of("Groups to synchronise").await, "staff, admins");

    b.click("#profile-main-form button[type=submit]:not([formaction])")
        .await;
    b.wait_for_text("h1", "Edit Main LDAP").await;

    // Edit: the type cannot be changed; the name can.
    let type_field = b.field("Type").await;
    assert_eq!(
        type_field.attr("disabled").await.expect("attr").as_deref(),
        Some("true")
    );
    assert!(
        b.client
            .find(Locator::Css("select[name=kind]"))
            .await
            .is_err(),
        "no type control is submitted on edit"
    );
    b.fill_labelled("Name", "Directory LDAP").await;
    b.screenshot("08-profile-edit").await;
    b.click("#profile-main-form button[type=submit]:not([formaction])")
        .await;
    b.wait_for_text("h1", "Edit Directory LDAP").await;
    b.client
        .goto(&app.url("/admin/profiles"))
        .await
        .expect("goto");
    let list = b.wait_for_text("#profiles-results", "Directory LDAP").await;
    assert!(list.contains("Generic LDAP"), "{list}");
    b.screenshot("09-profiles").await;
    b.close().await;

    let rows = app
        .conn(|c| roster::db::models::directory_profiles::list(c, "", false).expect("list"))
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].groups_to_sync, "staff, admins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_tests_settings_and_synchronises_from_the_profile_page_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    app.sign_in_as_admin().await;
    let slapd = crate::support::servers::private("slapd");
    let mut fields = crate::profile_pages::slapd_profile_of(&slapd, "Main LDAP");
    crate::profile_pages::set(&mut fields, "ignore_tls_errors", "on");
    let id = crate::profile_pages::create(&app, &fields).await;

    let b = browser::open().await;
    b.sign_in_as_admin(&app.address).await;
    b.client
        .goto(&app.url(&format!("/admin/profiles/{id}")))
        .await
        .expect("goto");
    b.wait_for_text("h1", "Edit Main LDAP").await;

    b.click(".sync-actions button.secondary").await;
    let page = b.wait_for_text("#run", "Dry run finished").await;
    assert!(
        page.contains("would create 3, update 0, delete 0"),
        "{page}"
    );
    assert!(page.contains("would be created"), "{page}");
    assert!(page.contains("Back to the profile"), "{page}");
    b.fill("#run-q", "baker").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // htmx swaps the element while we read it: a stale read is just tried again.
        let changes = match b.client.find(Locator::Css("#run-changes")).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if changes.contains("bob") && !changes.contains("alice") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "search never narrowed the changes: {changes}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.screenshot("10-test-settings").await;

    // The dry run's page leads on: Synchronise now applies a fresh plan.
    b.click(".run-next button").await;
    let page = b.wait_for_text("#run", "Synchronisation finished").await;
    assert!(page.contains("3 created"), "{page}");
    b.screenshot("11-synchronised").await;
    b.client
        .find(Locator::LinkText("History"))
        .await
        .expect("History")
        .click()
        .await
        .expect("click");
    let history = b.wait_for_text("#runs", "Synchronisation").await;
    assert!(
        history.contains("Test settings") && history.contains("succeeded"),
        "{history}"
    );
    b.client
        .goto(&app.url("/admin/users?q=carol"))
        .await
        .expect("goto");
    b.wait_for_text("#users-results", "carol@example.test")
        .await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_user_signs_in_enrols_mfa_and_signs_in_again_with_a_code_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    app.sign_in_as_admin().await;
    let samba = crate::support::servers::samba();
    let mut f = crate::profile_pages::common_fields("Corp");
    f.extend([
        ("kind", "active_directory".to_owned()),
        (
            "server",
            crate::directory::host_port(samba.fact("LDAP_URL")),
        ),
        ("domain", samba.fact("UPN_SUFFIX").to_owned()),
        ("protocol", "starttls".to_owned()),
        ("ignore_tls_errors", "on".to_owned()),
        ("bind_dn", samba.fact("BIND_USER").to_owned()),
        ("bind_password", samba.fact("BIND_PASSWORD").to_owned()),
        ("base_dn", format!("CN=Users,{}", samba.fact("BASE_DN"))),
        ("timeout_seconds", "10".to_owned()),
    ]);
    let profile = crate::profile_pages::create(&app, &f).await;
    let run = roster::sync::run(
        &crate::sync::context(&app),
        profile,
        roster::sync::Trigger::Cli,
        "test",
        false,
    )
    .await
    .expect("sync");
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let password = samba.fact("USER_PASSWORD").to_owned();

    let b = browser::open().await;
    let sign_in = |login: &'static str| {
        let (b, app, password) = (&b, &app, password.clone());
        async move {
            b.client.goto(&app.url("/login")).await.expect("goto");
            b.fill("#username", login).await;
            b.fill("#password", &password).await;
            b.click("button[type=submit]").await;
        }
    };
    sign_in("CORP\\alice").await;
    b.wait_for_text("h1", "Set up two-step sign-in").await;
    b.screenshot("12-mfa-enrol").await;
    let secret = b.totp_key().await;
    let totp = roster::auth::totp::totp(&secret, "alice").expect("totp");
    let at = |steps: i64| (roster::db::now() + steps * 30).max(0) as u64;
    crate::support::clear_of_totp_step_boundary(8).await;
    b.fill("#code", &totp.generate(at(-1)).to_string()).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("h1", "Save your recovery codes").await;
    b.screenshot("13-mfa-recovery-codes").await;
    // The codes can be copied or downloaded; Continue waits for "I have saved them".
    let download = b
        .client
        .find(Locator::Css("a[download='roster-recovery-codes.txt']"))
        .await
        .expect("download")
        .attr("href")
        .await
        .expect("href")
        .unwrap_or_default();
    let first_code = b.text_of(".recovery-codes li code").await;
    assert!(
        download.starts_with("data:text/plain") && download.contains(&first_code),
        "{download}"
    );
    b.click_button("Continue").await;
    assert!(
        b.text_of("h1").await.contains("Save your recovery codes"),
        "not yet: the box is not ticked"
    );
    b.codes_saved_continue().await;
    b.wait_for_text("main", "alice").await;
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("h1", "Sign in").await;

    sign_in("alice").await;
    b.wait_for_text("h1", "Enter your code").await;
    b.screenshot("14-mfa-code").await;
    b.fill("#code", &totp.generate(at(0)).to_string()).await;
    b.click("button[type=submit]").await;
    let account = b.wait_for_text("main", "alice").await;
    assert!(
        b.client.current_url().await.expect("url").path() == "/account",
        "{account}"
    );
    b.screenshot("15-my-account").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_schedules_a_profile_and_watches_a_large_sync_progress_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    app.sign_in_as_admin().await;
    let slapd = crate::support::servers::private("slapd");
    crate::sync::add_bulk_users(&slapd, 3000).await;
    // A slow directory: every packet it sends waits 40 ms, so the read takes seconds.
    let slow = crate::sync::CuttingProxy::slow(
        &crate::directory::host_port(slapd.fact("LDAP_URL")),
        std::time::Duration::from_millis(40),
    )
    .await;
    let mut fields = crate::profile_pages::slapd_profile_of(&slapd, "Big LDAP");
    crate::profile_pages::set(&mut fields, "ignore_tls_errors", "on");
    crate::profile_pages::set(&mut fields, "server", &slow.address);
    let id = crate::profile_pages::create(&app, &fields).await;

    let b = browser::open().await;
    b.sign_in_as_admin(&app.address).await;

    // "Create schedule" on the profiles list opens the form for that profile; choosing
    // "Weekly" shows the days and hides the interval.
    b.client
        .goto(&app.url("/admin/profiles"))
        .await
        .expect("goto");
    b.client
        .find(Locator::LinkText("Create schedule"))
        .await
        .expect("Create schedule")
        .click()
        .await
        .expect("click");
    b.wait_for_text("h1", "New schedule").await;
    assert!(
        !b.client
            .find(Locator::Css("#every"))
            .await
            .expect("every")
            .is_displayed()
            .await
            .expect("displayed"),
        "daily hides the interval"
    );
    b.client
        .find(Locator::Css("#kind"))
        .await
        .expect("kind")
        .select_by_value("weekly")
        .await
        .expect("weekly");
    let days = b
        .client
        .find(Locator::Css("input[name=day][value=thu]"))
        .await
        .expect("Thursday");
    assert!(
        days.is_displayed().await.expect("displayed"),
        "weekly shows the days"
    );
    days.click().await.expect("tick Thursday");
    let zone = b
        .client
        .execute(
            "return Intl.DateTimeFormat().resolvedOptions().timeZone;",
            vec![],
        )
        .await
        .expect("zone");
    assert_eq!(
        Some(b.value_of("Time zone").await.as_str()),
        zone.as_str(),
        "a new schedule starts in the browser's zone"
    );
    b.fill("#time_zone", "Europe/Berlin").await;
    b.screenshot("16-new-schedule").await;
    b.click(".schedule-form button[type=submit]").await;
    let list = b.wait_for_text("#schedules", "Weekly on").await;
    assert!(
        list.contains("Weekly on Mon, Thu at 02:00 (Europe/Berlin)") && list.contains("Big LDAP"),
        "{list}"
    );
    b.screenshot("17-schedules").await;

    // Synchronise now from the profile page: the numbers rise while it reads.
    b.client
        .goto(&app.url(&format!("/admin/profiles/{id}")))
        .await
        .expect("goto");
    b.wait_for_text("h1", "Edit Big LDAP").await;
    b.wait_for_text("#profile-run", "No runs yet").await;
    b.click(".sync-actions button:not(.secondary)").await;
    let mut seen: Vec<u64> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = match b.client.find(Locator::Css("#run .run-status")).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if status.contains("Synchronisation finished") {
            break;
        }
        if let Some(users) = status
            .split(" users and")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            && seen.last() != Some(&users)
        {
            if seen.len() == 1 {
                b.screenshot("18-sync-progress").await;
            }
            seen.push(users);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never finished; seen {seen:?}, last status {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let rising: Vec<u64> = seen.iter().copied().filter(|n| *n > 0).collect();
    assert!(
        rising.len() >= 2 && rising.windows(2).all(|w| w[0] < w[1]),
        "the users read rose while the page watched: {seen:?}"
    );
    let page = b.wait_for_text("#run", "3003 created").await;
    assert!(page.contains("Users in the directory"), "{page}");
    b.screenshot("19-sync-finished").await;

    // The run is in the history of all runs, and the profile page shows it as the last run.
    b.client.goto(&app.url("/admin/runs")).await.expect("goto");
    let runs = b.wait_for_text("#runs", "Big LDAP").await;
    assert!(
        runs.contains("succeeded") && runs.contains("admin"),
        "{runs}"
    );
    b.client
        .goto(&app.url(&format!("/admin/profiles/{id}")))
        .await
        .expect("goto");
    b.wait_for_text("#profile-run", "Last run").await;
    b.close().await;
}
