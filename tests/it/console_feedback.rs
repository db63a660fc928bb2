//! What the console says back: every change ends on a page with its confirmation (a toast
//! that travels in a signed, one-time cookie), and every destructive action asks first with
//! a page that says what will happen (the same partial fills the dialog for htmx). Both
//! backends.

use roster::sync::{self, Trigger};

use crate::app_integration::{fields, server};
use crate::profile_pages::{create, set};
use crate::support::app::{TestApp, location};
use crate::support::app_integration::AppIntegrationFake;
use crate::sync::context;

/// The toast notice a page shows, if any.
fn notice(html: &str) -> Option<String> {
    let rest = html.split("class=\"toast notice\"").nth(1)?;
    rest.split("<span>")
        .nth(1)?
        .split("</span>")
        .next()
        .map(str::to_owned)
}

/// Follows a 303 and returns the page it lands on.
async fn landing(app: &TestApp, res: reqwest::Response) -> (String, String) {
    assert_eq!(res.status().as_u16(), 303, "a redirect");
    let to = location(&res);
    (to.clone(), app.get_html(&to).await)
}

crate::db_test! {
    async fn changes_end_with_a_confirmation_shown_once(app) {
        app.sign_in_as_admin().await;
        let res = app.create_user("grace", "Grace's long password", &["log_on"]).await;
        let set_cookie: Vec<String> = res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        assert!(set_cookie.iter().any(|c| c.starts_with("roster_notice=") && c.contains("HttpOnly")), "{set_cookie:?}");
        let (grace, html) = landing(&app, res).await;
        assert_eq!(notice(&html).as_deref(), Some("User grace created."));
        assert_eq!(notice(&app.get_html(&grace).await), None, "shown once");

        let res = app.post_form(&grace, &format!("{grace}/privileges"), &[("privilege", "log_on"), ("privilege", "read_own_archive")]).await;
        assert_eq!(notice(&landing(&app, res).await.1).as_deref(), Some("Privileges saved."));
        let res = app.post_form(&grace, &format!("{grace}/action"), &[("action", "disable")]).await;
        assert_eq!(notice(&landing(&app, res).await.1).as_deref(), Some("Disabled: the user was signed out and cannot sign in."));
        let res = app.post_form(&grace, &format!("{grace}/action"), &[("action", "delete")]).await;
        let (to, html) = landing(&app, res).await;
        assert_eq!((to.as_str(), notice(&html).as_deref()), ("/admin/users", Some("The user was deleted.")), "lands on the list");

        // A notice this server did not sign is not shown.
        let forged = app.client.get(app.url("/admin")).header("cookie", "roster_notice=AAAA.Your%20account%20is%20locked").send().await.expect("get");
        assert_eq!(notice(&forged.text().await.expect("page")), None);
    }
}

crate::db_test! {
    async fn destructive_actions_ask_first_and_say_what_will_happen(app) {
        app.sign_in_as_admin().await;
        let res = app.create_user("grace", "Grace's long password", &["log_on"]).await;
        let grace = location(&res);
        let page = app.get_html(&grace).await;
        // The buttons lead to the confirmation (a page, or the dialog with htmx).
        for action in ["disable", "delete"] {
            assert!(page.contains(&format!("href=\"{grace}/confirm/{action}\"")), "{action}: {page}");
        }
        let confirm = app.get_html(&format!("{grace}/confirm/delete")).await;
        assert!(confirm.contains("Delete grace?") && confirm.contains("cannot be undone") && confirm.contains("gone for good"), "{confirm}");
        assert!(confirm.contains(&format!("action=\"{grace}/action\"")) && confirm.contains("name=\"action\" value=\"delete\""), "{confirm}");
        assert!(confirm.contains(&format!("href=\"{grace}\" role=\"button\"")), "Cancel goes back");
        // Nothing happened yet.
        assert_eq!(app.get(&grace).await.status().as_u16(), 200);
        // With htmx: only the partial, for the dialog, whose title it carries.
        let partial = app.client.get(app.url(&format!("{grace}/confirm/disable"))).header("hx-request", "true").send().await.expect("get").text().await.expect("partial");
        assert!(!partial.contains("<html") && partial.contains("id=\"confirm-title\"") && partial.contains("signed out everywhere"), "{partial}");
        assert!(page.contains("<dialog id=\"confirm-dialog\" aria-labelledby=\"confirm-title\">"), "the dialog is on the page");
        assert_eq!(app.get(&format!("{grace}/confirm/explode")).await.status().as_u16(), 404);
        // The confirmation's form does it.
        let res = app.post_form(&format!("{grace}/confirm/delete"), &format!("{grace}/action"), &[("action", "delete")]).await;
        assert_eq!(location(&res), "/admin/users");
        assert_eq!(app.get(&grace).await.status().as_u16(), 404);
    }
}

