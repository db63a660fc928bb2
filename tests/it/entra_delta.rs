//! Entra ID delta synchronisation against the fake's `/users/delta` and `/groups/delta`
//! (PROTOCOLS.md, "Delta"): after a complete read the next runs ask only for changes —
//! creates, renames, disables, deletions, membership changes — and end where a complete
//! read would; an expired or unknown delta link, a day-old complete read, saving the
//! profile and "Full synchronisation" read everything; a delta that deletes past the
//! threshold is held like any run, and its cursor is kept only when it is applied.

use roster::db::ids::ProfileId;
use roster::db::models::change_cursors::{self, ChangeCursor};
use roster::sync::{self, Trigger};

use crate::entra::{contoso, tenant, user};
use crate::profile_pages::set;
use crate::support::app::TestApp;
use crate::support::entra::{EntraFake, Fault, GraphGroup, Member, Route};
use crate::sync::{context, finished_run_page, memberships, names, pairs, synced_users};

async fn cursor(app: &TestApp, profile: ProfileId) -> Option<ChangeCursor> {
    app.conn(move |c| change_cursors::find(c, profile).expect("cursor"))
        .await
}

/// The Graph requests of `run`, as paths.
async fn requests_of<F: std::future::Future<Output = sync::Outcome>>(
    fake: &EntraFake,
    run: F,
) -> (sync::Outcome, Vec<String>) {
    let before = fake.requests().len();
    let outcome = run.await;
    let paths = fake.requests()[before..]
        .iter()
        .filter(|r| r.path_and_query.starts_with("/v1.0/"))
        .map(|r| r.path_and_query.clone())
        .collect();
    (outcome, paths)
}

fn full_read(paths: &[String]) -> bool {
    paths.iter().any(|p| p.starts_with("/v1.0/users?"))
}

crate::db_test! {
    async fn entra_delta_sync_reads_only_changes_and_ends_where_a_full_read_does(app) {
        let (fake, profile) = tenant(&app, "Delta", |_| {}).await;
        contoso(&fake);
        let ctx = context(&app);
        let run = || sync::run(&ctx, profile.id, Trigger::Cli, "test", false);
        let (first, paths) = requests_of(&fake, async { run().await.expect("run") }).await;
        assert_eq!(first.status, "succeeded", "{:?}", first.error);
        assert!(full_read(&paths), "{paths:?}");
        assert!(paths.iter().any(|p| p.starts_with("/v1.0/users/delta?") && p.contains("$deltatoken=latest")), "the cursor is taken with the read: {paths:?}");
        let kept = cursor(&app, profile.id).await.expect("a cursor after the complete read");

        // Nothing changed: the two delta rounds and nothing else.
        let (same, paths) = requests_of(&fake, async { run().await.expect("run") }).await;
        assert_eq!(same.status, "succeeded", "{:?}", same.error);
        assert_eq!(paths.len(), 2, "{paths:?}");
        assert!(paths[0].starts_with("/v1.0/users/delta?$deltatoken=") && paths[1].starts_with("/v1.0/groups/delta?$deltatoken="), "{paths:?}");
        let plan = same.plan.expect("plan");
        assert!(plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty(), "{plan:?}");
        assert_eq!(plan.users_unchanged, 3);
        assert_ne!(cursor(&app, profile.id).await.expect("cursor").users_link, kept.users_link, "the next round starts from the new link");

        // bob renamed, carol disabled, alice gone, erin new in Staff, Admins renamed.
        let mut renamed = user("id-bob", "robert@contoso.example", "Robert Baker");
        renamed.mail = Some("robert@contoso.example".into());
        fake.upsert_user(renamed);
        let mut carol = user("id-carol", "carol@contoso.example", "Carol Carter");
        carol.account_enabled = false;
        fake.upsert_user(carol);
        fake.remove_user("id-alice");
        fake.upsert_user(user("id-erin", "erin@contoso.example", "Erin Evans"));
        fake.upsert_group(GraphGroup::new("g-staff", "Staff", vec![
            Member::User("id-bob".into()),
            Member::Group("g-admins".into()),
            Member::User("id-erin".into()),
        ]));
        let (changed, paths) = requests_of(&fake, async { run().await.expect("run") }).await;
        assert_eq!(changed.status, "succeeded", "{:?}", changed.error);
        assert!(!full_read(&paths), "only changes are read: {paths:?}");
        let rows = synced_users(&app, profile.id).await;
        assert_eq!(names(&rows), ["carol@contoso.example", "erin@contoso.example", "robert@contoso.example"]);
        assert!(rows[0].disabled, "carol is disabled");
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Staff", "erin@contoso.example"), ("Staff", "robert@contoso.example")]));

        // A user who leaves the scope (a guest now) goes, like in a complete read.
        let mut guest = user("id-erin", "erin@contoso.example", "Erin Evans");
        guest.user_type = "Guest".into();
        fake.upsert_user(guest);
        let (gone, paths) = requests_of(&fake, async { run().await.expect("run") }).await;
        assert_eq!(gone.status, "succeeded", "{:?}", gone.error);
        assert!(!full_read(&paths), "{paths:?}");
        assert_eq!(names(&synced_users(&app, profile.id).await), ["carol@contoso.example", "robert@contoso.example"]);

        // A complete read now finds nothing the changes missed.
        app.conn(move |c| change_cursors::clear(c, profile.id).expect("clear")).await;
        let (full, paths) = requests_of(&fake, async { run().await.expect("run") }).await;
        assert!(full_read(&paths), "{paths:?}");
        let plan = full.plan.expect("plan");
        assert!(plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty() && plan.memberships_removed.is_empty(), "the delta runs converged: {plan:?}");
    }
}

