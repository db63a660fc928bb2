//! Synchronisation against real directories: each test that changes its directory gets a
//! slapd of its own (started in < 1 s); Active Directory runs in its own OU of the shared
//! Samba DC. Both database backends.

use roster::db::ids::{ProfileId, UserId};
use std::collections::HashSet;

use diesel::prelude::*;
use ldap3::{LdapConnAsync, Mod};
use roster::db::models::user_privileges;
use roster::db::schema::{directory_groups, group_memberships, users};
use roster::sync::plan::Action;
use roster::sync::{self, SyncContext, Trigger};

use crate::profile_pages::{Fields, create, set, slapd_profile_of};
use crate::support::app::TestApp;
use crate::support::servers::{self, ExternalServer};

pub fn context(app: &TestApp) -> SyncContext {
    SyncContext {
        db: app.db.clone(),
        master_key: app.master_key.clone(),
        tls: roster::tls::client_config(None).expect("tls"),
        lease_seconds: 120,
    }
}

/// An admin connection to a directory, for changing it under Roster's feet.
pub struct Admin {
    pub ldap: ldap3::Ldap,
    pub base: String,
}

impl Admin {
    pub async fn slapd(server: &ExternalServer) -> Admin {
        let (conn, mut ldap) = LdapConnAsync::new(server.fact("LDAP_URL"))
            .await
            .expect("connect");
        ldap3::drive!(conn);
        ldap.simple_bind(server.fact("ADMIN_DN"), server.fact("ADMIN_PASSWORD"))
            .await
            .expect("bind")
            .success()
            .expect("admin bind");
        Admin {
            ldap,
            base: server.fact("BASE_DN").to_owned(),
        }
    }

    pub async fn add(&mut self, dn: &str, attrs: Vec<(&str, Vec<&str>)>) {
        let attrs: Vec<(&str, HashSet<&str>)> = attrs
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        self.ldap
            .add(dn, attrs)
            .await
            .expect("add")
            .success()
            .unwrap_or_else(|e| panic!("add {dn}: {e}"));
    }

    pub async fn add_person(&mut self, uid: &str, cn: &str, mails: &[&str]) {
        let dn = format!("uid={uid},ou=people,{}", self.base);
        let mut attrs = vec![
            ("objectClass", vec!["inetOrgPerson"]),
            ("uid", vec![uid]),
            ("cn", vec![cn]),
            ("sn", vec![cn]),
        ];
        if !mails.is_empty() {
            attrs.push(("mail", mails.to_vec()));
        }
        self.add(&dn, attrs).await;
    }

    pub async fn delete(&mut self, rdn: &str) {
        let dn = format!("{rdn},{}", self.base);
        self.ldap
            .delete(&dn)
            .await
            .expect("delete")
            .success()
            .unwrap_or_else(|e| panic!("delete {dn}: {e}"));
    }

    pub async fn modify(&mut self, rdn: &str, mods: Vec<Mod<&str>>) {
        let dn = format!("{rdn},{}", self.base);
        self.ldap
            .modify(&dn, mods)
            .await
            .expect("modify")
            .success()
            .unwrap_or_else(|e| panic!("modify {dn}: {e}"));
    }

    pub async fn rename(&mut self, rdn: &str, new_rdn: &str) {
        let dn = format!("{rdn},{}", self.base);
        self.ldap
            .modifydn(&dn, new_rdn, true, None)
            .await
            .expect("modrdn")
            .success()
            .unwrap_or_else(|e| panic!("rename {dn}: {e}"));
    }
}

pub fn set_of(values: &[&str]) -> HashSet<&'static str> {
    values
        .iter()
        .map(|v| &*Box::leak(v.to_string().into_boxed_str()))
        .collect()
}

/// A generic LDAP profile for a private slapd (its own CA: TLS errors ignored here; TLS
/// verification is covered by the profile tests).
pub async fn ldap_profile(
    app: &TestApp,
    server: &ExternalServer,
    name: &str,
    tweak: impl FnOnce(&mut Fields),
) -> ProfileId {
    let mut f = slapd_profile_of(server, name);
    set(&mut f, "ignore_tls_errors", "on");
    set(&mut f, "delete_users", "on");
    set(&mut f, "delete_groups", "on");
    set(&mut f, "delete_threshold_percent", "100");
    tweak(&mut f);
    create(app, &f).await
}

#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub id: UserId,
    pub username: String,
    pub full_name: String,
    pub disabled: bool,
    pub mfa_required: bool,
    pub emails: Vec<String>,
}

pub async fn synced_users(app: &TestApp, profile: ProfileId) -> Vec<Row> {
    app.conn(move |c| {
        let rows: Vec<(UserId, String, String, bool, bool)> = users::table
            .filter(users::profile_id.eq(profile))
            .order(users::username)
            .select((
                users::id,
                users::username,
                users::full_name,
                users::directory_disabled,
                users::mfa_required,
            ))
            .load(c)
            .expect("users");
        rows.into_iter()
            .map(|(id, username, full_name, disabled, mfa_required)| Row {
                emails: roster::db::models::users::find(c, id)
                    .expect("user")
                    .expect("user")
                    .emails(),
                id,
                username,
                full_name,
                disabled,
                mfa_required,
            })
            .collect()
    })
    .await
}

/// group name → member user names
fn privileges_of(c: &mut roster::db::DbConnection, id: UserId) -> Vec<user_privileges::Privilege> {
    roster::db::models::users::find(c, id)
        .expect("user")
        .expect("user")
        .privileges()
}

