//! MailStore's Application Integration against its local fake (`support::app_integration`,
//! which follows PROTOCOLS.md): full sync, rename by DN, delete with and without "delete
//! users", scope by group, a server without groups, every fault ending the run with zero
//! changes, Test connection in the server's words, the group picker, and sign-in by the
//! server's own password check — every refusal answering alike. Both backends.

use roster::db::ids::ProfileId;
use roster::sync::{self, Trigger};

use crate::directory_sign_in::{last_failure, status_and_body as sign_in};
use crate::profile_pages::{Fields, common_fields, create, post, set};
use crate::support::app::TestApp;
use crate::support::app_integration::{AppGroup, AppIntegrationFake, AppUser, Command, Fault};
use crate::sync::{context, memberships, names, pairs, synced_users};

pub const DOMAIN: &str = "mailstore.example";

pub fn fields(name: &str, fake: &AppIntegrationFake) -> Fields {
    let mut f = common_fields(name);
    f.extend([
        ("kind", "application_integration".into()),
        ("url", fake.url()),
        ("requires_auth", "on".into()),
        ("username", "roster".into()),
        ("password", "roster's password".into()),
        ("timeout_seconds", "5".into()),
        ("delete_users", "on".into()),
        ("delete_groups", "on".into()),
        ("delete_threshold_percent", "100".into()),
        ("mfa_by_default", "".into()),
    ]);
    f
}

fn user(name: &str, full: &str, dn: &str, password: &str) -> AppUser {
    let mut u = AppUser::new(name, full, &[&format!("{name}@{DOMAIN}")]);
    u.distinguished_name = (!dn.is_empty()).then(|| dn.to_owned());
    u.password = Some(password.to_owned());
    u
}

/// A fake with ann (a DN), ben (no DN, two addresses), cat; the group Sales holds ann and ben.
pub async fn server() -> AppIntegrationFake {
    let fake = AppIntegrationFake::start().await;
    fake.require_basic("roster", "roster's password");
    let mut ben = user("ben", "Ben Brown", "", "ben's password");
    ben.email_addresses.push("b.brown@mailstore.example".into());
    fake.set_users(vec![
        user(
            "ann",
            "Ann Archer",
            "CN=Ann Archer,OU=Staff,DC=mailstore,DC=example",
            "ann's password",
        ),
        ben,
        user("cat", "Cat Carter", "", "cat's password"),
    ]);
    fake.set_groups(Some(vec![AppGroup::new(
        "Sales",
        "Sales team",
        &["ann", "ben", "nobody"],
    )]));
    fake
}

async fn profile(
    app: &TestApp,
    name: &str,
    fake: &AppIntegrationFake,
    tweak: impl FnOnce(&mut Fields),
) -> ProfileId {
    app.sign_in_as_admin().await;
    let mut f = fields(name, fake);
    tweak(&mut f);
    create(app, &f).await
}

crate::db_test! {
    async fn app_integration_sync_creates_renames_and_deletes(app) {
        let fake = server().await;
        let id = profile(&app, "MailStore", &fake, |_| {}).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, id).await;
        assert_eq!(names(&rows), ["ann", "ben", "cat"]);
        assert_eq!(rows[1].emails, ["ben@mailstore.example", "b.brown@mailstore.example"]);
        assert_eq!(rows[0].full_name, "Ann Archer");
        assert_eq!(memberships(&app, id).await, pairs(&[("Sales", "ann"), ("Sales", "ben")]));
        let plan = run.plan.expect("plan");
        assert!(plan.warnings.iter().any(|w| w.contains("Sales") && w.contains("1 member")), "{:?}", plan.warnings);
        assert!(fake.requests().iter().all(|r| r.basic_user.as_deref() == Some("roster")), "Basic auth on every call");

        // Unchanged: nothing changes.
        let plan = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run").plan.expect("plan");
        assert!(plan.users.is_empty() && plan.memberships_added.is_empty(), "{plan:?}");

        // ann is renamed (same DN: the same user), cat leaves the server.
        let ann_id = rows[0].id;
        fake.upsert_user(user("anna", "Anna Archer", "CN=Ann Archer,OU=Staff,DC=mailstore,DC=example", "ann's password"));
        fake.remove_user("cat");
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, id).await;
        assert_eq!(names(&rows), ["anna", "ben"], "cat deleted");
        assert_eq!(rows[0].id, ann_id, "a rename keeps the user");
        // The same DN written otherwise (case, spaces) is the same user: DNs compare after
        // RFC 4514 normalisation.
        fake.upsert_user(user("anna", "Anna Archer", "cn=Ann Archer, ou=Staff, dc=mailstore, dc=example", "ann's password"));
        let plan = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run").plan.expect("plan");
        assert!(plan.users.is_empty(), "{:?}", plan.users);
    }
}

