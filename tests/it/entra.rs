//! Microsoft Entra ID synchronisation against the local fake of Entra's token endpoint and
//! Microsoft Graph (`support::entra`, which follows PROTOCOLS.md): full sync, rename,
//! disable, delete, scope by group with nesting, the two filters and guests, throttling
//! retried and past the budget, faults that must change nothing. Both backends.

use roster::db::ids::ProfileId;
use roster::db::models::directory_profiles;
use roster::profiles::KindSettings;
use roster::sync::{self, Trigger};

use crate::profile_pages::{Fields, common_fields, create, post, set};
use crate::support::app::TestApp;
use crate::support::entra::{EntraFake, Fault, GraphGroup, GraphUser, Member, Route};
use crate::sync::{context, memberships, names, pairs, synced_users};

pub const TENANT: &str = "7d3c1f0e-5b2a-4c9d-8e6f-0a1b2c3d4e5f";
pub const CLIENT_ID: &str = "0d7c2a4e-1b2c-4d5e-8f90-123456789abc";

/// An Entra ID profile as an admin saves it, Roster's side of an app registration.
pub struct Profile {
    pub id: ProfileId,
    pub slug: String,
    pub certificate_pem: String,
}

/// Creates an Entra ID profile through the admin form (the caller is signed in as admin),
/// its authority and Graph URL pointed at `authority`/`graph`.
pub async fn entra_profile(
    app: &TestApp,
    name: &str,
    authority: &str,
    graph: &str,
    tweak: impl FnOnce(&mut Fields),
) -> Profile {
    let form = app.get_html("/admin/profiles/new?kind=entra_id").await;
    let slug = form
        .split("name=\"redirect_slug\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("slug")
        .to_owned();
    let mut f = common_fields(name);
    f.extend([
        ("kind", "entra_id".into()),
        ("client_id", CLIENT_ID.into()),
        ("tenant_id", TENANT.into()),
        ("enabled_users_only", "on".into()),
        ("certificate_mode", "generate".into()),
        ("authority", authority.into()),
        ("graph_url", graph.into()),
        ("timeout_seconds", "5".into()),
        ("redirect_slug", slug.clone()),
        ("delete_users", "on".into()),
        ("delete_groups", "on".into()),
        ("delete_threshold_percent", "100".into()),
    ]);
    tweak(&mut f);
    let id = create(app, &f).await;
    let certificate_pem = app
        .conn(move |c| {
            let p = directory_profiles::find(c, id)
                .expect("find")
                .expect("profile");
            match KindSettings::of(&p).expect("settings") {
                KindSettings::Entra(s) => s.certificate_pem,
                other => panic!("not Entra: {other:?}"),
            }
        })
        .await;
    Profile {
        id,
        slug,
        certificate_pem,
    }
}

/// A fake tenant with the profile's app registered, and a profile pointed at it.
pub async fn tenant(
    app: &TestApp,
    name: &str,
    tweak: impl FnOnce(&mut Fields),
) -> (EntraFake, Profile) {
    app.sign_in_as_admin().await;
    let fake = EntraFake::start().await;
    let profile = entra_profile(app, name, fake.base_url(), fake.base_url(), tweak).await;
    fake.register_app(TENANT, CLIENT_ID, &profile.certificate_pem);
    (fake, profile)
}

pub fn user(id: &str, upn: &str, name: &str) -> GraphUser {
    GraphUser::member(id, upn, name)
}

/// alice, bob (two addresses), carol; staff ⊃ admins (nested) ⊃ alice; staff has bob and
/// a device; carol is in no group.
pub fn contoso(fake: &EntraFake) {
    let mut bob = user("id-bob", "bob@contoso.example", "Bob Baker");
    bob.mail = Some("bob@contoso.example".into());
    bob.proxy_addresses = vec![
        "smtp:b.baker@contoso.example".into(),
        "SMTP:bob@contoso.example".into(),
        "SIP:bob@contoso.example".into(),
    ];
    fake.set_users(vec![
        user("id-alice", "alice@contoso.example", "Alice Archer"),
        bob,
        user("id-carol", "carol@contoso.example", "Carol Carter"),
    ]);
    fake.set_groups(vec![
        GraphGroup {
            id: "g-admins".into(),
            display_name: "Admins".into(),
            description: Some("Tenant admins".into()),
            members: vec![Member::User("id-alice".into())],
            extra: Default::default(),
        },
        GraphGroup {
            id: "g-staff".into(),
            display_name: "Staff".into(),
            description: None,
            members: vec![
                Member::User("id-bob".into()),
                Member::Group("g-admins".into()),
                Member::Device("dev-1".into()),
            ],
            extra: Default::default(),
        },
    ]);
}

crate::db_test! {
    async fn entra_sync_creates_renames_disables_deletes_and_converges(app) {
        let (fake, profile) = tenant(&app, "Contoso", |_| {}).await;
        contoso(&fake);
        // Disabled before Roster ever saw him: "enabled users only" does not bring him in.
        let mut dan = user("id-dan", "dan@contoso.example", "Dan Disabled");
        dan.account_enabled = false;
        fake.upsert_user(dan);
        let ctx = context(&app);

        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, profile.id).await;
        assert_eq!(names(&rows), ["alice@contoso.example", "bob@contoso.example", "carol@contoso.example"]);
        let bob = rows.iter().find(|r| r.username == "bob@contoso.example").expect("bob");
        assert_eq!(bob.emails, ["bob@contoso.example", "b.baker@contoso.example"], "primary SMTP first, SIP left out");
        assert!(bob.mfa_required, "MFA by default");
        // transitiveMembers: alice is in Staff through Admins; the device is not a user.
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Admins", "alice@contoso.example"), ("Staff", "alice@contoso.example"), ("Staff", "bob@contoso.example")]));
        let token_requests = fake.token_requests();
        assert_eq!(token_requests, 1, "one token serves the whole run");
        let requests = fake.requests();
        assert!(requests.iter().any(|r| r.path_and_query.contains("$select=") && r.path_and_query.contains("accountEnabled") && r.path_and_query.contains("$top=999")), "users are read with $select and $top=999");

        // Unchanged source: nothing changes.
        let plan = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run").plan.expect("plan");
        assert!(plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty() && plan.memberships_removed.is_empty(), "{plan:?}");

        // bob is renamed (same id), carol is disabled in Entra ID, alice is deleted.
        let bob_id = bob.id;
        let mut renamed = user("id-bob", "robert@contoso.example", "Robert Baker");
        renamed.mail = Some("robert@contoso.example".into());
        fake.upsert_user(renamed);
        fake.remove_user("id-alice");
        let mut carol = user("id-carol", "carol@contoso.example", "Carol Carter");
        carol.account_enabled = false;
        fake.upsert_user(carol);
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, profile.id).await;
        assert_eq!(names(&rows), ["carol@contoso.example", "robert@contoso.example"], "alice deleted");
        assert!(rows[0].disabled, "carol, disabled in Entra ID, is disabled here (and signed out)");
        assert_eq!(rows[1].id, bob_id, "a rename keeps the user");
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Staff", "robert@contoso.example")]));
    }
}