async fn count(app: &TestApp) -> i64 {
    app.conn(|c| {
        group_memberships::table
            .count()
            .get_result::<i64>(c)
            .expect("count")
    })
    .await
}

pub async fn memberships(app: &TestApp, profile: ProfileId) -> Vec<(String, String)> {
    app.conn(move |c| {
        let mut rows: Vec<(String, String)> = group_memberships::table
            .inner_join(directory_groups::table)
            .inner_join(users::table)
            .filter(directory_groups::profile_id.eq(profile))
            .select((directory_groups::name, users::username))
            .load(c)
            .expect("memberships");
        rows.sort();
        rows
    })
    .await
}

pub fn names(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.username.as_str()).collect()
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(g, u)| (g.to_string(), u.to_string()))
        .collect()
}

crate::db_test! {
    async fn ldap_sync_creates_updates_renames_and_deletes_and_converges(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Main", |_| {}).await;
        let ctx = context(&app);

        // Test settings: the plan, nothing written.
        let dry = sync::run(&ctx, profile, Trigger::Cli, "test", true).await.expect("dry run");
        assert_eq!(dry.status, "succeeded", "{:?}", dry.error);
        let plan = dry.plan.expect("plan");
        assert_eq!((plan.count(Action::Create), plan.group_count(Action::Create), plan.memberships_added.len()), (3, 2, 3));
        assert!(synced_users(&app, profile).await.is_empty(), "a dry run commits nothing");

        let first = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(first.status, "succeeded", "{:?}", first.error);
        let rows = synced_users(&app, profile).await;
        assert_eq!(names(&rows), ["alice", "bob", "carol"]);
        let bob = rows.iter().find(|r| r.username == "bob").expect("bob");
        assert_eq!((bob.full_name.as_str(), bob.emails.clone(), bob.mfa_required), ("Bob Baker", vec!["bob@example.test".to_owned(), "bob.baker@example.test".to_owned()], true));
        let bob_id = bob.id;
        let privileges = app.conn(move |c| privileges_of(c, bob_id)).await;
        assert_eq!(privileges, [user_privileges::Privilege::LogOn, user_privileges::Privilege::ReadOwnArchive]);
        assert_eq!(memberships(&app, profile).await, pairs(&[("admins", "alice"), ("staff", "alice"), ("staff", "bob")]));

        // Nothing changed at the source: nothing changes here.
        let again = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        let plan = again.plan.expect("plan");
        assert!(plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty() && plan.memberships_removed.is_empty(), "{plan:?}");
        assert_eq!(plan.users_unchanged, 3);

        // An admin changes bob's privileges; then the directory renames bob (same entryUUID),
        // changes carol's addresses, moves members and deletes alice.
        app.conn(move |c| user_privileges::replace(c, bob_id, &[user_privileges::Privilege::ArchiveEmail]).expect("privileges")).await;
        let mut dir = Admin::slapd(&slapd).await;
        dir.rename("uid=bob,ou=people", "uid=robert").await;
        dir.modify("uid=carol,ou=people", vec![Mod::Replace("mail", set_of(&["carol@new.example.test", "c.carter@example.test"]))]).await;
        dir.modify("cn=staff,ou=groups", vec![Mod::Add("member", set_of(&[&format!("uid=carol,ou=people,{}", dir.base)]))]).await;
        dir.delete("uid=alice,ou=people").await;
        dir.add_person("dora", "Dora Dunn", &["dora@example.test"]).await;
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let plan = run.plan.expect("plan");
        let robert = plan.users.iter().find(|u| u.username == "robert").expect("rename planned");
        assert_eq!((robert.action, robert.previous_username.as_deref()), (Action::Update, Some("bob")));
        let rows = synced_users(&app, profile).await;
        assert_eq!(names(&rows), ["carol", "dora", "robert"]);
        let robert = rows.iter().find(|r| r.username == "robert").expect("robert");
        assert_eq!(robert.id, bob_id, "a rename keeps the user");
        let kept = app.conn(move |c| privileges_of(c, bob_id)).await;
        assert_eq!(kept, [user_privileges::Privilege::ArchiveEmail], "privileges survive the rename");
        let carol = rows.iter().find(|r| r.username == "carol").expect("carol");
        assert_eq!(carol.emails.len(), 2);
        assert!(carol.emails.contains(&"carol@new.example.test".to_owned()));
        // alice left the directory: her memberships went with her; admins is now empty.
        assert_eq!(memberships(&app, profile).await, pairs(&[("staff", "carol"), ("staff", "robert")]));

        // Converged: a second run changes nothing.
        let plan = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run").plan.expect("plan");
        assert!(plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty(), "{plan:?}");

        // A member leaving a group, and nothing else, is a change too.
        dir.modify("cn=staff,ou=groups", vec![Mod::Delete("member", set_of(&[&format!("uid=carol,ou=people,{}", dir.base)]))]).await;
        let plan = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run").plan.expect("plan");
        assert_eq!((plan.users.len(), plan.memberships_removed.len()), (0, 1), "{plan:?}");
        assert_eq!(memberships(&app, profile).await, pairs(&[("staff", "robert")]));
    }
}

