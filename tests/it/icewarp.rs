//! IceWarp Server against its local fake (`support::icewarp`, HTTPS, following PROTOCOLS.md):
//! full sync across domains, groups and mailing lists, disabled accounts, delete, scope by
//! domain and by group, every fault ending the run with zero changes and the session
//! logged out, Test connection and the domains-and-groups picker, and sign-in as the user
//! themselves — every refusal answering alike. Both backends.

use roster::db::ids::ProfileId;
use roster::sync::{self, Trigger};

use crate::directory_sign_in::{last_failure, status_and_body as sign_in};
use crate::profile_pages::{Fields, common_fields, create, post, set};
use crate::support::app::TestApp;
use crate::support::icewarp::{Account, Command, Fault, IceWarpFake};
use crate::sync::{context, memberships, names, pairs, synced_users};

pub fn fields(name: &str, fake: &IceWarpFake) -> Fields {
    let mut f = common_fields(name);
    f.extend([
        ("kind", "icewarp".into()),
        ("server", fake.server()),
        ("trusted_certificate_pem", fake.certificate_pem()),
        ("admin_user", "admin@ice.example".into()),
        ("password", "admin's password".into()),
        ("timeout_seconds", "5".into()),
        ("delete_users", "on".into()),
        ("delete_groups", "on".into()),
        ("delete_threshold_percent", "100".into()),
        ("mfa_by_default", "".into()),
    ]);
    f
}

/// Two domains: ice.example (the admin, carl, dana — disabled — and the group Crew of carl
/// and a list News of carl and an outsider) and snow.example (eve).
pub async fn server() -> IceWarpFake {
    let fake = IceWarpFake::start().await;
    fake.admin("admin@ice.example", "admin's password");
    let mut carl = Account::user("carl@ice.example", "Carl Cole", "carl's password");
    carl.aliases = vec!["c.cole".into()];
    fake.upsert_account(carl);
    fake.upsert_account(Account::user(
        "dana@ice.example",
        "Dana Dunn",
        "dana's password",
    ));
    fake.set_state("dana@ice.example", 1);
    fake.upsert_account(Account::user(
        "eve@snow.example",
        "Eve Evans",
        "eve's password",
    ));
    fake.upsert_account(Account::group(
        "crew@ice.example",
        "Crew",
        &["carl@ice.example"],
    ));
    fake.upsert_account(Account::list(
        "news@ice.example",
        "News",
        &["carl@ice.example", "someone@elsewhere.example"],
    ));
    fake
}

async fn profile(
    app: &TestApp,
    name: &str,
    fake: &IceWarpFake,
    tweak: impl FnOnce(&mut Fields),
) -> ProfileId {
    app.sign_in_as_admin().await;
    let mut f = fields(name, fake);
    tweak(&mut f);
    create(app, &f).await
}

crate::db_test! {
    async fn icewarp_sync_reads_every_domain_group_and_list_and_converges(app) {
        let fake = server().await;
        let id = profile(&app, "IceWarp", &fake, |_| {}).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, id).await;
        assert_eq!(names(&rows), ["admin@ice.example", "carl@ice.example", "dana@ice.example", "eve@snow.example"]);
        let carl = &rows[1];
        assert_eq!(carl.full_name, "Carl Cole");
        assert_eq!(carl.emails, ["carl@ice.example", "c.cole@ice.example"], "aliases in the domain");
        assert!(rows[2].disabled, "a state other than 0 is disabled");
        assert_eq!(memberships(&app, id).await, pairs(&[("crew@ice.example", "carl@ice.example"), ("news@ice.example", "carl@ice.example")]));
        let plan = run.plan.expect("plan");
        assert!(plan.warnings.iter().any(|w| w.contains("news@ice.example") && w.contains("1 member")), "{:?}", plan.warnings);
        assert_eq!(fake.open_sessions(), 0, "the session was logged out");

        let plan = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run").plan.expect("plan");
        assert!(plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty(), "{plan:?}");

        fake.remove_account("eve@snow.example");
        let mut carl = Account::user("carl@ice.example", "Carl Cole-Smith", "carl's password");
        carl.aliases = vec![];
        fake.upsert_account(carl);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, id).await;
        assert_eq!(names(&rows), ["admin@ice.example", "carl@ice.example", "dana@ice.example"], "eve deleted");
        assert_eq!(rows[1].full_name, "Carl Cole-Smith");
    }
}

crate::db_test! {
    async fn icewarp_scope_by_domain_and_by_group(app) {
        let fake = server().await;
        let by_domain = profile(&app, "Snow only", &fake, |f| set(f, "groups_to_sync", "snow.example")).await;
        let run = sync::run(&context(&app), by_domain, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, by_domain).await), ["eve@snow.example"]);
        let mut f = fields("Crew only", &fake);
        set(&mut f, "groups_to_sync", "crew@ice.example");
        let by_group = create(&app, &f).await;
        let run = sync::run(&context(&app), by_group, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, by_group).await), ["carl@ice.example"]);
        let mut f = fields("Nowhere", &fake);
        set(&mut f, "groups_to_sync", "nowhere.example");
        let missing = create(&app, &f).await;
        let run = sync::run(&context(&app), missing, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        assert!(run.error.unwrap_or_default().contains("neither a domain nor a group"));
    }
}

