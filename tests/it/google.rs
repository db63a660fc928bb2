//! Google Workspace synchronisation against the local fake of Google's token endpoint and
//! Directory API (`support::google`, which follows PROTOCOLS.md): full sync, alias changes,
//! rename, suspend, archive, delete, scope by group with nested membership, throttling
//! retried and past the budget, faults that must change nothing, and Test connection in
//! Google's words. Both backends.

use roster::db::ids::ProfileId;
use roster::sync::{self, Trigger};

use crate::profile_pages::{Fields, common_fields, create, post, set};
use crate::support::app::TestApp;
use crate::support::google::{
    DirectoryGroup, DirectoryUser, Fault, GoogleFake, GroupMember, Route, ServiceAccount,
};
use crate::sync::{context, memberships, names, pairs, synced_users};

pub const DOMAIN: &str = "acme.example";
pub const ADMIN: &str = "admin@acme.example";
pub const CLIENT_ID: &str = "123456789012-roster.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "GOCSPX-test-secret";

/// A Google Workspace profile as an admin saves it.
pub struct Profile {
    pub id: ProfileId,
    pub slug: String,
}

/// The profile form's fields for a Workspace served by `fake` (token URL, API and issuer
/// all at the fake).
pub fn google_fields(name: &str, fake: &GoogleFake, account: &ServiceAccount) -> Fields {
    let mut f = common_fields(name);
    f.extend([
        ("kind", "google_workspace".into()),
        ("domain", DOMAIN.into()),
        ("admin_user", ADMIN.into()),
        ("service_account_key", account.key_json.clone()),
        ("oidc_client_id", CLIENT_ID.into()),
        ("oidc_client_secret", CLIENT_SECRET.into()),
        ("token_url", fake.token_url()),
        ("api_url", fake.base_url().into()),
        ("oidc_issuer", fake.base_url().into()),
        ("timeout_seconds", "5".into()),
        ("delete_users", "on".into()),
        ("delete_groups", "on".into()),
        ("delete_threshold_percent", "100".into()),
    ]);
    f
}