crate::db_test! {
    async fn memberships_and_users_need_what_they_point_at_and_go_with_it(app) {
        use roster::db::models::{directory_groups as groups, users as user_rows};
        app.sign_in_as_admin().await;
        let profile = ldap_profile(&app, servers::slapd(), "Rows", |_| {}).await;
        let (users_of, groups_of) = app.conn(move |c| {
            let new = |name: &'static str| user_rows::NewDirectoryUser { external_id: name, username: name, full_name: name, emails: &[], disabled: false, sign_in_name: "", directory_name: "" };
            let of = user_rows::NewUsersOf { profile_id: profile, domain: "", mfa_required: false, privileges: &[] };
            user_rows::insert_directory_users(c, &of, &[new("ann"), new("ben")]).expect("users");
            groups::insert_groups(c, profile, &[("g1", "one", ""), ("g2", "two", "")]).expect("groups");
            (user_rows::ids_by_external_id(c, profile).expect("ids"), groups::ids_by_external_id(c, profile).expect("ids"))
        }).await;
        let (ann, ben, g1, g2) = (users_of["ann"], users_of["ben"], groups_of["g1"], groups_of["g2"]);
        app.conn(move |c| groups::add_memberships(c, &[(g1, ann), (g1, ben), (g2, ann), (g2, ben)]).expect("memberships")).await;
        assert_eq!(count(&app).await, 4);

        // Neither a missing user nor a missing group can be pointed at, and nothing is kept.
        for (group, user) in [(g1, ben + 1000), (g2 + 1000, ann)] {
            let refused = app.conn(move |c| groups::add_memberships(c, &[(group, user)])).await;
            assert!(refused.is_err(), "membership ({group}, {user}) was accepted");
        }
        let moved = app.conn(move |c| {
            diesel::update(group_memberships::table.filter(group_memberships::user_id.eq(ann)))
                .set(group_memberships::user_id.eq(ann + 1000))
                .execute(c)
        }).await;
        assert!(moved.is_err(), "a membership was moved to a missing user");
        assert_eq!(count(&app).await, 4);

        // Nor can a user point at a missing profile, when created or moved.
        let orphan = app.conn(move |c| {
            let of = user_rows::NewUsersOf { profile_id: ProfileId(profile.0 + 1000), domain: "", mfa_required: false, privileges: &[] };
            let new = user_rows::NewDirectoryUser { external_id: "cy", username: "cy", full_name: "", emails: &[], disabled: false, sign_in_name: "", directory_name: "" };
            user_rows::insert_directory_users(c, &of, &[new])
        }).await;
        assert!(orphan.is_err(), "a user of a missing profile was accepted");
        let moved = app.conn(move |c| diesel::update(users::table.find(ben)).set(users::profile_id.eq(ProfileId(profile.0 + 1000))).execute(c)).await;
        assert!(moved.is_err(), "a user was moved to a missing profile");

        // Deleting a user, a group, or the profile takes their memberships along.
        app.conn(move |c| diesel::delete(users::table.find(ann)).execute(c).expect("delete user")).await;
        assert_eq!(count(&app).await, 2);
        app.conn(move |c| diesel::delete(directory_groups::table.find(g1)).execute(c).expect("delete group")).await;
        assert_eq!(count(&app).await, 1);
        app.conn(move |c| {
            diesel::delete(roster::db::schema::directory_profiles::table.find(profile)).execute(c).expect("delete profile")
        }).await;
        assert_eq!(count(&app).await, 0);
        let left = app.conn(move |c| users::table.filter(users::profile_id.eq(profile)).count().get_result::<i64>(c).expect("count")).await;
        assert_eq!(left, 0, "the profile's users went with it");
    }
}

crate::db_test! {
    async fn deletes_only_when_asked_scope_by_groups_and_local_part(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let mut dir = Admin::slapd(&slapd).await;
        dir.add_person("erin@example.test", "Erin Eads", &[]).await;
        let keep = ldap_profile(&app, &slapd, "Keeps users", |f| {
            set(f, "delete_users", "");
            set(f, "use_local_part", "on");
        }).await;
        let ctx = context(&app);
        sync::run(&ctx, keep, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(names(&synced_users(&app, keep).await), ["alice", "bob", "carol", "erin"], "local part of erin@example.test");
        dir.delete("uid=carol,ou=people").await;
        let run = sync::run(&ctx, keep, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.plan.expect("plan").count(Action::Delete), 0);
        assert_eq!(names(&synced_users(&app, keep).await), ["alice", "bob", "carol", "erin"], "delete users is off");
        // A new entry takes the kept user's name: left out with a warning, the run goes on.
        dir.add_person("carol", "Another Carol", &[]).await;
        let run = sync::run(&ctx, keep, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let warnings = run.plan.expect("plan").warnings;
        assert!(warnings.iter().any(|w| w.contains("carol: the user name is already used by another user")), "{warnings:?}");

        // Scope: only members of `admins`; the others are out of scope, i.e. removed.
        let scoped = ldap_profile(&app, &slapd, "Admins only", |f| {
            set(f, "domain", "scoped.example.test");
            set(f, "groups_to_sync", "admins");
        }).await;
        let run = sync::run(&ctx, scoped, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, scoped).await), ["alice"]);
        assert_eq!(memberships(&app, scoped).await, pairs(&[("admins", "alice")]));
        dir.modify("cn=admins,ou=groups", vec![Mod::Replace("member", set_of(&[&format!("uid=bob,ou=people,{}", dir.base)]))]).await;
        let run = sync::run(&ctx, scoped, Trigger::Cli, "test", false).await.expect("run");
        let plan = run.plan.expect("plan");
        assert_eq!((plan.count(Action::Create), plan.count(Action::Delete)), (1, 1), "{plan:?}");
        assert_eq!(names(&synced_users(&app, scoped).await), ["bob"]);
    }
}