crate::db_test! {
    async fn entra_delta_users_sent_partially_are_read_whole(app) {
        let (fake, profile) = tenant(&app, "Partial", |_| {}).await;
        contoso(&fake);
        let ctx = context(&app);
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        fake.set_partial_delta(true);
        let mut carol = user("id-carol", "carol@contoso.example", "Carol Carter-Smith");
        carol.account_enabled = false;
        fake.upsert_user(carol);
        let (run, paths) = requests_of(&fake, async { sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run") }).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert!(paths.iter().any(|p| p.starts_with("/v1.0/users/id-carol?$select=")), "{paths:?}");
        let rows = synced_users(&app, profile.id).await;
        let carol = rows.iter().find(|r| r.username == "carol@contoso.example").expect("carol");
        assert!(carol.disabled, "the status came from the user read whole, not guessed");
    }
}

crate::db_test! {
    async fn entra_expired_or_unknown_delta_links_and_a_day_old_read_read_everything(app) {
        let (fake, profile) = tenant(&app, "Expiring", |_| {}).await;
        contoso(&fake);
        let ctx = context(&app);
        let run = || async { sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run") };
        assert_eq!(run().await.status, "succeeded");

        // Expired (410 resyncRequired): the same run reads everything and applies.
        fake.upsert_user(user("id-frank", "frank@contoso.example", "Frank Fox"));
        fake.expire_delta_links();
        let (expired, paths) = requests_of(&fake, run()).await;
        assert_eq!(expired.status, "succeeded", "{:?}", expired.error);
        assert!(full_read(&paths), "{paths:?}");
        assert!(names(&synced_users(&app, profile.id).await).contains(&"frank@contoso.example"));
        // …with a new cursor that works.
        let (after, paths) = requests_of(&fake, run()).await;
        assert_eq!(after.status, "succeeded");
        assert_eq!(paths.len(), 2, "{paths:?}");

        // A link Graph does not know (400 syncStateNotFound): everything again.
        let mut bogus = cursor(&app, profile.id).await.expect("cursor");
        bogus.users_link = format!("{}/v1.0/users/delta?$deltatoken=unknown", fake.base_url());
        app.conn(move |c| change_cursors::save(c, &bogus).expect("save")).await;
        let (unknown, paths) = requests_of(&fake, run()).await;
        assert_eq!(unknown.status, "succeeded", "{:?}", unknown.error);
        assert!(full_read(&paths), "{paths:?}");

        // The last complete read a day ago: everything, whatever the changes say.
        let mut old = cursor(&app, profile.id).await.expect("cursor");
        old.full_read_at -= 25 * 3600;
        app.conn(move |c| change_cursors::save(c, &old).expect("save")).await;
        let (daily, paths) = requests_of(&fake, run()).await;
        assert_eq!(daily.status, "succeeded");
        assert!(full_read(&paths), "{paths:?}");
        let renewed = cursor(&app, profile.id).await.expect("cursor");
        assert!(roster::db::now() - renewed.full_read_at < 60, "the complete read is dated now");

        // A cursor is never sent elsewhere than the profile's Graph URL.
        let mut foreign = renewed.clone();
        foreign.users_link = "https://attacker.example/v1.0/users/delta?$deltatoken=x".into();
        app.conn(move |c| change_cursors::save(c, &foreign).expect("save")).await;
        let refused = run().await;
        assert_eq!(refused.status, "failed");
        assert!(refused.error.unwrap_or_default().contains("outside"), "the bearer token stays with Graph");
    }
}

crate::db_test! {
    async fn entra_delta_deleting_past_the_threshold_is_held_and_keeps_its_cursor(app) {
        let (fake, profile) = tenant(&app, "Guarded", |f| set(f, "delete_threshold_count", "1")).await;
        contoso(&fake);
        let ctx = context(&app);
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let kept = cursor(&app, profile.id).await.expect("cursor");
        fake.remove_user("id-alice");
        fake.remove_user("id-bob");
        let (held, paths) = requests_of(&fake, async { sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run") }).await;
        assert!(!full_read(&paths), "{paths:?}");
        assert_eq!(held.status, "held", "{:?}", held.error);
        assert!(held.plan.as_ref().and_then(|p| p.held.clone()).unwrap_or_default().contains("2 users would be deleted"));
        assert_eq!(synced_users(&app, profile.id).await.len(), 3, "nothing applied");
        assert_eq!(cursor(&app, profile.id).await, Some(kept.clone()), "a held run keeps the old cursor");
        // A dry run neither.
        let dry = sync::run(&ctx, profile.id, Trigger::Cli, "test", true).await.expect("run");
        assert_eq!(dry.status, "succeeded");
        assert_eq!(cursor(&app, profile.id).await, Some(kept.clone()));

        let approved = sync::approve(&ctx, held.run_id).await.expect("approve");
        assert_eq!(approved.status, "succeeded", "{:?}", approved.error);
        assert_eq!(names(&synced_users(&app, profile.id).await), ["carol@contoso.example"]);
        assert_ne!(cursor(&app, profile.id).await.expect("cursor").users_link, kept.users_link, "applied: the cursor moves on");
    }
}

crate::db_test! {
    async fn entra_full_synchronisation_from_the_profile_page_and_saving_read_everything(app) {
        let (fake, profile) = tenant(&app, "Button", |_| {}).await;
        contoso(&fake);
        let page = format!("/admin/profiles/{}", profile.id);
        let html = app.get_html(&page).await;
        assert!(html.contains("Full synchronisation") && html.contains("name=\"full\" value=\"1\""), "{html}");
        let res = app.post_form(&page, &format!("{page}/sync"), &[]).await;
        let run = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("run").to_owned();
        finished_run_page(&app, &run).await;
        assert!(cursor(&app, profile.id).await.is_some());

        let before = fake.requests().len();
        let res = app.post_form(&page, &format!("{page}/sync"), &[("full", "1")]).await;
        let run = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("run").to_owned();
        let done = finished_run_page(&app, &run).await;
        assert!(done.contains("Full synchronisation started") || done.contains("Synchronisation finished."), "{done}");
        let paths: Vec<String> = fake.requests()[before..].iter().map(|r| r.path_and_query.clone()).collect();
        assert!(full_read(&paths), "{paths:?}");
        let audit = app.get_html("/admin/audit").await;
        assert!(audit.contains("everything read again"), "{audit}");

        // Saving the profile's settings drops the cursor: what is in scope may differ.
        assert!(cursor(&app, profile.id).await.is_some());
        let mut f = crate::profile_pages::common_fields("Button");
        f.extend([
            ("kind", "entra_id".into()),
            ("client_id", crate::entra::CLIENT_ID.into()),
            ("tenant_id", crate::entra::TENANT.into()),
            ("enabled_users_only", "on".into()),
            ("mailbox_users_only", "on".into()),
            ("certificate_mode", "keep".into()),
            ("authority", fake.base_url().into()),
            ("graph_url", fake.base_url().into()),
            ("timeout_seconds", "5".into()),
            ("redirect_slug", profile.slug.clone()),
        ]);
        let res = crate::profile_pages::post(&app, &page, &page, &f, false).await;
        assert_eq!(res.status().as_u16(), 303, "saved");
        assert!(cursor(&app, profile.id).await.is_none());
    }
}

crate::db_test! {
    async fn entra_delta_rounds_that_fail_midway_change_nothing_and_keep_the_cursor(app) {
        let (fake, profile) = tenant(&app, "Faulty delta", |_| {}).await;
        contoso(&fake);
        let ctx = context(&app);
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let kept = cursor(&app, profile.id).await;
        fake.remove_user("id-carol");
        fake.upsert_user(user("id-gina", "gina@contoso.example", "Gina Gold"));
        fake.upsert_group(GraphGroup::new("g-staff", "Staff", vec![Member::User("id-bob".into()), Member::Group("g-admins".into()), Member::User("id-gina".into())]));
        let faults = [
            (Route::Users, Fault::CutOff, "cut off"),
            (Route::Users, Fault::Garbage, "does not parse"),
            (Route::Users, Fault::Stall, "no answer"),
            (Route::Groups, Fault::Error { status: 403, code: "Authorization_RequestDenied".into(), message: "Insufficient privileges to complete the operation.".into() }, "GroupMember.Read.All"),
            (Route::Members, Fault::Stall, "no answer"),
            (Route::Users, Fault::Error { status: 500, code: "generalException".into(), message: "General error.".into() }, "generalException"),
        ];
        for (route, fault, expected) in faults {
            fake.fault(route, 0, fault);
            let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
            assert_eq!(run.status, "failed", "{expected}");
            let error = run.error.unwrap_or_default();
            assert!(error.contains(expected), "{expected}: {error}");
            assert_eq!(names(&synced_users(&app, profile.id).await).len(), 3, "{expected}: nothing changed");
            assert_eq!(cursor(&app, profile.id).await, kept, "{expected}: the cursor is kept");
            fake.clear_faults();
        }
        let run = sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, profile.id).await), ["alice@contoso.example", "bob@contoso.example", "gina@contoso.example"]);
        assert!(memberships(&app, profile.id).await.contains(&("Staff".to_owned(), "gina@contoso.example".to_owned())));
    }
}

crate::db_test! {
    async fn entra_delta_reads_again_only_the_changed_groups_their_parents_and_newcomers_groups(app) {
        let (fake, profile) = tenant(&app, "Nested", |_| {}).await;
        contoso(&fake);
        // Ivy is in Staff but a guest: not synchronised.
        let mut ivy = user("id-ivy", "ivy@contoso.example", "Ivy Ives");
        ivy.user_type = "Guest".into();
        fake.upsert_user(ivy);
        let staff = |extra: Vec<Member>| {
            let mut members = vec![Member::User("id-bob".into()), Member::Group("g-admins".into()), Member::User("id-ivy".into())];
            members.extend(extra);
            GraphGroup::new("g-staff", "Staff", members)
        };
        fake.upsert_group(staff(Vec::new()));
        let ctx = context(&app);
        let run = || async { sync::run(&ctx, profile.id, Trigger::Cli, "test", false).await.expect("run") };
        assert_eq!(run().await.status, "succeeded");
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Admins", "alice@contoso.example"), ("Staff", "alice@contoso.example"), ("Staff", "bob@contoso.example")]));

        // Carol joins Admins, nested in Staff: both are read again, no other group.
        fake.upsert_group(GraphGroup::new("g-admins", "Admins", vec![Member::User("id-alice".into()), Member::User("id-carol".into())]));
        let (changed, paths) = requests_of(&fake, run()).await;
        assert_eq!(changed.status, "succeeded", "{:?}", changed.error);
        assert!(!full_read(&paths), "{paths:?}");
        let member_reads: Vec<&String> = paths.iter().filter(|p| p.contains("/transitiveMember")).collect();
        assert_eq!(member_reads.len(), 3, "Admins' parents, then Admins' and Staff's members: {member_reads:?}");
        assert_eq!(memberships(&app, profile.id).await, pairs(&[
            ("Admins", "alice@contoso.example"), ("Admins", "carol@contoso.example"),
            ("Staff", "alice@contoso.example"), ("Staff", "bob@contoso.example"), ("Staff", "carol@contoso.example"),
        ]));

        // Ivy becomes a member: new to Roster, her groups are looked up (Staff's unchanged).
        fake.upsert_user(user("id-ivy", "ivy@contoso.example", "Ivy Ives"));
        let (joined, paths) = requests_of(&fake, run()).await;
        assert_eq!(joined.status, "succeeded", "{:?}", joined.error);
        assert!(paths.iter().any(|p| p.starts_with("/v1.0/users/id-ivy/transitiveMemberOf")), "{paths:?}");
        assert!(!paths.iter().any(|p| p.contains("/transitiveMembers")), "no group read again: {paths:?}");
        assert!(memberships(&app, profile.id).await.contains(&("Staff".to_owned(), "ivy@contoso.example".to_owned())));

        // Admins is deleted: gone, and Staff (it was nested in) loses what it brought.
        assert!(fake.remove_group("g-admins"));
        let (deleted, paths) = requests_of(&fake, run()).await;
        assert_eq!(deleted.status, "succeeded", "{:?}", deleted.error);
        assert!(!full_read(&paths), "{paths:?}");
        assert_eq!(memberships(&app, profile.id).await, pairs(&[("Staff", "bob@contoso.example"), ("Staff", "ivy@contoso.example")]));

        // The same state a complete read finds.
        app.conn(move |c| change_cursors::clear(c, profile.id).expect("clear")).await;
        let plan = run().await.plan.expect("plan");
        assert!(plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty() && plan.memberships_removed.is_empty(), "{plan:?}");
    }
}