crate::db_test! {
    async fn app_integration_keeps_users_without_delete_users_and_scopes_by_group(app) {
        let fake = server().await;
        let id = profile(&app, "Keeping", &fake, |f| {
            set(f, "delete_users", "");
            set(f, "groups_to_sync", "sales");
        }).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, id).await), ["ann", "ben"], "only Sales' members");
        fake.remove_user("ben");
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, id).await), ["ann", "ben"], "not deleted without \"delete users\"");
    }
}

crate::db_test! {
    async fn app_integration_without_groups_syncs_users_and_refuses_a_group_scope(app) {
        let fake = server().await;
        fake.set_groups(None);
        let id = profile(&app, "No groups", &fake, |_| {}).await;
        let run = sync::run(&context(&app), id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(synced_users(&app, id).await.len(), 3);
        assert!(run.plan.expect("plan").warnings.iter().any(|w| w.contains("offers no groups")));
        let mut f = fields("Scoped", &fake);
        set(&mut f, "groups_to_sync", "Sales");
        let scoped = create(&app, &f).await;
        let run = sync::run(&context(&app), scoped, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        assert!(run.error.unwrap_or_default().contains("offers no groups"));
    }
}

crate::db_test! {
    async fn app_integration_faults_fail_the_run_with_zero_changes(app) {
        let fake = server().await;
        let id = profile(&app, "Faulty", &fake, |_| {}).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        fake.remove_user("cat");
        let faults = [
            (Command::List, Fault::Stall, "no answer"),
            (Command::List, Fault::CutOff, "cut off"),
            (Command::List, Fault::Status(500), "HTTP 500"),
            (Command::List, Fault::Html, "not a JSON array"),
            (Command::List, Fault::NotJson, "not a JSON array"),
            (Command::List, Fault::WrongShape, "not a JSON array"),
            (Command::Groups, Fault::Status(503), "HTTP 503"),
            // A bare 400 or 404 is not "I have no groups command": read so, it would
            // delete every group.
            (Command::Groups, Fault::Status(400), "HTTP 400"),
            (Command::Groups, Fault::Status(404), "HTTP 404"),
            (Command::Groups, Fault::NotJson, "not a JSON array of groups"),
        ];
        for (command, fault, expected) in faults {
            fake.fault(command, 0, fault);
            let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
            assert_eq!(run.status, "failed", "{expected}");
            let error = run.error.unwrap_or_default();
            assert!(error.contains(expected), "{expected}: {error}");
            assert_eq!(synced_users(&app, id).await.len(), 3, "{expected}: nothing changed");
            assert_eq!(memberships(&app, id).await.len(), 2, "{expected}: groups kept");
            fake.clear_faults();
        }
        // An entry without userName is left out with a warning, the rest goes on.
        fake.fault(Command::List, 0, Fault::MissingUserName);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert!(run.plan.expect("plan").warnings.iter().any(|w| w.contains("no userName")));
    }
}

async fn test_connection(app: &TestApp, f: &Fields) -> String {
    let res = post(
        app,
        "/admin/profiles/new?kind=application_integration",
        "/admin/profiles/test-connection",
        f,
        true,
    )
    .await;
    res.text().await.expect("dialog")
}

crate::db_test! {
    async fn app_integration_test_connection_and_picker_say_what_the_server_says(app) {
        let fake = server().await;
        app.sign_in_as_admin().await;
        let mut f = fields("Tested", &fake);
        let html = test_connection(&app, &f).await;
        assert!(html.contains("Connection succeeded") && html.contains("offers groups"), "{html}");
        set(&mut f, "password", "wrong");
        let html = test_connection(&app, &f).await;
        assert!(html.contains("Connection failed") && html.contains("HTTP 401"), "{html}");
        set(&mut f, "password", "roster's password");
        fake.fault(Command::List, 0, Fault::Status(502));
        let html = test_connection(&app, &f).await;
        assert!(html.contains("HTTP 502: 502 Bad Gateway"), "{html}");
        let mut unknown = f.clone();
        set(&mut unknown, "url", "https://no-such-host.invalid/api");
        let html = test_connection(&app, &unknown).await;
        assert!(html.contains("Connection failed"), "{html}");

        // The picker asks the server; a server without groups says so.
        let res = post(&app, "/admin/profiles/new?kind=application_integration", "/admin/profiles/groups", &f, true).await;
        let html = res.text().await.expect("picker");
        assert!(html.contains("Sales"), "{html}");
        fake.set_groups(None);
        let html = test_connection(&app, &f).await;
        assert!(html.contains("Connection succeeded") && html.contains("offers no groups"), "{html}");
    }
}

crate::db_test! {
    async fn app_integration_users_sign_in_at_the_server_and_every_refusal_answers_alike(app) {
        let fake = server().await;
        // Their e-mail addresses are their names: "use only the local part" makes ann
        // `ann` in Roster, but the server is asked with the name it listed.
        fake.set_users(vec![user("ann@mailstore.example", "Ann Archer", "", "ann's password")]);
        let id = profile(&app, "Sign-in", &fake, |f| set(f, "use_local_part", "on")).await;
        let run = sync::run(&context(&app), id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, id).await), ["ann"]);

        let (status, _) = sign_in(&app, "ann", "ann's password").await;
        assert_eq!(status, 303, "the server said yes");
        let (wrong_status, wrong) = sign_in(&app, "ann", "not her password").await;
        assert_eq!(wrong_status, 401);
        assert!(last_failure(&app).await.contains("refused the password"));
        // The server cannot answer, or answers nonsense: refused the same way, and the
        // audit log says why.
        for (fault, why) in [(Fault::Status(500), "could not check the password"), (Fault::Html, "could not check the password"), (Fault::WrongShape, "could not check the password"), (Fault::Stall, "no answer")] {
            fake.fault(Command::Auth, 0, fault);
            assert_eq!(sign_in(&app, "ann", "ann's password").await, (wrong_status, wrong.clone()), "{why}");
            assert!(last_failure(&app).await.contains(why), "{why}: {}", last_failure(&app).await);
            fake.clear_faults();
        }
        fake.set_refusal(crate::support::app_integration::Refusal::Ok200False);
        assert_eq!(sign_in(&app, "ann", "wrong again").await, (wrong_status, wrong.clone()));
        assert!(fake.requests().iter().any(|r| r.cmd == "auth"), "the server was asked");
    }
}