crate::db_test! {
    async fn deleting_a_schedule_and_discarding_a_held_run_ask_first(app) {
        let fake = server().await;
        app.sign_in_as_admin().await;
        let mut f = fields("MailStore", &fake);
        set(&mut f, "delete_threshold_count", "1");
        set(&mut f, "delete_threshold_percent", "1");
        let profile = create(&app, &f).await;
        let new = format!("/admin/schedules/new?profile={profile}");
        let res = app.post_form(&new, "/admin/schedules", &[("profile", &profile.to_string()), ("kind", "daily"), ("time", "03:00"), ("time_zone", "UTC"), ("enabled", "on")]).await;
        let (list, html) = landing(&app, res).await;
        assert_eq!(notice(&html).as_deref(), Some("Schedule created."));
        let delete = html.split("href=\"").filter_map(|r| r.split('"').next()).find(|h| h.ends_with("/delete") && h.starts_with("/admin/schedules/")).expect("a delete link").to_owned();
        let confirm = app.get_html(&delete).await;
        assert!(confirm.contains("Delete this schedule?") && confirm.contains("Daily at 03:00"), "{confirm}");
        let res = app.post_form(&delete, &delete, &[]).await;
        let (_, html) = landing(&app, res).await;
        assert_eq!(notice(&html).as_deref(), Some("Schedule deleted."));
        assert!(!app.get_html(&list).await.contains("Daily at 03:00 (UTC)"));

        // A run that deletes two of three users is held; discarding it asks first.
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        fake.remove_user("ben");
        fake.remove_user("cat");
        let held = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(held.status, "held", "{:?}", held.error);
        let page = format!("/admin/runs/{}", held.run_id);
        let html = app.get_html(&page).await;
        assert!(html.contains(&format!("href=\"{page}/discard\"")), "{html}");
        let confirm = app.get_html(&format!("{page}/discard")).await;
        assert!(confirm.contains("Discard the held run of MailStore?") && confirm.contains("None of its changes is applied"), "{confirm}");
        let res = app.post_form(&format!("{page}/discard"), &format!("{page}/discard"), &[]).await;
        let (_, html) = landing(&app, res).await;
        assert_eq!(notice(&html).as_deref(), Some("Discarded: nothing of the held plan was applied."));
    }
}

crate::db_test! {
    async fn synchronise_now_while_a_run_is_going_leads_to_that_run(app) {
        use crate::support::app_integration::{Command, Fault};
        let fake = server().await;
        app.sign_in_as_admin().await;
        let mut f = fields("Slow", &fake);
        set(&mut f, "timeout_seconds", "60");
        let profile = create(&app, &f).await;
        let page = format!("/admin/profiles/{profile}");
        fake.fault(Command::List, 0, Fault::Stall);
        let res = app.post_form(&page, &format!("{page}/sync"), &[]).await;
        let (run, _) = landing(&app, res).await;
        // Again: not an error, but the run that is going.
        let res = app.post_form(&page, &format!("{page}/sync"), &[]).await;
        let (again, html) = landing(&app, res).await;
        assert_eq!(again, run);
        assert_eq!(notice(&html).as_deref(), Some("A synchronisation of this profile is already running: here it is."));
        assert!(html.contains("running for") && !html.contains("never"), "{html}");
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\""), "follows itself without JavaScript");
        // The profile page's button says so.
        let status = app.client.get(app.url(&format!("{page}/run-status"))).header("hx-request", "true").send().await.expect("get").text().await.expect("status");
        assert!(status.contains(&format!("<a href=\"{run}\" role=\"button\"")) && status.contains("Synchronising…"), "{status}");
        let res = app.post_form(&run, &format!("{run}/cancel"), &[]).await;
        assert_eq!(res.status().as_u16(), 303);
        fake.clear_faults();
    }
}