/// Creates a Google profile through the admin form (the caller is signed in as admin),
/// with the redirect slug the form offers unless the fields name one.
pub async fn google_profile(app: &TestApp, mut fields: Fields) -> Profile {
    let slug = match fields.iter().find(|(k, _)| *k == "redirect_slug") {
        Some((_, slug)) => slug.clone(),
        None => {
            let form = app
                .get_html("/admin/profiles/new?kind=google_workspace")
                .await;
            let slug = form
                .split("name=\"redirect_slug\" value=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("slug")
                .to_owned();
            set(&mut fields, "redirect_slug", &slug);
            slug
        }
    };
    let id = create(app, &fields).await;
    Profile { id, slug }
}

/// A fake Workspace with its admin and a service account, and a profile pointed at it.
pub async fn workspace(
    app: &TestApp,
    name: &str,
    tweak: impl FnOnce(&mut Fields),
) -> (GoogleFake, Profile) {
    app.sign_in_as_admin().await;
    let fake = GoogleFake::start().await;
    fake.set_domain(DOMAIN);
    let mut admin = DirectoryUser::new(&crate::support::google::user_id(999), ADMIN, "Ada Admin");
    admin.is_admin = true;
    fake.upsert_user(admin);
    let account = fake.new_service_account("roster-sync@acme-project.iam.gserviceaccount.com");
    let mut fields = google_fields(name, &fake, &account);
    tweak(&mut fields);
    let profile = google_profile(app, fields).await;
    (fake, profile)
}

pub fn uid(n: usize) -> String {
    crate::support::google::user_id(n)
}

/// The admin, alice, bob (an alias), carol; Staff ⊃ Admins (nested) ⊃ alice; Staff has
/// bob and the customer; carol is in no group.
fn acme(fake: &GoogleFake) {
    let mut bob = DirectoryUser::new(&uid(2), "bob@acme.example", "Bob Baker");
    bob.aliases = vec!["b.baker@acme.example".into(), "BOB@acme.example".into()];
    bob.non_editable_aliases = vec!["bob@acme-alias.example".into()];
    for u in [
        DirectoryUser::new(&uid(1), "alice@acme.example", "Alice Archer"),
        bob,
        DirectoryUser::new(&uid(3), "carol@acme.example", "Carol Carter"),
    ] {
        fake.upsert_user(u);
    }
    let mut admins = DirectoryGroup::new(
        "03admins01",
        "admins@acme.example",
        "Admins",
        vec![GroupMember::User(uid(1))],
    );
    admins.description = "Workspace admins".into();
    fake.set_groups(vec![
        admins,
        DirectoryGroup::new(
            "03staff002",
            "staff@acme.example",
            "Staff",
            vec![
                GroupMember::User(uid(2)),
                GroupMember::Group("03admins01".into()),
                GroupMember::Customer,
            ],
        ),
    ]);
}

crate::db_test! {
    async fn google_sync_creates_renames_suspends_deletes_and_converges(app) {
        let (fake, profile) = workspace(&app, "Acme", |_| {}).await;
        acme(&fake);
        // Suspended before Roster saw him: brought in disabled.
        let mut dan = DirectoryUser::new(&uid(4), "dan@acme.example", "Dan Dormant");
        dan.suspended = true;
        fake.upsert_user(dan);
        let ctx = context(&app);

        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, profile.id).await;
        assert_eq!(names(&rows), [ADMIN, "alice@acme.example", "bob@acme.example", "carol@acme.example", "dan@acme.example"]);
        let bob = rows.iter().find(|r| r.username == "bob@acme.example").expect("bob");
        assert_eq!(bob.emails, ["bob@acme.example", "b.baker@acme.example", "bob@acme-alias.example"], "primary first, aliases once, then the domain aliases'");
        let plan = run.plan.as_ref().expect("plan");
        assert!(plan.warnings.iter().any(|w| w.contains("Staff") && w.contains("everyone in the organisation")), "the customer member is not dropped unseen: {:?}", plan.warnings);
        assert_eq!(bob.full_name, "Bob Baker");
        assert!(bob.mfa_required, "MFA by default");
        assert!(rows.iter().find(|r| r.username == "dan@acme.example").expect("dan").disabled, "suspended = disabled");
        // includeDerivedMembership: alice is in Staff through Admins; the customer is no user.
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Admins", "alice@acme.example"), ("Staff", "alice@acme.example"), ("Staff", "bob@acme.example")]));
        assert_eq!(fake.token_requests(), 1, "one token serves the whole run");
        let requests = fake.requests();
        assert!(requests.iter().any(|r| r.path_and_query.contains("/admin/directory/v1/users?customer=my_customer") && r.path_and_query.contains("maxResults=500") && r.path_and_query.contains("fields=")), "users read 500 a page with fields");
        assert!(requests.iter().any(|r| r.path_and_query.contains("/members?includeDerivedMembership=true")), "derived membership");

        // Unchanged source: nothing changes.
        let plan = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run").plan.expect("plan");
        assert!(plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty() && plan.memberships_removed.is_empty(), "{plan:?}");

        // bob is renamed (same id) and loses an alias, carol is archived, alice deleted.
        let bob_id = bob.id;
        let mut renamed = DirectoryUser::new(&uid(2), "robert@acme.example", "Robert Baker");
        renamed.aliases = vec!["bob@acme.example".into()];
        fake.upsert_user(renamed);
        fake.remove_user(&uid(1));
        let mut carol = DirectoryUser::new(&uid(3), "carol@acme.example", "Carol Carter");
        carol.archived = true;
        fake.upsert_user(carol);
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, profile.id).await;
        assert_eq!(names(&rows), [ADMIN, "carol@acme.example", "dan@acme.example", "robert@acme.example"], "alice deleted");
        assert!(rows[1].disabled, "archived = disabled");
        let robert = &rows[3];
        assert_eq!(robert.id, bob_id, "a rename keeps the user");
        assert_eq!(robert.emails, ["robert@acme.example", "bob@acme.example"], "aliases follow");
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Staff", "robert@acme.example")]));
    }
}

crate::db_test! {
    async fn google_scope_by_group_counts_nested_members_and_local_part(app) {
        let (fake, profile) = workspace(&app, "Scoped", |f| {
            set(f, "groups_to_sync", "staff@acme.example");
            set(f, "use_local_part", "on");
        }).await;
        acme(&fake);
        let run = sync::run(&context(&app), profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let plan = run.plan.expect("plan");
        // Staff (with Admins nested) holds alice and bob; carol and the admin are in no
        // chosen group. A group is chosen by its address as well as by its name.
        assert_eq!(names(&synced_users(&app, profile.id).await), ["alice", "bob"]);
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Staff", "alice"), ("Staff", "bob")]));
        // The name the directory sent is kept beside the local part, for directories that
        // check passwords by name.
        let kept = app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::users;
            users::table.filter(users::username.eq("alice")).select(users::directory_name).first::<String>(c).expect("alice")
        }).await;
        assert_eq!(kept, "alice@acme.example");
        assert!(plan.scope.as_deref().unwrap_or("").contains("2 of 4 users"), "{:?}", plan.scope);
    }
}