crate::db_test! {
    async fn a_local_user_switched_to_application_integration_signs_in_at_the_server(app) {
        use diesel::prelude::*;
        use roster::db::schema::users;
        let fake = server().await;
        fake.set_users(vec![user("ann@mailstore.example", "Ann Archer", "", "ann's password")]);
        let id = profile(&app, "Switch", &fake, |f| set(f, "use_local_part", "on")).await;
        let res = app.post_form("/admin/users/new", "/admin/users", &[
            ("username", "ann"), ("full_name", "Local Ann"), ("emails", ""),
            ("password", "the local password"), ("password_confirm", "the local password"),
            ("privilege", "log_on"),
        ]).await;
        assert_eq!(res.status().as_u16(), 303);
        let page = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("user page").to_owned();
        let detail = app.get(&page).await.text().await.expect("page");
        assert!(detail.contains(">Switch</option>"), "an Application Integration profile is offered: {detail}");
        let res = post(&app, &page, &format!("{page}/authentication"), &vec![("profile", id.to_string())], false).await;
        assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap_or_default());
        // The server is asked with the name it listed, not Roster's `ann`.
        let user_id: i64 = page.rsplit('/').next().and_then(|i| i.parse().ok()).expect("id");
        let stored: String = app.conn(move |c| users::table.find(user_id).select(users::directory_name).first(c).expect("user")).await;
        assert_eq!(stored, "ann@mailstore.example");
        assert_eq!(sign_in(&app, "ann", "ann's password").await.0, 303);
        assert_eq!(sign_in(&app, "ann", "the local password").await.0, 401);
    }
}