crate::db_test! {
    async fn empty_source_and_mass_deletes_are_held_until_approved_or_discarded(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Guarded", |f| {
            set(f, "delete_threshold_count", "1");
        }).await;
        let ctx = context(&app);
        sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        let mut dir = Admin::slapd(&slapd).await;
        dir.delete("uid=alice,ou=people").await;
        dir.delete("uid=bob,ou=people").await;

        let held = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(held.status, "held");
        let reason = held.plan.as_ref().and_then(|p| p.held.clone()).expect("reason");
        assert!(reason.contains("2 users would be deleted, more than the profile's threshold of 1"), "{reason}");
        assert_eq!(synced_users(&app, profile).await.len(), 3, "held: nothing applied");

        let approved = sync::approve(&ctx, held.run_id).await.expect("approve");
        assert_eq!(approved.status, "succeeded", "{:?}", approved.error);
        assert_eq!(names(&synced_users(&app, profile).await), ["carol"]);
        assert!(matches!(sync::approve(&ctx, held.run_id).await, Err(sync::SyncError::NotHeld)), "approved once");

        // An empty directory is held too; discarding it applies nothing.
        dir.delete("cn=staff,ou=groups").await;
        dir.delete("cn=admins,ou=groups").await;
        dir.delete("uid=carol,ou=people").await;
        let empty = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(empty.status, "held");
        assert!(empty.plan.as_ref().and_then(|p| p.held.clone()).expect("reason").contains("returned no users"));
        sync::discard(&ctx, empty.run_id).await.expect("discard");
        assert_eq!(names(&synced_users(&app, profile).await), ["carol"]);
        let run = app.conn(move |c| roster::db::models::sync_runs::find(c, empty.run_id).expect("run").expect("exists")).await;
        assert_eq!(run.status, "discarded");

        // Approving a plan the directory no longer agrees with applies nothing.
        let held = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(held.status, "held");
        dir.add_person("yara", "Yara", &[]).await;
        let stale = sync::approve(&ctx, held.run_id).await.expect("approve");
        assert_eq!(stale.status, "failed");
        assert!(stale.error.expect("error").contains("the directory changed"));
        assert_eq!(names(&synced_users(&app, profile).await), ["carol"]);
    }
}

crate::db_test! {
    async fn unreachable_or_lost_directory_changes_nothing(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        // Enough entries that the paged read spans many pages.
        add_bulk_users(&slapd, 3000).await;

        let profile = ldap_profile(&app, &slapd, "Big", |_| {}).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(synced_users(&app, profile).await.len(), 3003);

        // The directory loses five users, but the connection drops in the middle of the
        // paged read: the run fails and nothing changes.
        let mut dir = Admin::slapd(&slapd).await;
        for i in 0..5 {
            dir.delete(&format!("uid=bulk{i:04},ou=people")).await;
        }
        let proxy = CuttingProxy::start(&crate::directory::host_port(slapd.fact("LDAP_URL")), 150_000).await;
        let form_page = format!("/admin/profiles/{profile}");
        let mut f = slapd_profile_of(&slapd, "Big");
        set(&mut f, "ignore_tls_errors", "on");
        set(&mut f, "delete_users", "on");
        set(&mut f, "delete_threshold_percent", "100");
        set(&mut f, "server", &proxy.address);
        let res = crate::profile_pages::post(&app, &form_page, &form_page, &f, false).await;
        assert_eq!(res.status().as_u16(), 303);
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed", "the read was cut: {:?}", run.plan.map(|p| p.source_users));
        assert!(proxy.cut(), "the proxy cut the connection mid-read");
        assert!(run.error.as_deref().is_some_and(|e| e.contains("was lost") && !e.contains("channel closed")), "said in words: {:?}", run.error);
        assert_eq!(synced_users(&app, profile).await.len(), 3003, "zero changes");

        // Unreachable from the start: nothing listens at the server's address.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            listener.local_addr().expect("addr").to_string()
        };
        set(&mut f, "server", &closed);
        let res = crate::profile_pages::post(&app, &form_page, &form_page, &f, false).await;
        assert_eq!(res.status().as_u16(), 303);
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        assert!(run.error.as_deref().is_some_and(|e| e.contains(&format!("cannot reach {closed}"))), "{:?}", run.error);
        assert_eq!(synced_users(&app, profile).await.len(), 3003);
        let recorded = app.conn(move |c| roster::db::models::sync_runs::for_profile(c, profile, 10).expect("runs")).await;
        assert_eq!(recorded.iter().filter(|r| r.status == "failed").count(), 2);
        assert!(recorded.iter().all(|r| r.status != "running"));

        // A directory that stops answering half-way: the run page shows the counts rising,
        // the admin cancels, and nothing changes.
        let stalling = CuttingProxy::stalling(&crate::directory::host_port(slapd.fact("LDAP_URL")), 150_000).await;
        set(&mut f, "server", &stalling.address);
        set(&mut f, "timeout_seconds", "60");
        let res = crate::profile_pages::post(&app, &form_page, &form_page, &f, false).await;
        assert_eq!(res.status().as_u16(), 303);
        let started = sync::start(&ctx, profile, Trigger::Admin, "test", false).await.expect("start");
        let run_id = started.run_id;
        let running = tokio::spawn({
            let ctx = ctx.clone();
            async move { sync::execute(&ctx, started).await }
        });
        let run_page = format!("/admin/runs/{run_id}");
        let mut page = String::new();
        for _ in 0..100 {
            page = app.get_html(&run_page).await;
            if page.contains("groups read") && !page.contains(">0 users and") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(page.contains("Running: <span class=\"run-phase\">reading users</span>"), "{page}");
        assert!(!page.contains(">0 users and"), "users read so far are shown: {page}");
        assert!(page.contains("/cancel"), "{page}");
        let res = crate::profile_pages::post(&app, &run_page, &format!("{run_page}/cancel"), &Vec::new(), false).await;
        assert_eq!(res.status().as_u16(), 303);
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), running).await.expect("stops within seconds").expect("join");
        assert_eq!(outcome.status, "cancelled");
        assert!(app.get_html(&run_page).await.contains("Cancelled: nothing was changed."));
        assert_eq!(synced_users(&app, profile).await.len(), 3003, "nothing changed");
        let res = crate::profile_pages::post(&app, &run_page, &format!("{run_page}/cancel"), &Vec::new(), false).await;
        assert_eq!(res.status().as_u16(), 400, "a finished run cannot be cancelled");

        // Cancelled before it reaches the point of no return: still nothing applied, even when
        // the read itself finishes first.
        set(&mut f, "server", &crate::directory::host_port(slapd.fact("LDAP_URL")));
        let res = crate::profile_pages::post(&app, &form_page, &form_page, &f, false).await;
        assert_eq!(res.status().as_u16(), 303);
        let started = sync::start(&ctx, profile, Trigger::Admin, "test", false).await.expect("start");
        let run_id = started.run_id;
        assert!(app.conn(move |c| roster::db::models::sync_runs::request_cancel(c, run_id).expect("cancel")).await);
        assert_eq!(sync::execute(&ctx, started).await.status, "cancelled");
        assert_eq!(synced_users(&app, profile).await.len(), 3003);
    }
}