crate::db_test! {
    async fn icewarp_faults_fail_the_run_with_zero_changes_and_log_out(app) {
        let fake = server().await;
        let id = profile(&app, "Faulty", &fake, |_| {}).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        fake.remove_account("eve@snow.example");
        let faults = [
            (Command::Accounts, Fault::ErrorIq("domain_invalid".into()), "domain_invalid"),
            (Command::Accounts, Fault::NoOverallCount, "no overallcount"),
            (Command::Accounts, Fault::ShortPage, "short page"),
            (Command::Accounts, Fault::Malformed, "not the expected XML"),
            (Command::Domains, Fault::Html, "not the expected XML"),
            (Command::Members, Fault::Status(500), "HTTP 500"),
            (Command::Members, Fault::CutOff, "cut off"),
            (Command::Accounts, Fault::Stall, "no answer"),
        ];
        for (command, fault, expected) in faults {
            fake.fault(command, 0, fault);
            let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
            assert_eq!(run.status, "failed", "{expected}");
            let error = run.error.unwrap_or_default();
            assert!(error.contains(expected), "{expected}: {error}");
            assert_eq!(synced_users(&app, id).await.len(), 4, "{expected}: nothing changed");
            assert_eq!(fake.open_sessions(), 0, "{expected}: logged out on the error path too");
            fake.clear_faults();
        }
    }
}

crate::db_test! {
    async fn icewarp_a_server_ignoring_the_offset_fails_the_run_with_zero_changes(app) {
        // 600 accounts: two pages. A server that does not know `<offset>` answers the
        // second page with the first again.
        let fake = IceWarpFake::start().await;
        fake.generate(1, 600, 0, 0);
        fake.admin("admin@ice.example", "admin's password");
        let id = profile(&app, "Offsets", &fake, |_| {}).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let before = synced_users(&app, id).await.len();
        assert!(before >= 600, "{before}");
        let accounts = |fake: &IceWarpFake| fake.requests().iter().filter(|r| r.command == "getaccountsinfolist").count();
        let per_run = accounts(&fake);
        assert!(per_run >= 2, "paged: {per_run} account pages");
        fake.remove_account(&IceWarpFake::generated_email(0, 599));
        fake.fault(Command::Accounts, 1, Fault::IgnoresOffset);
        let run = sync::run(&ctx, id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        let error = run.error.unwrap_or_default();
        assert!(error.contains("repeats"), "{error}");
        assert_eq!(synced_users(&app, id).await.len(), before, "nothing changed");
        assert_eq!(fake.open_sessions(), 0, "logged out");
    }
}

async fn test_connection(app: &TestApp, f: &Fields) -> String {
    let res = post(
        app,
        "/admin/profiles/new?kind=icewarp",
        "/admin/profiles/test-connection",
        f,
        true,
    )
    .await;
    res.text().await.expect("dialog")
}

crate::db_test! {
    async fn icewarp_test_connection_and_picker_say_what_the_server_says(app) {
        let fake = server().await;
        app.sign_in_as_admin().await;
        let mut f = fields("Tested", &fake);
        let html = test_connection(&app, &f).await;
        assert!(html.contains("Connection succeeded") && html.contains("2 domain(s)"), "{html}");
        set(&mut f, "password", "wrong");
        let html = test_connection(&app, &f).await;
        assert!(html.contains("Connection failed") && html.contains("auth_login_invalid"), "{html}");
        set(&mut f, "password", "admin's password");
        let mut untrusted = f.clone();
        set(&mut untrusted, "trusted_certificate_pem", "");
        let html = test_connection(&app, &untrusted).await;
        assert!(html.contains("Connection failed"), "an unknown certificate is refused: {html}");

        let res = post(&app, "/admin/profiles/new?kind=icewarp", "/admin/profiles/groups", &f, true).await;
        let html = res.text().await.expect("picker");
        for shown in ["ice.example", "snow.example", "crew@ice.example", "news@ice.example"] {
            assert!(html.contains(shown), "{shown}: {html}");
        }
        assert_eq!(fake.open_sessions(), 0);
    }
}

crate::db_test! {
    async fn icewarp_users_sign_in_as_themselves_and_every_refusal_answers_alike(app) {
        let fake = server().await;
        let id = profile(&app, "Sign-in", &fake, |_| {}).await;
        let run = sync::run(&context(&app), id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let opened = fake.sessions_opened();
        let (status, _) = sign_in(&app, "carl@ice.example", "carl's password").await;
        assert_eq!(status, 303, "IceWarp said yes");
        assert_eq!(fake.sessions_opened(), opened + 1);
        assert_eq!(fake.open_sessions(), 0, "and the user's session was closed at once");
        let (wrong_status, wrong) = sign_in(&app, "carl@ice.example", "not his").await;
        assert_eq!(wrong_status, 401);
        assert!(last_failure(&app).await.contains("auth_login_invalid"));
        // An answer to the user's sign-in that does not parse: refused, its session closed
        // all the same, and its id in no audit entry.
        fake.fault(Command::Authenticate, 0, Fault::Malformed);
        assert_eq!(sign_in(&app, "carl@ice.example", "carl's password").await, (wrong_status, wrong.clone()));
        let audited = last_failure(&app).await;
        assert!(audited.contains("not the expected XML") && !audited.contains("wm-"), "{audited}");
        for _ in 0..50 {
            if fake.open_sessions() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(fake.open_sessions(), 0, "the session that came back was logged out");
        fake.clear_faults();
        for (fault, why) in [(Fault::Status(500), "HTTP 500"), (Fault::Html, "not the expected XML"), (Fault::ErrorIq("server_busy".into()), "could not check the password"), (Fault::Stall, "no answer")] {
            fake.fault(Command::Authenticate, 0, fault);
            assert_eq!(sign_in(&app, "carl@ice.example", "carl's password").await, (wrong_status, wrong.clone()), "{why}");
            assert!(last_failure(&app).await.contains(why), "{why}: {}", last_failure(&app).await);
            fake.clear_faults();
        }
    }
}