crate::db_test! {
    async fn an_applying_run_shows_what_it_applies_and_changes_are_paged(app) {
        use roster::db::models::sync_runs::{self, Counts};
        let fake = AppIntegrationFake::start().await;
        fake.generate(250);
        app.sign_in_as_admin().await;
        let mut f = fields("Big", &fake);
        set(&mut f, "requires_auth", "");
        let profile = create(&app, &f).await;
        // A dry run of 250 new users: 100 changes a page.
        let dry = sync::run(&context(&app), profile, Trigger::Cli, "test", true).await.expect("run");
        assert_eq!(dry.status, "succeeded", "{:?}", dry.error);
        let page = format!("/admin/runs/{}", dry.run_id);
        let html = app.get_html(&page).await;
        assert!(html.contains("would create 250, update 0, delete 0"), "{html}");
        assert!(html.contains("User changes 1–100 of 250."), "{html}");
        assert_eq!(html.matches("would be created").count(), 100);
        let html3 = app.get_html(&format!("{page}?q=&page=3")).await;
        assert!(html3.contains("User changes 201–250 of 250.") && html3.contains("rel=\"prev\""), "{html3}");
        assert!(!html3.contains("rel=\"next\""));
        // The profile's last-run line says "would" for a dry run.
        let status = app.get_html(&format!("/admin/profiles/{profile}/run-status")).await;
        assert!(status.contains("would create 250, update 0 and delete 0 users"), "{status}");

        // Applying: the page shows the plan's counts, not the users read.
        let started = sync::start(&context(&app), profile, Trigger::Admin, "test", false).await.expect("start");
        let id = started.run_id;
        let planned = Counts { users_created: 250, ..Counts::default() };
        assert!(app.conn(move |c| sync_runs::begin_applying(c, id, &planned).expect("applying")).await);
        let html = app.get_html(&format!("/admin/runs/{id}")).await;
        assert!(html.contains("250 users to create, 0 to update, 0 to delete"), "{html}");
    }
}

crate::db_test! {
    async fn long_forms_say_what_is_wrong_at_the_top_and_come_in_sections(app) {
        app.sign_in_as_admin().await;
        let chooser = app.get_html("/admin/profiles/new").await;
        assert!(chooser.contains("Any LDAP directory (OpenLDAP, 389 DS, …)") && chooser.contains("it checks the passwords"), "{chooser}");
        let form = app.get_html("/admin/profiles/new?kind=generic_ldap").await;
        for legend in ["Connection", "Credentials", "Where to look", "Attributes", "Sign-in and MFA"] {
            assert!(form.contains(&format!("<legend>{legend}</legend>")), "{legend}: {form}");
        }
        assert!(form.contains("placeholder=\"e.g. dc=example,dc=com\"") && form.contains("placeholder=\"e.g. cn=roster,ou=services,dc=example,dc=com\""), "examples");
        let res = app.post_form("/admin/profiles/new?kind=generic_ldap", "/admin/profiles", &[("kind", "generic_ldap"), ("name", "")]).await;
        assert_eq!(res.status().as_u16(), 422);
        let html = res.text().await.expect("page");
        let summary = html.split("id=\"error-summary\"").nth(1).and_then(|r| r.split("</div>").next()).expect("an error summary");
        assert!(summary.contains("fields need correcting"), "{summary}");
        for field in ["name", "server", "base_dn"] {
            assert!(summary.contains(&format!("<a href=\"#{field}\">")), "{field}: {summary}");
            assert!(html.contains(&format!("id=\"{field}\"")), "the link's target exists: {field}");
        }
        let res = app.post_form("/admin/users/new", "/admin/users", &[("username", ""), ("password", "x"), ("password_confirm", "y")]).await;
        let html = res.text().await.expect("page");
        assert!(html.contains("id=\"error-summary\"") && html.contains("<a href=\"#username\">"), "{html}");
    }
}