crate::db_test! {
    async fn a_broad_search_right_after_a_bulk_sync_walks_the_user_name_index(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        add_bulk_users(&slapd, 3000).await;
        let profile = ldap_profile(&app, &slapd, "Bulk", |_| {}).await;
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        // The statement the users list runs for a search that more than 1,000 users match
        // (`users::search`'s walk), planned the moment the sync has committed: PostgreSQL
        // must know the table now holds thousands of rows, not the few it had, or it sorts
        // every match (1.5 s at 200,000 users, `cargo bench --bench sync`).
        let select = "SELECT users.id, users.username FROM users \
            LEFT JOIN directory_profiles ON directory_profiles.id = users.profile_id \
            WHERE users.search_text LIKE '%example.test%' \
            ORDER BY users.username_key ASC, users.domain ASC LIMIT 51";
        #[derive(QueryableByName)]
        struct Line {
            #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
            line: String,
        }
        let plan = app
            .conn(move |c| {
                let lines: Vec<String> = match c {
                    roster::db::DbConnection::Pg(pg) => diesel::sql_query(format!("EXPLAIN {select}"))
                        .load::<Line>(pg)
                        .expect("explain")
                        .into_iter()
                        .map(|l| l.line)
                        .collect(),
                    roster::db::DbConnection::Sqlite(lite) => {
                        #[derive(QueryableByName)]
                        struct Step {
                            #[diesel(sql_type = diesel::sql_types::Text)]
                            detail: String,
                        }
                        diesel::sql_query(format!("EXPLAIN QUERY PLAN {select}"))
                            .load::<Step>(lite)
                            .expect("explain")
                            .into_iter()
                            .map(|s| s.detail)
                            .collect()
                    }
                };
                lines.join("\n")
            })
            .await;
        assert!(plan.contains("users_login"), "walks the user-name index: {plan}");
        assert!(!plan.contains("Sort") && !plan.contains("TEMP B-TREE"), "sorts nothing: {plan}");
    }
}

/// Adds `count` users `bulkNNNN` (with a long description, so a paged read spans many
/// packets) to a private slapd.
pub async fn add_bulk_users(slapd: &ExternalServer, count: usize) {
    let mut ldif = String::new();
    let base = slapd.fact("BASE_DN").to_owned();
    for i in 0..count {
        ldif.push_str(&format!("dn: uid=bulk{i:04},ou=people,{base}\nobjectClass: inetOrgPerson\nuid: bulk{i:04}\ncn: Bulk User {i}\nsn: User\nmail: bulk{i:04}@example.test\ndescription: {}\n\n", "x".repeat(200)));
    }
    let mut cmd = tokio::process::Command::new("ldapadd");
    cmd.args([
        "-x",
        "-H",
        slapd.fact("LDAP_URL"),
        "-D",
        slapd.fact("ADMIN_DN"),
        "-w",
        slapd.fact("ADMIN_PASSWORD"),
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("ldapadd");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(ldif.as_bytes()).await.expect("write");
    }
    assert!(child.wait().await.expect("ldapadd").success());
}

/// A TCP proxy that forwards to a real server and cuts both directions after the server
/// has sent `limit` bytes: a connection lost in the middle of a paged read.
pub struct CuttingProxy {
    pub address: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingProxy {
    async fn start(upstream: &str, limit: usize) -> CuttingProxy {
        Self::open(upstream, limit, false, std::time::Duration::ZERO).await
    }

    /// Like `start`, but the connection stays open and silent after `limit` bytes.
    pub async fn stalling(upstream: &str, limit: usize) -> CuttingProxy {
        Self::open(upstream, limit, true, std::time::Duration::ZERO).await
    }

    /// Never cuts, but waits `delay` before passing on each chunk the server sends: a slow
    /// directory, whose read takes long enough to watch.
    pub async fn slow(upstream: &str, delay: std::time::Duration) -> CuttingProxy {
        Self::open(upstream, usize::MAX, false, delay).await
    }

    async fn open(
        upstream: &str,
        limit: usize,
        stall: bool,
        delay: std::time::Duration,
    ) -> CuttingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (upstream, flag) = (upstream.to_owned(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (upstream, flag) = (upstream.clone(), flag.clone());
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut server_read, mut server_write) = server.into_split();
                    let (mut client_read, mut client_write) = client.split();
                    let upward = tokio::io::copy(&mut client_read, &mut server_write);
                    let downward = async {
                        let mut sent = 0;
                        let mut buf = vec![0u8; 8192];
                        loop {
                            let n = server_read.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            let n = n.min(limit.saturating_sub(sent));
                            if n == 0 && stall {
                                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                                std::future::pending::<()>().await;
                            }
                            if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                                return;
                            }
                            sent += n;
                        }
                    };
                    tokio::select! { _ = upward => {}, _ = downward => {} }
                });
            }
        });
        CuttingProxy { address, cut }
    }

    fn cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }
}