crate::db_test! {
    async fn google_throttling_is_retried_and_past_the_budget_changes_nothing(app) {
        let (fake, profile) = workspace(&app, "Throttled", |_| {}).await;
        acme(&fake);
        let ctx = context(&app);
        // Google's three ways of saying "slow down": waited out with backoff, then done.
        fake.fault(Route::Users, 0, Fault::RateLimit { status: 403, reason: "userRateLimitExceeded".into() });
        fake.fault(Route::Groups, 0, Fault::RateLimit { status: 429, reason: "rateLimitExceeded".into() });
        fake.fault(Route::Members, 0, Fault::RateLimit { status: 403, reason: "quotaExceeded".into() });
        let started = std::time::Instant::now();
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        // The run's third pause waits four times as long as its first: 1 + 2 + 4 s.
        assert!(started.elapsed() >= std::time::Duration::from_secs(7), "backoff grows across the run: {:?}", started.elapsed());
        assert_eq!(synced_users(&app, profile.id).await.len(), 4);

        // Throttled for good: the run fails after its retries and changes nothing.
        fake.remove_user(&uid(3));
        fake.throttle_always(Route::Users, 429);
        let started = std::time::Instant::now();
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        let error = run.error.unwrap_or_default();
        assert!(error.contains("retry budget") && error.contains("rateLimitExceeded"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "the budget bounds the wait");
        assert_eq!(synced_users(&app, profile.id).await.len(), 4, "a failed run changes nothing");
    }
}

crate::db_test! {
    async fn google_faults_mid_read_fail_the_run_with_zero_changes(app) {
        let (fake, profile) = workspace(&app, "Faulty", |_| {}).await;
        acme(&fake);
        let ctx = context(&app);
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        fake.remove_user(&uid(3));
        let faults = [
            (Route::Users, Fault::CutOff, "cut off"),
            (Route::Members, Fault::Garbage, "does not parse"),
            (Route::Groups, Fault::Error { status: 500, reason: "backendError".into(), message: "Backend Error".into() }, "HTTP 500 backendError"),
            (Route::Users, Fault::BadPageToken, "HTTP 400"),
            // JSON, but no list of Google's: not mistaken for the last, empty page.
            (Route::Members, Fault::Error { status: 200, reason: "ok".into(), message: "a proxy's JSON".into() }, "does not parse"),
            (Route::Members, Fault::Stall, "no answer"),
            (Route::Token, Fault::Stall, "no answer"),
        ];
        for (route, fault, expected) in faults {
            fake.expire_access_tokens();
            fake.fault(route, 0, fault);
            let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
            assert_eq!(run.status, "failed", "{expected}");
            let error = run.error.unwrap_or_default();
            assert!(error.contains(expected), "{expected}: {error}");
            assert_eq!(synced_users(&app, profile.id).await.len(), 4, "{expected}: nothing changed");
            fake.clear_faults();
        }
    }
}

crate::db_test! {
    async fn google_group_deleted_while_reading_is_left_out_with_a_warning(app) {
        let (fake, profile) = workspace(&app, "Racing", |_| {}).await;
        acme(&fake);
        fake.fault(Route::Members, 0, Fault::Error { status: 404, reason: "notFound".into(), message: "Resource Not Found: groupKey".into() });
        let run = sync::run(&context(&app), profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let plan = run.plan.expect("plan");
        assert!(plan.warnings.iter().any(|w| w.contains("deleted in Google Workspace while it was being read")), "{:?}", plan.warnings);
    }
}

/// The Test connection dialog of a stored profile for these fields (blank secrets mean the
/// stored ones), as its HTML.
async fn test_connection(app: &TestApp, profile: ProfileId, fields: &Fields) -> String {
    let page = format!("/admin/profiles/{profile}");
    let res = post(app, &page, &format!("{page}/test-connection"), fields, true).await;
    res.text().await.expect("dialog")
}

crate::db_test! {
    async fn google_test_connection_says_what_google_says(app) {
        app.sign_in_as_admin().await;
        let fake = GoogleFake::start().await;
        fake.set_domain(DOMAIN);
        let mut admin = DirectoryUser::new(&uid(999), ADMIN, "Ada Admin");
        admin.is_admin = true;
        fake.upsert_user(admin);
        acme(&fake);
        let account = fake.new_service_account("tested@acme-project.iam.gserviceaccount.com");
        let mut fields = google_fields("Tested", &fake, &account);
        let profile = google_profile(&app, fields.clone()).await;
        set(&mut fields, "redirect_slug", &profile.slug);
        set(&mut fields, "service_account_key", "");
        set(&mut fields, "oidc_client_secret", "");
        let html = test_connection(&app, profile.id, &fields).await;
        assert!(html.contains("Connection succeeded"), "{html}");
        assert!(html.contains("acting as admin@acme.example"), "{html}");

        // Domain-wide delegation not granted: Google's words, and the client id to allow.
        let other = fake.new_service_account("no-dwd@acme-project.iam.gserviceaccount.com");
        fake.set_delegation(&other.client_id, &[]);
        let mut typed = fields.clone();
        set(&mut typed, "service_account_key", &other.key_json);
        let html = test_connection(&app, profile.id, &typed).await;
        assert!(html.contains("unauthorized_client") && html.contains(&other.client_id) && html.contains("Domain-wide delegation"), "{html}");

        // An admin user the Workspace does not have.
        set(&mut fields, "admin_user", "nobody@acme.example");
        let html = test_connection(&app, profile.id, &fields).await;
        assert!(html.contains("invalid_grant") && html.contains("Invalid email or User ID") && html.contains("is not a user of this Google Workspace"), "{html}");

        // A user who is no administrator gets a token, then the Directory API says no.
        fake.upsert_user(DirectoryUser::new(&uid(50), "clerk@acme.example", "Clerk"));
        set(&mut fields, "admin_user", "clerk@acme.example");
        let html = test_connection(&app, profile.id, &fields).await;
        assert!(html.contains("Not Authorized to access this resource/api") && html.contains("must be a Workspace administrator"), "{html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_group_picker_asks_the_directory_live() {
    use roster::directory::Directory;
    roster::install_crypto_provider();
    let fake = GoogleFake::start().await;
    let mut admin = DirectoryUser::new(&uid(999), ADMIN, "Ada Admin");
    admin.is_admin = true;
    fake.upsert_user(admin);
    acme(&fake);
    let account = fake.new_service_account("picker@acme-project.iam.gserviceaccount.com");
    let key =
        roster::directory::google::ServiceAccountKey::from_json(&account.key_json.clone().into())
            .expect("key");
    let connector = roster::directory::google::GoogleDirectory::new(
        roster::directory::google::GoogleSettings {
            admin_user: ADMIN.into(),
            key,
            token_url: fake.token_url(),
            api_url: fake.base_url().into(),
            groups_to_sync: Vec::new(),
            timeout: std::time::Duration::from_secs(5),
            retry: Default::default(),
        },
        roster::tls::client_config(None).expect("tls"),
    )
    .expect("connector");
    let found = connector.list_groups("STA").await.expect("search");
    assert_eq!(
        found.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["Staff"]
    );
    assert_eq!(connector.list_groups("").await.expect("all").len(), 2);
    let report = connector.test_connection().await.expect("report");
    assert_eq!((report.users_matched, report.groups_matched), (4, 2));
}

crate::db_test! {
    async fn google_secrets_are_asked_again_when_the_urls_change(app) {
        let (fake, profile) = workspace(&app, "Moved", |_| {}).await;
        let account = fake.new_service_account("moved@acme-project.iam.gserviceaccount.com");
        let mut fields = google_fields("Moved", &fake, &account);
        set(&mut fields, "redirect_slug", &profile.slug);
        set(&mut fields, "service_account_key", "");
        set(&mut fields, "oidc_client_secret", "");
        // Another local server: the stored key and client secret must not go there unasked.
        let elsewhere = GoogleFake::start().await;
        set(&mut fields, "oidc_issuer", elsewhere.base_url());
        let page = format!("/admin/profiles/{}", profile.id);
        let res = post(&app, &page, &page, &fields, false).await;
        assert_eq!(res.status().as_u16(), 422);
        let body = res.text().await.expect("page");
        assert!(body.contains("enter the OpenID client secret again") && body.contains("enter the service-account key again"), "{body}");
        // The same URLs again: blank keeps the stored secrets.
        set(&mut fields, "oidc_issuer", fake.base_url());
        let res = post(&app, &page, &page, &fields, false).await;
        assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap_or_default());
    }
}

crate::db_test! {
    async fn google_tokens_only_go_to_googles_hosts(app) {
        app.sign_in_as_admin().await;
        let fake = GoogleFake::start().await;
        let account = fake.new_service_account("elsewhere@acme-project.iam.gserviceaccount.com");
        let mut f = google_fields("Elsewhere", &fake, &account);
        set(&mut f, "token_url", "https://oauth2.googleapis.com.evil.example/token");
        set(&mut f, "api_url", "https://evil.example");
        set(&mut f, "oidc_issuer", "https://accounts.google.com.evil.example");
        let res = post(&app, "/admin/profiles/new?kind=google_workspace", "/admin/profiles", &f, false).await;
        assert_eq!(res.status().as_u16(), 422);
        let page = res.text().await.expect("page");
        for label in ["Token URL (advanced) must be one of Google", "Directory API URL (advanced) must be one of Google", "OpenID issuer (advanced) must be one of Google"] {
            assert!(page.contains(label), "{label}: {page}");
        }
        set(&mut f, "token_url", "https://oauth2.googleapis.com/token");
        set(&mut f, "api_url", "https://admin.googleapis.com");
        set(&mut f, "oidc_issuer", "https://accounts.google.com");
        let res = post(&app, "/admin/profiles/new?kind=google_workspace", "/admin/profiles", &f, false).await;
        assert_eq!(res.status().as_u16(), 303, "Google's own hosts are fine");
    }
}
