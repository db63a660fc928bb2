//! Real headless Chromium, the console as a new administrator walks it: every page at
//! 1280 × 900 and on a 390 × 844 phone, none wider than the screen, Sign out reachable
//! through the menu, no serious or critical axe-core violation, a screenshot of each under
//! `target/screenshots/`; the groups and audit pages searched and followed; the destructive
//! actions (delete and disable a user, delete a schedule, discard a held run) confirmed in
//! their dialog, a deletion cancelled first; "Synchronise now" while a run is going leading
//! to that run.

use fantoccini::Locator;

use crate::support::app::{Backend, TestApp, spawn_app};
use crate::support::app_integration::{AppGroup, AppIntegrationFake, Command, Fault};
use crate::support::browser::{self, Browser};

const WIDE: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

async fn signed_in(app: &TestApp) -> Browser {
    let b = browser::open().await;
    b.sign_in_as_admin(&app.address).await;
    b
}

/// A profile of the Application Integration fake with 60 users in three groups, synced;
/// a held run; a schedule; a local user.
async fn console_with_data(app: &TestApp, fake: &AppIntegrationFake) -> (i64, i64) {
    fake.generate(60);
    let user = AppIntegrationFake::generated_user_name;
    let names: Vec<String> = (0..60).map(user).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    fake.set_groups(Some(vec![
        AppGroup::new("Everyone", "All of us", &all),
        AppGroup::new("Sales", "The sales team", &all[..10]),
        AppGroup::new("Support", "", &all[10..20]),
    ]));
    app.sign_in_as_admin().await;
    let mut f = crate::app_integration::fields("MailStore", fake);
    crate::profile_pages::set(&mut f, "requires_auth", "");
    // A stalled read is cancelled by the test, not ended by the timeout.
    crate::profile_pages::set(&mut f, "timeout_seconds", "120");
    crate::profile_pages::set(&mut f, "delete_threshold_count", "5");
    crate::profile_pages::set(&mut f, "delete_threshold_percent", "5");
    let profile = crate::profile_pages::create(app, &f).await;
    let ctx = crate::sync::context(app);
    let run = roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "test", false)
        .await
        .expect("run");
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let dry = roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "test", true)
        .await
        .expect("run");
    assert_eq!(dry.status, "succeeded", "{:?}", dry.error);
    fake.generate(40);
    let held = roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "test", false)
        .await
        .expect("run");
    assert_eq!(held.status, "held", "{:?}", held.error);
    fake.generate(60);
    let new = format!("/admin/schedules/new?profile={profile}");
    let res = app
        .post_form(
            &new,
            "/admin/schedules",
            &[
                ("profile", &profile.to_string()),
                ("kind", "daily"),
                ("time", "03:00"),
                ("time_zone", "UTC"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let res = app
        .create_user("grace", "Grace's long password", &["log_on"])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    (profile.0, held.run_id.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_fits_a_phone_and_passes_axe_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let fake = AppIntegrationFake::start().await;
    let (profile, held) = console_with_data(&app, &fake).await;
    let group = app
        .conn(move |c| {
            roster::db::models::directory_groups::ids_by_external_id(
                c,
                roster::db::ids::ProfileId(profile),
            )
            .expect("groups")
        })
        .await;
    let group = group.values().min().copied().expect("a group");
    let grace: i64 = {
        let html = app.get_html("/admin/users?q=grace").await;
        html.split("href=\"/admin/users/")
            .filter_map(|r| r.split('"').next()?.parse().ok())
            .next()
            .expect("grace's id")
    };
    let schedule: i64 = {
        let html = app.get_html("/admin/schedules").await;
        html.split("href=\"/admin/schedules/")
            .filter_map(|r| r.split('"').next()?.parse().ok())
            .next()
            .expect("a schedule")
    };
    let pages: Vec<(&str, String)> = vec![
        ("dashboard", "/admin".into()),
        ("profiles", "/admin/profiles".into()),
        ("profile-choose", "/admin/profiles/new".into()),
        (
            "profile-new",
            "/admin/profiles/new?kind=generic_ldap".into(),
        ),
        ("profile-edit", format!("/admin/profiles/{profile}")),
        (
            "profile-delete",
            format!("/admin/profiles/{profile}/delete"),
        ),
        ("profile-history", format!("/admin/profiles/{profile}/runs")),
        ("schedules", "/admin/schedules".into()),
        (
            "schedule-new",
            format!("/admin/schedules/new?profile={profile}"),
        ),
        ("schedule-edit", format!("/admin/schedules/{schedule}")),
        (
            "schedule-delete",
            format!("/admin/schedules/{schedule}/delete"),
        ),
        ("runs", "/admin/runs".into()),
        ("run-held", format!("/admin/runs/{held}")),
        ("run-discard", format!("/admin/runs/{held}/discard")),
        ("users", "/admin/users".into()),
        ("user-new", "/admin/users/new".into()),
        ("user", format!("/admin/users/{grace}")),
        (
            "user-delete",
            format!("/admin/users/{grace}/confirm/delete"),
        ),
        ("groups", "/admin/groups".into()),
        ("group", format!("/admin/groups/{group}")),
        ("audit", "/admin/audit".into()),
        ("account", "/account".into()),
    ];
    let b = signed_in(&app).await;
    let mut problems = Vec::new();
    for (size_name, (w, h)) in [("wide", WIDE), ("phone", PHONE)] {
        b.viewport(w, h).await;
        for (name, path) in &pages {
            b.client.goto(&app.url(path)).await.expect("goto");
            b.wait_for_text("h1, h2", "").await;
            b.screenshot(&format!("console-{name}-{size_name}")).await;
            let (scroll, inner) = b.widths().await;
            if scroll > inner {
                let culprits = b.too_wide().await.join(", ");
                problems.push(format!(
                    "{path} at {size_name}: {scroll} px wide in a {inner} px viewport ({culprits})"
                ));
            }
            for v in b.accessibility_violations().await {
                problems.push(format!("{path} at {size_name}: {v}"));
            }
        }
    }
    // A form sent back with errors puts the focus on its summary.
    b.client
        .goto(&app.url("/admin/profiles/new?kind=generic_ldap"))
        .await
        .expect("goto");
    b.fill("#name", "").await;
    b.click("#profile-main-form button[type=submit]:not([formaction])")
        .await;
    b.wait_for_text("#error-summary", "need correcting").await;
    let focused = b
        .client
        .execute(
            "return document.activeElement && document.activeElement.id;",
            vec![],
        )
        .await
        .expect("focus");
    assert_eq!(
        focused.as_str(),
        Some("error-summary"),
        "focus moves to the error summary"
    );
    b.screenshot("console-profile-errors-phone").await;
    for v in b.accessibility_violations().await {
        problems.push(format!("profile form with errors at phone: {v}"));
    }
    // On the phone, Sign out is in the menu.
    b.client.goto(&app.url("/admin")).await.expect("goto");
    let sign_out = "details.nav-compact form[action='/logout'] button";
    assert!(
        !b.client
            .find(Locator::Css(sign_out))
            .await
            .expect("sign out")
            .is_displayed()
            .await
            .expect("shown"),
        "closed menu"
    );
    b.click("details.nav-compact > summary").await;
    let button = b
        .client
        .find(Locator::Css(sign_out))
        .await
        .expect("sign out");
    assert!(
        button.is_displayed().await.expect("shown"),
        "Sign out reachable on a phone"
    );
    b.screenshot("console-menu-phone").await;
    button.click().await.expect("sign out");
    b.wait_for_text("h1", "Sign in").await;
    b.screenshot("console-login-phone").await;
    for v in b.accessibility_violations().await {
        problems.push(format!("/login at phone: {v}"));
    }
    b.close().await;
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_browses_groups_and_audit_and_confirms_destructive_actions_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let fake = AppIntegrationFake::start().await;
    let (_, held) = console_with_data(&app, &fake).await;
    let b = signed_in(&app).await;

    // The dashboard's group count leads to the groups; a search narrows them live.
    b.click("a[href='/admin/groups']").await;
    b.wait_for_text("#groups-results", "3 groups").await;
    b.fill("#groups-q", "sal").await;
    b.wait_for_text("#groups-results", "1 group matching").await;
    b.click_link("Sales").await;
    b.wait_for_text("#members-results", "10 members").await;
    b.fill("#members-q", "user1").await;
    b.wait_for_text("#members-results", "1 member matching")
        .await;
    b.screenshot("console-group-search").await;
    b.click_link("user1").await;
    b.wait_for_text("h1", "user1").await;
    assert!(
        b.text_of("main").await.contains("Everyone"),
        "the user's groups are listed"
    );

    // The audit log: filter by action, follow an event to its subject.
    b.client.goto(&app.url("/admin/audit")).await.expect("goto");
    b.wait_for_text("#audit", "newest first").await;
    let action = b
        .client
        .find(Locator::Id("audit-action"))
        .await
        .expect("action");
    action
        .select_by_value("user_created")
        .await
        .expect("select");
    b.click_button("Filter").await;
    b.wait_for_text("#audit", "1 event").await;
    b.click_link("grace").await;
    b.wait_for_text("h1", "grace").await;

    // Delete asks first: cancelled, nothing happens; confirmed, the user is gone.
    b.click_link("Delete user").await;
    b.wait_for_text("#confirm-dialog", "Delete grace?").await;
    b.screenshot("console-confirm-delete").await;
    b.click("#confirm-dialog [data-close-dialog]").await;
    let dialog = b
        .client
        .find(Locator::Id("confirm-dialog"))
        .await
        .expect("dialog");
    assert!(
        !dialog.is_displayed().await.expect("shown"),
        "Cancel closes the dialog"
    );
    assert!(
        b.text_of("h1").await.contains("grace"),
        "still on grace's page"
    );
    b.click_link("Delete user").await;
    b.wait_for_text("#confirm-dialog", "Delete grace?").await;
    b.click("#confirm-dialog button.danger").await;
    b.wait_for_text("#toasts", "The user was deleted.").await;
    b.wait_for_text("h1", "Users").await;
    b.screenshot("console-deleted-toast").await;

    // The other confirmations, each in the dialog and each ending with its notice.
    let confirm = |open: &'static str, question: &'static str, notice: &'static str| {
        let b = &b;
        async move {
            b.click(open).await;
            b.wait_for_text("#confirm-dialog", question).await;
            b.click("#confirm-dialog button.danger").await;
            b.wait_for_text("#toasts", notice).await;
        }
    };
    b.client
        .goto(&app.url("/admin/users?q=user3"))
        .await
        .expect("goto");
    b.click_link("user3").await;
    b.wait_for_text("h1", "user3").await;
    confirm(
        "a[href$='/confirm/disable']",
        "Disable user3?",
        "Disabled: the user was signed out",
    )
    .await;
    b.client
        .goto(&app.url("/admin/schedules"))
        .await
        .expect("goto");
    b.wait_for_text("#schedules", "Daily at 03:00").await;
    confirm(
        ".row-actions a[href$='/delete']",
        "Delete this schedule?",
        "Schedule deleted.",
    )
    .await;
    b.client
        .goto(&app.url(&format!("/admin/runs/{held}")))
        .await
        .expect("goto");
    b.wait_for_text("#run", "Held for approval").await;
    confirm(
        "a[href$='/discard']",
        "Discard the held run of MailStore?",
        "Discarded: nothing of the held plan was applied.",
    )
    .await;
    b.wait_for_text("#run", "Discarded").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronise_now_while_running_leads_to_the_run_in_chromium() {
    let app = spawn_app(Backend::Sqlite).await;
    let fake = AppIntegrationFake::start().await;
    let (profile, _) = console_with_data(&app, &fake).await;
    let b = signed_in(&app).await;
    fake.fault(Command::List, 0, Fault::Stall);
    b.client
        .goto(&app.url(&format!("/admin/profiles/{profile}")))
        .await
        .expect("goto");
    b.wait_for_text("h1", "Edit MailStore").await;
    // The run status loads and puts the button in place first.
    b.wait_for_text("#profile-run", "Last run").await;
    b.click("#sync-now button").await;
    b.wait_for_text("#run", "Running").await;
    let run_url = b.client.current_url().await.expect("url").to_string();
    // Back on the profile page the button has become a link to the running run.
    b.client
        .goto(&app.url(&format!("/admin/profiles/{profile}")))
        .await
        .expect("goto");
    b.wait_for_text("#sync-now", "Synchronising").await;
    b.screenshot("console-synchronising").await;
    // The span is swapped every second while the run lives: read the link, then follow it.
    let href = b
        .client
        .find(Locator::Css("#sync-now a"))
        .await
        .expect("link")
        .attr("href")
        .await
        .expect("href")
        .expect("an href");
    assert!(run_url.ends_with(&href), "{href} vs {run_url}");
    b.client.goto(&app.url(&href)).await.expect("goto");
    b.wait_for_text("#run", "Running").await;
    b.click_button("Cancel").await;
    b.wait_for_text("#run", "Cancelled").await;
    b.close().await;
    fake.clear_faults();
}