crate::db_test! {
    async fn roster_sync_command_dry_runs_applies_and_fails_with_exit_codes(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Main", |_| {}).await;
        let run = |args: &'static [&'static str]| roster_cli(&app, args);
        let (code, out, err) = run(&["sync", "main", "--dry-run"]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("users: 3 to create, 0 to update, 0 to delete, 0 unchanged"), "{out}");
        assert!(synced_users(&app, profile).await.is_empty());
        let (code, out, err) = run(&["sync", "Main"]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(synced_users(&app, profile).await.len(), 3);
        let (code, _, err) = run(&["sync", "nope"]).await;
        assert_ne!(code, 0);
        assert!(err.contains("there is no directory profile `nope`"), "{err}");
        drop(slapd);
        let (code, out, err) = roster_cli(&app, &["sync", &profile.to_string()]).await;
        assert_ne!(code, 0, "{out}");
        assert!(err.contains("the synchronisation failed, nothing was changed"), "{err}");
        assert_eq!(synced_users(&app, profile).await.len(), 3);
    }
}

/// Runs the `roster` binary against the test app's database; (exit code, stdout, stderr).
pub async fn roster_cli(
    app: &crate::support::app::TestApp,
    args: &[&str],
) -> (i32, String, String) {
    use secrecy::ExposeSecret;
    let (url, key) = (
        app.database_url.clone(),
        app.master_key.to_base64().expose_secret().to_owned(),
    );
    let dir = app.dir.path().to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ROSTER_LOG", "info")
            .env("DATABASE_URL", &url)
            .env("ROSTER_MASTER_KEY", &key)
            .args(&args)
            .output()
            .expect("run roster");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

/// An OU of its own in the shared Samba DC, with an admin connection to fill it.
pub async fn samba_ou(tag: &str) -> (Admin, String) {
    let samba = servers::samba();
    let (conn, mut ldap) = LdapConnAsync::new(samba.fact("LDAP_URL"))
        .await
        .expect("connect");
    ldap3::drive!(conn);
    ldap.simple_bind(samba.fact("ADMIN_USER"), samba.fact("ADMIN_PASSWORD"))
        .await
        .expect("bind")
        .success()
        .expect("admin bind");
    let ou = format!(
        "OU={tag}-{},{}",
        roster::crypto::random_token()
            .get(..8)
            .unwrap_or("x")
            .to_lowercase(),
        samba.fact("BASE_DN")
    );
    let mut admin = Admin {
        ldap,
        base: ou.clone(),
    };
    let attrs: Vec<(&str, HashSet<&str>)> =
        vec![("objectClass", HashSet::from(["organizationalUnit"]))];
    admin
        .ldap
        .add(&ou, attrs)
        .await
        .expect("add OU")
        .success()
        .expect("OU");
    (admin, ou)
}

impl Admin {
    pub async fn add_ad_user(&mut self, sam: &str, display: &str) {
        let upn = format!("{sam}@corp.example.test");
        let mail = format!("{sam}@example.test");
        let dn = format!("CN={sam},{}", self.base);
        self.add(
            &dn,
            vec![
                ("objectClass", vec!["user"]),
                ("sAMAccountName", vec![sam]),
                ("userPrincipalName", vec![upn.as_str()]),
                ("displayName", vec![display]),
                ("mail", vec![mail.as_str()]),
            ],
        )
        .await;
    }
}

crate::db_test! {
    async fn active_directory_sync_keys_users_by_object_guid(app) {
        app.sign_in_as_admin().await;
        let (mut dir, ou) = samba_ou("sync").await;
        // sAMAccountNames are unique in the whole domain: this test's own suffix.
        let tag = ou[8..13].to_owned();
        let name = |n: &str| format!("{n}{tag}");
        for (sam, display) in [(name("ann"), "Ann Able"), (name("ben"), "Ben Best"), (name("cid"), "Cid Cole")] {
            dir.add_ad_user(&sam, display).await;
        }
        let members = [format!("CN={},{ou}", name("ann")), format!("CN={},{ou}", name("ben"))];
        dir.add(&format!("CN=team{tag},{ou}"), vec![("objectClass", vec!["group"]), ("sAMAccountName", vec![&*format!("team{tag}")]), ("member", members.iter().map(String::as_str).collect())]).await;
        // Enable ann (NORMAL_ACCOUNT | PASSWD_NOTREQD); users added without a password are disabled.
        dir.modify_dn(&members[0], vec![Mod::Replace("userAccountControl", set_of(&["544"]))]).await;

        let samba = servers::samba();
        let mut f = crate::profile_pages::common_fields("Corp AD");
        f.extend([
            ("kind", "active_directory".to_owned()),
            ("server", crate::directory::host_port(samba.fact("LDAP_URL"))),
            ("domain", samba.fact("UPN_SUFFIX").to_owned()),
            ("protocol", "starttls".to_owned()),
            ("ignore_tls_errors", "on".to_owned()),
            ("bind_dn", samba.fact("BIND_USER").to_owned()),
            ("bind_password", samba.fact("BIND_PASSWORD").to_owned()),
            ("base_dn", ou.clone()),
            ("timeout_seconds", "10".to_owned()),
            ("delete_users", "on".to_owned()),
            ("delete_threshold_percent", "100".to_owned()),
        ]);
        let profile = create(&app, &f).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let rows = synced_users(&app, profile).await;
        assert_eq!(names(&rows), [name("ann"), name("ben"), name("cid")]);
        assert_eq!(rows.iter().map(|r| r.disabled).collect::<Vec<_>>(), [false, true, true], "userAccountControl bit 2");
        assert_eq!((rows[0].full_name.as_str(), rows[0].emails.clone()), ("Ann Able", vec![format!("{}@example.test", name("ann"))]));
        assert_eq!(memberships(&app, profile).await.len(), 2);
        let external: String = app.conn({
            let id = rows[0].id;
            move |c| users::table.find(id).select(users::external_id).first::<Option<String>>(c).expect("id").expect("guid")
        }).await;
        assert_eq!(external.len(), 36, "objectGUID as text: {external}");

        // Renamed in AD (new sAMAccountName, new CN): the same user, memberships kept.
        dir.modify_dn(&members[0], vec![Mod::Replace("sAMAccountName", set_of(&[&name("anna")]))]).await;
        dir.ldap.modifydn(&members[0], &format!("CN={}", name("anna")), true, None).await.expect("modrdn").success().expect("move");
        dir.ldap.delete(&format!("CN={},{ou}", name("cid"))).await.expect("delete").success().expect("delete");
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let after = synced_users(&app, profile).await;
        assert_eq!(names(&after), [name("anna"), name("ben")]);
        assert_eq!(after[0].id, rows[0].id, "same objectGUID, same user");
        assert_eq!(memberships(&app, profile).await, pairs(&[(&format!("team{tag}"), &name("anna")), (&format!("team{tag}"), &name("ben"))]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_directory_group_with_1600_members_is_read_through_ranges() {
    use roster::directory::Directory;
    use roster::directory::ldap::{Flavour, LdapDirectory, LdapSettings};
    let (mut dir, ou) = samba_ou("ranged").await;
    let started = std::time::Instant::now();
    let mut members = Vec::new();
    for i in 0..1600 {
        let sam = format!("r{i:04}-{}", &ou[10..16]);
        dir.add(
            &format!("CN={sam},{ou}"),
            vec![
                ("objectClass", vec!["user"]),
                ("sAMAccountName", vec![sam.as_str()]),
            ],
        )
        .await;
        members.push(format!("CN={sam},{ou}"));
    }
    let group = format!("CN=big,{ou}");
    dir.add(
        &group,
        vec![
            ("objectClass", vec!["group"]),
            ("sAMAccountName", vec![&*format!("big-{}", &ou[10..16])]),
        ],
    )
    .await;
    for chunk in members.chunks(400) {
        dir.modify_dn(
            &group,
            vec![Mod::Add(
                "member",
                chunk.iter().map(String::as_str).collect(),
            )],
        )
        .await;
    }
    eprintln!("seeded 1,600 AD users in {:?}", started.elapsed());
    let samba = servers::samba();
    let settings = LdapSettings {
        server: crate::directory::host_port(samba.fact("LDAP_URL")),
        bind_dn: samba.fact("BIND_USER").into(),
        bind_password: secrecy::SecretString::from(samba.fact("BIND_PASSWORD")),
        base_dn: ou.clone(),
        ignore_tls_errors: true,
        timeout: std::time::Duration::from_secs(30),
        ..LdapSettings::defaults(Flavour::ActiveDirectory)
    };
    let snapshot = LdapDirectory::new(settings, roster::tls::client_config(None).expect("tls"))
        .snapshot(&roster::directory::Progress::default())
        .await
        .expect("snapshot");
    assert_eq!(snapshot.users.len(), 1600);
    let big = snapshot
        .groups
        .iter()
        .find(|g| g.name == "big")
        .expect("group");
    assert_eq!(
        big.members.len(),
        1600,
        "every member, across ranges of 1,000"
    );
}

impl Admin {
    pub async fn modify_dn(&mut self, dn: &str, mods: Vec<Mod<&str>>) {
        self.ldap
            .modify(dn, mods)
            .await
            .expect("modify")
            .success()
            .unwrap_or_else(|e| panic!("modify {dn}: {e}"));
    }
}

crate::db_test! {
    async fn one_run_per_profile_and_a_dead_holder_expires(app) {
        use roster::db::schema::{sync_leases, sync_runs};
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Leased", |_| {}).await;
        let ctx = context(&app);
        // Two clicks at once: exactly one run starts.
        let (a, b) = tokio::join!(
            sync::start(&ctx, profile, Trigger::Admin, "one", false),
            sync::start(&ctx, profile, Trigger::Admin, "two", false)
        );
        let (won, lost) = match (a, b) {
            (Ok(s), Err(e)) | (Err(e), Ok(s)) => (s, e),
            (a, b) => panic!("exactly one must start: {:?} / {:?}", a.is_ok(), b.is_ok()),
        };
        assert!(matches!(lost, sync::SyncError::Busy), "{lost}");
        let outcome = sync::execute(&ctx, won).await;
        assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);

        // A holder that died: its lease expires, its run is marked failed, the next run goes.
        let dead_run = app.conn(move |c| {
            let run = roster::db::models::sync_runs::start(c, profile, "schedule", "", false).expect("run");
            diesel::insert_into(sync_leases::table)
                .values((sync_leases::profile_id.eq(profile), sync_leases::run_id.eq(run), sync_leases::owner.eq("dead"), sync_leases::expires_at.eq(roster::db::now() + 600)))
                .execute(c)
                .expect("lease");
            run
        }).await;
        assert!(matches!(sync::start(&ctx, profile, Trigger::Admin, "me", false).await, Err(sync::SyncError::Busy)), "a live lease blocks");
        app.conn(move |c| {
            diesel::update(sync_leases::table.filter(sync_leases::profile_id.eq(profile))).set(sync_leases::expires_at.eq(roster::db::now() - 1)).execute(c).expect("expire");
        }).await;
        let next = sync::run(&ctx, profile, Trigger::Admin, "me", false).await.expect("runs after expiry");
        assert_eq!(next.status, "succeeded");
        let status: String = app.conn(move |c| sync_runs::table.find(dead_run).select(sync_runs::status).first(c).expect("status")).await;
        assert_eq!(status, "failed", "the dead holder's run is marked failed");
    }
}

crate::db_test! {
    async fn a_run_whose_lease_was_taken_over_applies_nothing(app) {
        use roster::db::schema::sync_leases;
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Taken over", |_| {}).await;
        let ctx = context(&app);
        let started = sync::start(&ctx, profile, Trigger::Admin, "me", false).await.expect("start");
        // This instance's renewals failed for longer than the lease (a database outage, a
        // paused process): it ran out, and another instance took the profile.
        app.conn(move |c| {
            diesel::update(sync_leases::table.filter(sync_leases::profile_id.eq(profile)))
                .set((sync_leases::owner.eq("the other instance"), sync_leases::expires_at.eq(roster::db::now() + 600)))
                .execute(c)
                .expect("take over");
        }).await;
        let outcome = sync::execute(&ctx, started).await;
        assert_eq!(outcome.status, "failed");
        let error = outcome.error.unwrap_or_default();
        assert!(error.contains("another Roster instance"), "{error}");
        let count: i64 = app.conn(|c| users::table.filter(users::profile_id.is_not_null()).count().get_result(c).expect("count")).await;
        assert_eq!(count, 0, "nothing applied beside the instance that holds the lease");
        let owner: String = app.conn(move |c| sync_leases::table.filter(sync_leases::profile_id.eq(profile)).select(sync_leases::owner).first(c).expect("lease")).await;
        assert_eq!(owner, "the other instance", "its lease is left to it");
    }
}

/// Follows a run page until the run is no longer running.
pub async fn finished_run_page(app: &TestApp, path: &str) -> String {
    for _ in 0..100 {
        let page = app.get_html(path).await;
        if !page.contains("Running:") {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{path} never finished");
}

crate::db_test! {
    async fn held_run_is_approved_from_its_page_and_listed_in_history(app) {
        use roster::db::schema::audit_events;
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Web", |f| set(f, "delete_threshold_count", "1")).await;
        let page = format!("/admin/profiles/{profile}");
        let start = |dry: bool| {
            let mut f: Fields = Vec::new();
            if dry {
                f.push(("dry_run", "1".into()));
            }
            let (app, page) = (&app, page.clone());
            async move { crate::profile_pages::post(app, &page, &format!("{page}/sync"), &f, false).await }
        };
        let res = start(false).await;
        assert_eq!(res.status().as_u16(), 303);
        let run_path = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("run page").to_owned();
        assert!(finished_run_page(&app, &run_path).await.contains("Synchronisation finished."));

        let mut dir = Admin::slapd(&slapd).await;
        dir.delete("uid=alice,ou=people").await;
        dir.delete("uid=bob,ou=people").await;
        let res = start(false).await;
        let held_path = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("run page").to_owned();
        let held = finished_run_page(&app, &held_path).await;
        assert!(held.contains("Held for approval: nothing was applied.") && held.contains("more than the profile&#39;s threshold of 1"), "{held}");
        assert!(held.contains("would be deleted"), "{held}");
        assert_eq!(synced_users(&app, profile).await.len(), 3);
        let res = crate::profile_pages::post(&app, &held_path, &format!("{held_path}/approve"), &Vec::new(), false).await;
        assert_eq!(res.status().as_u16(), 303);
        let done = app.get_html(&held_path).await;
        assert!(done.contains("Synchronisation finished."), "{done}");
        assert_eq!(names(&synced_users(&app, profile).await), ["carol"]);
        let res = crate::profile_pages::post(&app, &held_path, &format!("{held_path}/discard"), &Vec::new(), false).await;
        assert_eq!(res.status().as_u16(), 400, "no longer held");

        let res = start(true).await;
        let dry_path = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("run page").to_owned();
        assert!(finished_run_page(&app, &dry_path).await.contains("Dry run finished: nothing was changed."));
        let history = app.get_html(&format!("{page}/runs")).await;
        assert_eq!(history.matches("<td><a href=\"/admin/runs/").count(), 3, "{history}");
        assert!(history.contains("Test settings"));
        let actions: Vec<String> = app.conn(|c| audit_events::table.select(audit_events::action).load(c).expect("audit")).await;
        for action in ["sync_started", "sync_approved", "sync_tested"] {
            assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
        }
    }
}