crate::db_test! {
    async fn entra_disabled_users_are_kept_disabled_when_enabled_only_is_off(app) {
        let (fake, profile) = tenant(&app, "All accounts", |f| set(f, "enabled_users_only", "")).await;
        contoso(&fake);
        let mut carol = user("id-carol", "carol@contoso.example", "Carol Carter");
        carol.account_enabled = false;
        fake.upsert_user(carol);
        let run = sync::run(&context(&app), profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, profile.id).await;
        let carol = rows.iter().find(|r| r.username == "carol@contoso.example").expect("carol");
        assert!(carol.disabled, "disabled in Entra ID, disabled here");
    }
}

crate::db_test! {
    async fn entra_scope_filters_guests_and_local_part(app) {
        let (fake, profile) = tenant(&app, "Scoped", |f| {
            set(f, "groups_to_sync", "Staff");
            set(f, "mailbox_users_only", "on");
            set(f, "use_local_part", "on");
        }).await;
        contoso(&fake);
        let mut no_mailbox = user("id-dave", "dave@contoso.example", "Dave Dunn");
        no_mailbox.assigned_plans.clear();
        fake.upsert_user(no_mailbox);
        let mut guest = user("id-gus", "gus_fabrikam.example#EXT#@contoso.example", "Gus Guest");
        guest.user_type = "Guest".into();
        fake.upsert_user(guest);
        fake.upsert_group(GraphGroup::new("g-staff", "Staff", vec![
            Member::User("id-bob".into()),
            Member::Group("g-admins".into()),
            Member::Device("dev-1".into()),
            Member::User("id-dave".into()),
            Member::User("id-gus".into()),
        ]));

        let run = sync::run(&context(&app), profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let plan = run.plan.expect("plan");
        // Staff (with Admins nested) holds alice and bob; carol is in no chosen group, dave
        // has no mailbox, gus is a guest.
        assert_eq!(names(&synced_users(&app, profile.id).await), ["alice", "bob"]);
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Staff", "alice"), ("Staff", "bob")]));
        assert!(plan.scope.as_deref().unwrap_or("").contains("2 of 3 users"), "{:?}", plan.scope);
        assert!(plan.warnings.iter().any(|w| w.contains("Staff") && w.contains("2 member")), "{:?}", plan.warnings);

        // With guests included, gus comes in (he is in Staff).
        let fake2 = EntraFake::start().await;
        let profile2 = entra_profile(&app, "Guests too", fake2.base_url(), fake2.base_url(), |f| set(f, "include_guests", "on")).await;
        fake2.register_app(TENANT, CLIENT_ID, &profile2.certificate_pem);
        contoso(&fake2);
        let mut guest = user("id-gus", "gus_fabrikam.example#EXT#@contoso.example", "Gus Guest");
        guest.user_type = "Guest".into();
        fake2.upsert_user(guest);
        let run = sync::run(&context(&app), profile2.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert!(names(&synced_users(&app, profile2.id).await).contains(&"gus_fabrikam.example#EXT#@contoso.example"));
    }
}

crate::db_test! {
    async fn entra_throttling_is_retried_and_past_the_budget_changes_nothing(app) {
        let (fake, profile) = tenant(&app, "Throttled", |_| {}).await;
        contoso(&fake);
        let ctx = context(&app);
        // Two throttles (with and without Retry-After) and a 503: waited out, then done.
        fake.fault(Route::Users, 0, Fault::Throttle { retry_after: Some(1) });
        fake.fault(Route::Members, 0, Fault::Unavailable { retry_after: Some(1) });
        fake.fault(Route::Groups, 0, Fault::Throttle { retry_after: None });
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(synced_users(&app, profile.id).await.len(), 3);

        // Throttled for good: the run fails after its retries and changes nothing.
        fake.remove_user("id-carol");
        fake.throttle_always(Route::Users, Some(1));
        let started = std::time::Instant::now();
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        let error = run.error.unwrap_or_default();
        assert!(error.contains("retry budget") && error.contains("TooManyRequests"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the budget bounds the wait");
        assert_eq!(synced_users(&app, profile.id).await.len(), 3, "a failed run changes nothing");
    }
}

crate::db_test! {
    async fn entra_faults_mid_read_fail_the_run_with_zero_changes(app) {
        let (fake, profile) = tenant(&app, "Faulty", |_| {}).await;
        contoso(&fake);
        let ctx = context(&app);
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        fake.remove_user("id-carol");
        let faults = [
            (Route::Users, Fault::CutOff, "cut off"),
            (Route::Members, Fault::Garbage, "does not parse"),
            (Route::Groups, Fault::Error { status: 403, code: "Authorization_RequestDenied".into(), message: "Insufficient privileges to complete the operation.".into() }, "GroupMember.Read.All"),
            (Route::Users, Fault::Truncated, "Graph answered HTTP 400"),
            (Route::Members, Fault::Stall, "no answer"),
        ];
        for (route, fault, expected) in faults {
            // A complete read each time (faults in delta rounds: `entra_delta`).
            let id = profile.id;
            app.conn(move |c| roster::db::models::change_cursors::clear(c, id).expect("clear")).await;
            // The first users request of a complete read takes the delta link; the listing
            // is the second.
            fake.fault(route, usize::from(route == Route::Users), fault);
            let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
            assert_eq!(run.status, "failed", "{expected}");
            let error = run.error.unwrap_or_default();
            assert!(error.contains(expected), "{expected}: {error}");
            assert_eq!(synced_users(&app, profile.id).await.len(), 3, "{expected}: nothing changed");
            fake.clear_faults();
        }
    }
}

crate::db_test! {
    async fn entra_group_deleted_while_reading_is_left_out_with_a_warning(app) {
        let (fake, profile) = tenant(&app, "Racing", |_| {}).await;
        contoso(&fake);
        fake.fault(Route::Members, 0, Fault::Error { status: 404, code: "Request_ResourceNotFound".into(), message: "Resource 'g-admins' does not exist.".into() });
        let run = sync::run(&context(&app), profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let plan = run.plan.expect("plan");
        assert!(plan.warnings.iter().any(|w| w.contains("deleted in Entra ID while it was being read")), "{:?}", plan.warnings);
        assert_eq!(plan.groups.len(), 1, "{:?}", plan.groups);
    }
}

crate::db_test! {
    async fn entra_token_errors_are_shown_in_entras_words(app) {
        app.sign_in_as_admin().await;
        let fake = EntraFake::start().await;
        let profile = entra_profile(&app, "Unregistered", fake.base_url(), fake.base_url(), |_| {}).await;
        let ctx = context(&app);
        // The tenant is unknown to the fake (nothing registered).
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        assert!(run.error.unwrap_or_default().contains("AADSTS90002"));
        // The tenant knows the app, but with another certificate.
        let other = roster::profiles::certificate::generate("other").expect("cert");
        fake.register_app(TENANT, CLIENT_ID, &other.certificate_pem);
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert!(run.error.unwrap_or_default().contains("AADSTS700027"));
    }
}

/// The connector as the profile dialogs use it, pointed at a fake.
fn connector(
    fake: &EntraFake,
    certificate: &roster::profiles::certificate::Credential,
    tenant: &str,
) -> roster::directory::entra::EntraDirectory {
    roster::directory::entra::EntraDirectory::new(
        roster::directory::entra::EntraSettings {
            tenant_id: tenant.into(),
            client_id: CLIENT_ID.into(),
            authority: fake.base_url().into(),
            graph_url: fake.base_url().into(),
            certificate_pem: certificate.certificate_pem.clone(),
            private_key_pem: certificate.private_key_pem.clone(),
            enabled_users_only: true,
            mailbox_users_only: false,
            include_guests: false,
            groups_to_sync: Vec::new(),
            timeout: std::time::Duration::from_secs(5),
            retry: Default::default(),
        },
        roster::tls::client_config(None).expect("tls"),
    )
    .expect("connector")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_test_connection_and_group_picker_say_what_entra_says() {
    use roster::directory::Directory;
    roster::install_crypto_provider();
    let fake = EntraFake::start().await;
    contoso(&fake);
    let credential = roster::profiles::certificate::generate("picker").expect("cert");
    fake.register_app(TENANT, CLIENT_ID, &credential.certificate_pem);

    let report = connector(&fake, &credential, TENANT)
        .test_connection()
        .await
        .expect("connected");
    assert!(report.bound_as.contains(TENANT), "{report:?}");
    assert_eq!((report.users_matched, report.groups_matched), (3, 2));
    // The picker asks Graph live, by name ($search needs ConsistencyLevel: eventual).
    let found = connector(&fake, &credential, TENANT)
        .list_groups("STA")
        .await
        .expect("search");
    assert_eq!(
        found.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["Staff"]
    );
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path_and_query.contains("$search")
                && r.consistency_level.as_deref() == Some("eventual"))
    );
    let all = connector(&fake, &credential, TENANT)
        .list_groups("")
        .await
        .expect("all");
    assert_eq!(all.len(), 2);

    // Entra's own words: an unknown tenant, an unknown application, a certificate the app
    // does not have, consent missing (Graph's 403).
    let unknown_tenant = connector(&fake, &credential, "00000000-0000-4000-8000-000000000000")
        .test_connection()
        .await
        .expect_err("tenant");
    assert!(
        unknown_tenant.explained().contains("AADSTS90002"),
        "{unknown_tenant}"
    );
    let other_app = EntraFake::start().await;
    other_app.register_app(
        TENANT,
        "99999999-0000-4000-8000-000000000000",
        &credential.certificate_pem,
    );
    let unknown_app = connector(&other_app, &credential, TENANT)
        .test_connection()
        .await
        .expect_err("app");
    assert!(
        unknown_app.explained().contains("AADSTS700016"),
        "{unknown_app}"
    );
    let other = roster::profiles::certificate::generate("other").expect("cert");
    let wrong_certificate = connector(&fake, &other, TENANT)
        .test_connection()
        .await
        .expect_err("certificate");
    assert!(
        wrong_certificate.explained().contains("AADSTS700027"),
        "{wrong_certificate}"
    );
    fake.fault(
        Route::Users,
        0,
        Fault::Error {
            status: 403,
            code: "Authorization_RequestDenied".into(),
            message: "Insufficient privileges to complete the operation.".into(),
        },
    );
    let no_consent = connector(&fake, &credential, TENANT)
        .test_connection()
        .await
        .expect_err("consent");
    assert!(
        no_consent
            .explained()
            .contains("Authorization_RequestDenied")
            && no_consent.explained().contains("admin consent"),
        "{no_consent}"
    );
}

crate::db_test! {
    async fn entra_tokens_only_go_to_microsofts_clouds(app) {
        app.sign_in_as_admin().await;
        let mut f = common_fields("Elsewhere");
        f.extend([
            ("kind", "entra_id".into()),
            ("client_id", CLIENT_ID.into()),
            ("tenant_id", TENANT.into()),
            ("certificate_mode", "generate".into()),
            ("authority", "https://login.evil.example".into()),
            ("graph_url", "https://graph.microsoft.com.evil.example".into()),
        ]);
        let res = post(&app, "/admin/profiles/new?kind=entra_id", "/admin/profiles", &f, false).await;
        assert_eq!(res.status().as_u16(), 422);
        let page = res.text().await.expect("page");
        assert!(page.contains("Sign-in authority (advanced) must be one of Microsoft&#39;s: https://login.microsoftonline.com"), "{page}");
        assert!(page.contains("Microsoft Graph URL (advanced) must be one of"), "{page}");
        set(&mut f, "authority", "https://login.microsoftonline.us");
        set(&mut f, "graph_url", "https://graph.microsoft.us/v1.0");
        let page = post(&app, "/admin/profiles/new?kind=entra_id", "/admin/profiles", &f, false).await.text().await.expect("page");
        assert!(page.contains("without a path"), "{page}");
        set(&mut f, "graph_url", "https://graph.microsoft.us");
        let res = post(&app, "/admin/profiles/new?kind=entra_id", "/admin/profiles", &f, false).await;
        assert_eq!(res.status().as_u16(), 303, "a national cloud is fine");
    }
}

crate::db_test! {
    async fn entra_throttling_of_concurrent_member_reads_is_one_pause(app) {
        let (fake, profile) = tenant(&app, "Busy", |_| {}).await;
        fake.generate(40, 12, 5);
        // Graph throttles the application: the first eight member reads, in flight
        // together, all get 429. One pause, not eight retries of a budget of five.
        for _ in 0..8 {
            fake.fault(Route::Members, 0, Fault::Throttle { retry_after: Some(1) });
        }
        let run = sync::run(&context(&app), profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(synced_users(&app, profile.id).await.len(), 40);
    }
}

crate::db_test! {
    async fn entra_test_connection_before_the_first_save_says_to_save_and_upload(app) {
        app.sign_in_as_admin().await;
        let mut f = common_fields("Unsaved");
        f.extend([
            ("kind", "entra_id".into()),
            ("client_id", CLIENT_ID.into()),
            ("tenant_id", TENANT.into()),
            ("certificate_mode", "generate".into()),
        ]);
        let res = post(&app, "/admin/profiles/new?kind=entra_id", "/admin/profiles/test-connection", &f, true).await;
        let html = res.text().await.expect("dialog");
        assert!(html.contains("Connection failed") && html.contains("upload the certificate to the app registration"), "{html}");
    }
}
