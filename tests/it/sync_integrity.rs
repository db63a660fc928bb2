//! Synchronisation integrity against real directories with awkward data and injected faults
//! (the trust issue): escaped DNs, nested groups, stalled and lying servers, the safety
//! hold on groups and memberships, approvals of large runs, and who can sign in.

use diesel::prelude::*;
use ldap3::Mod;
use roster::db::models::users as user_rows;
use roster::sync::plan::Action;
use roster::sync::{self, Trigger};

use crate::profile_pages::set;
use crate::support::ldap_proxy::{self, Fault};
use crate::support::servers;
use crate::sync::{
    Admin, add_bulk_users, context, ldap_profile, memberships, names, pairs, roster_cli, samba_ou,
    set_of, synced_users,
};

#[test]
fn distinguished_names_compare_after_rfc4514_normalisation() {
    use roster::directory::ldap::dn::normalize;
    let canonical = normalize("cn=Smith\\2C John,ou=People,dc=example,dc=test").expect("dn");
    for spelling in [
        "cn=Smith\\, John,ou=People,dc=example,dc=test",
        "CN=smith\\, john,OU=people,DC=Example,DC=Test",
        "cn = Smith\\, John , ou=People, dc=example,dc=test",
        "cn=\"Smith, John\",ou=People,dc=example,dc=test",
        "2.5.4.3=Smith\\2c John,ou=People,dc=example,dc=test",
        "cn=Smith\\,  John,ou=People;dc=example,dc=test",
    ] {
        assert_eq!(normalize(spelling).expect("dn"), canonical, "{spelling}");
    }
    let same = |a: &str, b: &str| normalize(a).expect("dn") == normalize(b).expect("dn");
    assert!(
        same("cn=a+uid=b,dc=x", "UID=b+CN=a,dc=x"),
        "multi-valued RDN order"
    );
    assert!(
        same("cn=J\\C3\\BCrgen,dc=x", "cn=Jürgen,dc=x"),
        "hex-escaped UTF-8"
    );
    assert!(
        same("cn=a ,dc=x", "cn=a,dc=x"),
        "an unescaped trailing space is not part of the value"
    );
    assert!(!same("cn=a\\ ,dc=x", "cn=a,dc=x"), "an escaped one is");
    assert!(!same("cn=Smith\\, John,dc=x", "cn=Smith John,dc=x"));
    for broken in ["not a dn", "cn=a\\", "=a,dc=x"] {
        assert!(normalize(broken).is_err(), "{broken}");
    }
}

crate::db_test! {
    async fn members_with_escaped_dns_are_kept_and_unknown_members_are_reported(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let mut dir = Admin::slapd(&slapd).await;
        let base = dir.base.clone();
        dir.add(&format!("cn=Smith\\, John,ou=people,{base}"), vec![("objectClass", vec!["inetOrgPerson"]), ("cn", vec!["Smith, John"]), ("sn", vec!["Smith"]), ("uid", vec!["jsmith"])]).await;
        dir.add(&format!("cn=M\\C3\\BCller\\+Co,ou=people,{base}"), vec![("objectClass", vec!["inetOrgPerson"]), ("cn", vec!["Müller+Co"]), ("sn", vec!["Müller"]), ("uid", vec!["mueller"])]).await;
        let members = [
            format!("CN=Smith\\2C John,OU=People,{base}"),
            format!("cn=Müller\\2BCo,ou=people,{}", base.to_uppercase()),
            format!("uid=ghost,ou=people,{base}"),
        ];
        dir.add(&format!("cn=sales,ou=groups,{base}"), vec![("objectClass", vec!["groupOfNames"]), ("cn", vec!["sales"]), ("member", members.iter().map(String::as_str).collect())]).await;
        let profile = ldap_profile(&app, &slapd, "Escapes", |f| set(f, "groups_to_sync", "sales")).await;
        let ctx = context(&app);

        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, profile).await), ["jsmith", "mueller"]);
        assert_eq!(memberships(&app, profile).await, pairs(&[("sales", "jsmith"), ("sales", "mueller")]));
        let plan = run.plan.expect("plan");
        assert!(plan.warnings.iter().any(|w| w.contains("group sales: 1 member value(s) match no user in scope") && w.contains("uid=ghost")), "{:?}", plan.warnings);
        assert_eq!(plan.scope.as_deref(), Some("2 of 5 users are in the chosen groups; only they are synchronised"));
        let page = app.get_html(&format!("/admin/runs/{}", run.run_id)).await;
        assert!(page.contains("match no user in scope") && page.contains("2 of 5 users are in the chosen groups"), "{page}");

        // Again: nothing to delete, nothing to change.
        let again = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run").plan.expect("plan");
        assert_eq!((again.count(Action::Delete), again.users.len(), again.memberships_removed.len()), (0, 0, 0), "{again:?}");
    }
}

crate::db_test! {
    async fn nested_groups_count_when_asked_and_cycles_are_safe(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let mut dir = Admin::slapd(&slapd).await;
        let base = dir.base.clone();
        // outer ∋ alice, inner; inner ∋ carol, outer (a cycle).
        dir.add(&format!("cn=outer,ou=groups,{base}"), vec![("objectClass", vec!["groupOfNames"]), ("cn", vec!["outer"]), ("member", vec![&format!("uid=alice,ou=people,{base}"), &format!("cn=admins,ou=groups,{base}")])]).await;
        dir.modify("cn=admins,ou=groups", vec![Mod::Replace("member", set_of(&[&format!("uid=carol,ou=people,{base}"), &format!("cn=outer,ou=groups,{base}")]))]).await;
        let flat = ldap_profile(&app, &slapd, "Flat", |f| set(f, "groups_to_sync", "outer")).await;
        let ctx = context(&app);
        let run = sync::run(&ctx, flat, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, flat).await), ["alice"]);
        let warnings = run.plan.expect("plan").warnings;
        assert!(warnings.iter().any(|w| w.contains("group outer: 1 member(s) are groups") && w.contains("Include members of nested groups")), "{warnings:?}");

        let nested = ldap_profile(&app, &slapd, "Nested", |f| {
            set(f, "domain", "nested.example.test");
            set(f, "groups_to_sync", "outer");
            set(f, "nested_groups", "on");
        }).await;
        let run = sync::run(&ctx, nested, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, nested).await), ["alice", "carol"]);
        assert_eq!(memberships(&app, nested).await, pairs(&[("outer", "alice"), ("outer", "carol")]));
        assert_eq!(run.plan.expect("plan").scope.as_deref(), Some("2 of 3 users are in the chosen groups; only they are synchronised"));
        // All groups: the cycle gives both groups both members.
        let all = ldap_profile(&app, &slapd, "All nested", |f| {
            set(f, "domain", "all.example.test");
            set(f, "nested_groups", "on");
        }).await;
        let run = sync::run(&ctx, all, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(memberships(&app, all).await, pairs(&[("admins", "alice"), ("admins", "carol"), ("outer", "alice"), ("outer", "carol"), ("staff", "alice"), ("staff", "bob")]));
    }
}

crate::db_test! {
    async fn active_directory_nested_groups_on_samba(app) {
        app.sign_in_as_admin().await;
        let (mut dir, ou) = samba_ou("nested").await;
        let tag = ou[10..15].to_owned();
        let name = |n: &str| format!("{n}{tag}");
        for sam in [name("nia"), name("noe"), name("nox")] {
            dir.add_ad_user(&sam, &sam).await;
        }
        let inner = format!("CN=inner{tag},{ou}");
        dir.add(&inner, vec![("objectClass", vec!["group"]), ("sAMAccountName", vec![&*name("inner")]), ("member", vec![&*format!("CN={},{ou}", name("noe"))])]).await;
        dir.add(&format!("CN=outer{tag},{ou}"), vec![("objectClass", vec!["group"]), ("sAMAccountName", vec![&*name("outer")]), ("member", vec![&*format!("CN={},{ou}", name("nia")), inner.as_str()])]).await;
        let mut f = crate::profile_pages::samba_profile_in("Nested AD", &ou);
        set(&mut f, "ignore_tls_errors", "on");
        set(&mut f, "nested_groups", "on");
        set(&mut f, "groups_to_sync", &name("outer"));
        let profile = crate::profile_pages::create(&app, &f).await;
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(names(&synced_users(&app, profile).await), [name("nia"), name("noe")]);
        assert_eq!(memberships(&app, profile).await, pairs(&[(&name("outer"), &name("nia")), (&name("outer"), &name("noe"))]));
        // A new Active Directory profile includes nested groups unless told otherwise.
        let form = app.get_html("/admin/profiles/new/fields?kind=active_directory").await;
        assert!(form.contains("id=\"nested_groups\" name=\"nested_groups\" checked"), "{form}");
    }
}

crate::db_test! {
    async fn stalled_or_lying_directories_fail_the_run_within_the_timeout(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        add_bulk_users(&slapd, 600).await; // two pages of 500
        let upstream = crate::directory::host_port(slapd.fact("LDAP_URL"));
        let profile = ldap_profile(&app, &slapd, "Faults", |_| {}).await;
        let ctx = context(&app);
        let first = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(first.status, "succeeded", "{:?}", first.error);
        assert_eq!(synced_users(&app, profile).await.len(), 603);
        let form_page = format!("/admin/profiles/{profile}");
        let mut f = crate::profile_pages::slapd_profile_of(&slapd, "Faults");
        set(&mut f, "ignore_tls_errors", "on");
        set(&mut f, "delete_users", "on");
        set(&mut f, "delete_threshold_percent", "100");
        set(&mut f, "protocol", "ldaps");
        set(&mut f, "timeout_seconds", "2");
        let point_at = |server: String| {
            let (app, form_page, mut f) = (&app, form_page.clone(), f.clone());
            async move {
                set(&mut f, "server", &server);
                let res = crate::profile_pages::post(app, &form_page, &form_page, &f, false).await;
                assert_eq!(res.status().as_u16(), 303, "profile saved");
            }
        };

        // A first page whose result lost its paging control: the read is not complete.
        let proxy = ldap_proxy::start(&upstream, Fault::StripFirstPageControls).await;
        point_at(proxy.server.clone()).await;
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        assert!(run.error.as_deref().is_some_and(|e| e.contains("without the paged-results control")), "{:?}", run.error);
        assert_eq!(synced_users(&app, profile).await.len(), 603, "nothing deleted");

        // slapd stopped (SIGSTOP) between two pages: the run fails within the timeout and
        // frees its lease.
        let pid: u32 = slapd.fact("PID").parse().expect("pid");
        let proxy = ldap_proxy::start(&upstream, Fault::StopServerAfterFirstPage { pid }).await;
        point_at(proxy.server.clone()).await;
        let started = std::time::Instant::now();
        let run = tokio::time::timeout(std::time::Duration::from_secs(30), sync::run(&ctx, profile, Trigger::Cli, "test", false))
            .await
            .expect("the run ends by itself")
            .expect("run");
        let took = started.elapsed();
        let _ = std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status();
        assert_eq!(run.status, "failed");
        assert!(run.error.as_deref().is_some_and(|e| e.contains(&format!("no answer from {} within 2 s", proxy.server))), "{:?}", run.error);
        assert!(took < std::time::Duration::from_secs(8), "failed after {took:?}");
        assert_eq!(synced_users(&app, profile).await.len(), 603, "nothing changed");
        let leases = app.conn(move |c| {
            use roster::db::schema::sync_leases;
            sync_leases::table.filter(sync_leases::profile_id.eq(profile)).count().get_result::<i64>(c).expect("leases")
        }).await;
        assert_eq!(leases, 0, "the lease is released");

        // A referral in the middle of the users: Roster does not follow it, so the read is
        // incomplete.
        let mut dir = Admin::slapd(&slapd).await;
        let referral = format!("ou=elsewhere,{}", dir.base);
        let added = dir.ldap.with_controls(ldap3::controls::ManageDsaIt).add(&referral, vec![("objectClass", std::collections::HashSet::from(["referral", "extensibleObject"])), ("ou", std::collections::HashSet::from(["elsewhere"])), ("ref", std::collections::HashSet::from(["ldap://other.example.test/ou=elsewhere,dc=example,dc=test"]))]).await.expect("add");
        assert_eq!(added.rc, 0, "{added:?}");
        point_at(upstream.clone()).await;
        set(&mut f, "protocol", "starttls");
        let direct = {
            let mut f = f.clone();
            set(&mut f, "server", &upstream);
            f
        };
        let res = crate::profile_pages::post(&app, &form_page, &form_page, &direct, false).await;
        assert_eq!(res.status().as_u16(), 303);
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        assert!(run.error.as_deref().is_some_and(|e| e.contains("referred part of the search") && e.contains("ldap://other.example.test")), "{:?}", run.error);
        let deleted = dir.ldap.with_controls(ldap3::controls::ManageDsaIt).delete(&referral).await.expect("delete");
        assert_eq!(deleted.rc, 0, "{deleted:?}");

        // The directory answers again: the next run works.
        let run = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
    }
}

crate::db_test! {
    async fn deleting_many_groups_or_memberships_is_held(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Guarded", |f| set(f, "delete_threshold_count", "1")).await;
        let ctx = context(&app);
        sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        let mut dir = Admin::slapd(&slapd).await;
        let base = dir.base.clone();
        // Two memberships go: more than the threshold of 1.
        dir.modify("cn=staff,ou=groups", vec![Mod::Replace("member", set_of(&[&format!("uid=carol,ou=people,{base}")]))]).await;
        let held = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(held.status, "held");
        let reason = held.plan.and_then(|p| p.held).expect("reason");
        assert!(reason.contains("2 group memberships would be deleted, more than the profile's threshold of 1"), "{reason}");
        assert_eq!(memberships(&app, profile).await.len(), 3, "nothing applied");
        sync::discard(&ctx, held.run_id).await.expect("discard");
        // Both groups go.
        dir.delete("cn=staff,ou=groups").await;
        dir.delete("cn=admins,ou=groups").await;
        let held = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(held.status, "held");
        let reason = held.plan.and_then(|p| p.held).expect("reason");
        assert!(reason.contains("2 groups would be deleted, more than the profile's threshold of 1"), "{reason}");
    }
}

crate::db_test! {
    async fn approving_a_large_held_run_records_its_full_counts(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Large", |f| set(f, "delete_threshold_count", "10")).await;
        let ctx = context(&app);
        sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        // 2,500 users this profile synchronised earlier that the directory no longer has.
        add_users_gone_from_the_directory(&app, profile, 2500).await;
        let held = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(held.status, "held");
        let approved = sync::approve(&ctx, held.run_id).await.expect("approve");
        assert_eq!(approved.status, "succeeded", "{:?}", approved.error);
        assert_eq!(synced_users(&app, profile).await.len(), 3);
        let run_id = held.run_id;
        let row = app.conn(move |c| roster::db::models::sync_runs::find(c, run_id).expect("run").expect("run")).await;
        assert_eq!((row.users_deleted, row.users_unchanged), (2500, 3));
        let page = app.get_html(&format!("/admin/runs/{run_id}")).await;
        assert!(page.contains("2500 deleted"), "{page}");
        assert!(page.contains("Applied after an administrator approved it; it was held because 2500 users would be deleted"), "{page}");
    }
}

crate::db_test! {
    async fn users_disabled_in_the_directory_are_shown_as_such_everywhere(app) {
        app.sign_in_as_admin().await;
        let profile = ldap_profile(&app, servers::slapd(), "Standing", |_| {}).await;
        app.conn(move |c| {
            let new = [
                user_rows::NewDirectoryUser { external_id: "on", username: "still-here", full_name: "", emails: &[], disabled: false, sign_in_name: "", directory_name: "" },
                user_rows::NewDirectoryUser { external_id: "off", username: "switched-off", full_name: "", emails: &[], disabled: true, sign_in_name: "", directory_name: "" },
            ];
            let of = user_rows::NewUsersOf { profile_id: profile, domain: "", mfa_required: false, privileges: &[] };
            user_rows::insert_directory_users(c, &of, &new).expect("users");
        }).await;
        let page = app.get_html("/admin/users?q=switched").await;
        assert!(page.contains("Disabled in the directory") && !page.contains("<td>Enabled</td>"), "{page}");
        let page = app.get_html("/admin/users?q=still-here").await;
        assert!(page.contains("<td>Enabled</td>"), "{page}");
    }
}

crate::db_test! {
    async fn roster_sync_says_what_it_did_and_what_a_dry_run_would_do(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Cli", |f| set(f, "delete_threshold_count", "1")).await;

        let (code, out, err) = roster_cli(&app, &["sync", "Cli", "--dry-run", "--plan"]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("users: 3 to create"), "{out}");
        assert!(out.contains("user create alice") && out.contains("group create staff") && out.contains("membership + alice in staff"), "--plan lists the changes: {out}");
        let (code, out, err) = roster_cli(&app, &["sync", "Cli"]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("users: 3 created, 0 updated, 0 deleted, 0 unchanged; groups: 2 created"), "an applied run says what it did: {out}");
        // Log lines go to standard error, without colour codes when not on a terminal.
        assert!(!out.contains("INFO") && err.contains("INFO") && !err.contains('\u{1b}'), "stdout: {out}\nstderr: {err}");

        // Two users leave: an applied run would be held. A dry run only says so, and succeeds.
        let mut dir = Admin::slapd(&slapd).await;
        dir.delete("uid=alice,ou=people").await;
        dir.delete("uid=bob,ou=people").await;
        let (code, out, err) = roster_cli(&app, &["sync", "Cli", "--dry-run"]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(": succeeded") && out.contains("would be held for approval") && !err.contains("held for approval"), "{out}{err}");
        let (code, _, err) = roster_cli(&app, &["sync", "Cli"]).await;
        assert_ne!(code, 0);
        assert!(err.contains("held for approval, nothing was applied"), "{err}");
        assert_eq!(synced_users(&app, profile).await.len(), 3);
    }
}

/// A tmpfs of `size` for this test's SQLite file; unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = crate::support::servers::target_dir()
            .join(format!("small-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount");
        assert!(
            mounted.success(),
            "mounting a tmpfs needs root: run the tests as tests/run does"
        );
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_says_so_and_changes_nothing() {
    let disk = SmallDisk::new("1200k");
    let url = format!("sqlite://{}", disk.0.join("roster.db").display());
    let app = crate::support::app::spawn_app_with(crate::support::app::Backend::Sqlite, move |s| {
        s.database_url = secrecy::SecretString::from(url);
    })
    .await;
    app.sign_in_as_admin().await;
    let slapd = servers::private("slapd");
    add_bulk_users(&slapd, 3000).await;
    let profile = ldap_profile(&app, &slapd, "Full disk", |_| {}).await;
    let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false)
        .await
        .expect("run");
    assert_eq!(run.status, "failed");
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("disk is full") && error.contains("nothing was changed"),
        "{error}"
    );
    assert!(!error.contains("no transaction is active"), "{error}");
    assert!(synced_users(&app, profile).await.is_empty());
}

crate::db_test! {
    async fn a_directory_size_limit_fails_the_run(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private_with("slapd", &[("ROSTER_SLAPD_PAGED_TOTAL", "700")]);
        add_bulk_users(&slapd, 1000).await;
        let profile = ldap_profile(&app, &slapd, "Capped", |_| {}).await;
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "failed");
        assert!(run.error.as_deref().is_some_and(|e| e.contains("size limit (sizeLimitExceeded)")), "{:?}", run.error);
        assert!(synced_users(&app, profile).await.is_empty(), "nothing applied");
    }
}

/// The plan alone: memberships are added once however often the directory lists them,
/// removed only from groups still in the directory, and both lists come sorted.
#[test]
fn memberships_are_planned_once_each_and_only_for_groups_in_the_directory() {
    use roster::db::models::directory_groups::SyncedGroup;
    use roster::db::models::users::SyncedUser;
    use roster::directory::{Snapshot, SourceGroup, SourceUser};
    use roster::sync::plan::{Existing, PlanOptions, plan};
    let user = |id: &str| SourceUser {
        external_id: id.into(),
        username: id.into(),
        full_name: id.into(),
        ..Default::default()
    };
    let synced = |id: i64, ext: &str| SyncedUser {
        id,
        external_id: ext.into(),
        username: ext.into(),
        full_name: ext.into(),
        directory_disabled: false,
        emails: Vec::new(),
        sign_in_name_key: String::new(),
        directory_name: ext.into(),
    };
    let group = |id: &str, members: &[&str]| SourceGroup {
        external_id: id.into(),
        name: id.into(),
        description: String::new(),
        members: members.iter().map(|m| m.to_string()).collect(),
    };
    let snapshot = Snapshot {
        users: vec![user("u-c"), user("u-a"), user("u-b"), user("u-new")].into(),
        // g-2 lists u-new twice (and u-a, whom it has, twice); g-1 dropped u-b.
        groups: vec![
            group("g-2", &["u-new", "u-a", "u-new", "u-a"]),
            group("g-1", &["u-a", "u-new"]),
        ],
        ..Snapshot::default()
    };
    let existing = Existing {
        users: vec![synced(1, "u-a"), synced(2, "u-b"), synced(3, "u-c")],
        groups: ["g-1", "g-2", "g-gone"]
            .iter()
            .enumerate()
            .map(|(i, g)| SyncedGroup {
                id: 10 + i as i64,
                external_id: g.to_string(),
                name: g.to_string(),
                description: String::new(),
            })
            .collect(),
        // g-1: u-a, u-b, u-c; g-2: u-a; g-gone (left the directory, kept): u-b.
        memberships: vec![(10, 1), (10, 2), (10, 3), (11, 1), (12, 2), (10, 2)],
        names_taken: Default::default(),
    };
    let options = PlanOptions {
        use_local_part: false,
        delete_users: true,
        delete_groups: false,
        threshold_count: 100,
        threshold_percent: 100,
    };
    let planned = plan(&options, snapshot, &existing);
    let pairs = |list: &[roster::sync::plan::Membership]| {
        list.iter()
            .map(|(g, u)| format!("{g}/{u}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pairs(&planned.memberships_added),
        ["g-1/u-new", "g-2/u-new"]
    );
    assert_eq!(pairs(&planned.memberships_removed), ["g-1/u-b", "g-1/u-c"]);
    assert_eq!(planned.count(roster::sync::plan::Action::Create), 1);
}

crate::db_test! {
    async fn an_approval_keeps_its_lease_while_the_directory_is_slow(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        add_bulk_users(&slapd, 600).await; // two pages of 500
        let upstream = crate::directory::host_port(slapd.fact("LDAP_URL"));
        let profile = ldap_profile(&app, &slapd, "Slow approval", |f| set(f, "delete_threshold_count", "1")).await;
        let mut ctx = context(&app);
        let first = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(first.status, "succeeded", "{:?}", first.error);
        // Two users this profile synchronised earlier that the directory no longer has.
        add_users_gone_from_the_directory(&app, profile, 2).await;
        let held = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(held.status, "held", "{:?}", held.error);

        // The approval's fresh read stalls between two pages for longer than the lease.
        let pid: u32 = slapd.fact("PID").parse().expect("pid");
        let proxy = ldap_proxy::start(&upstream, Fault::StopServerAfterFirstPage { pid }).await;
        let form_page = format!("/admin/profiles/{profile}");
        let mut f = crate::profile_pages::slapd_profile_of(&slapd, "Slow approval");
        for (field, value) in [("ignore_tls_errors", "on"), ("delete_users", "on"), ("delete_threshold_count", "1"), ("protocol", "ldaps"), ("timeout_seconds", "30"), ("server", proxy.server.as_str())] {
            set(&mut f, field, value);
        }
        let res = crate::profile_pages::post(&app, &form_page, &form_page, &f, false).await;
        assert_eq!(res.status().as_u16(), 303, "profile saved");
        ctx.lease_seconds = 3;
        let approving = tokio::spawn({
            let ctx = ctx.clone();
            async move { sync::approve(&ctx, held.run_id).await }
        });
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        let meanwhile = sync::start(&ctx, profile, Trigger::Schedule, "scheduler", false).await;
        let _ = std::process::Command::new("kill").args(["-CONT", &pid.to_string()]).status();
        assert!(matches!(meanwhile, Err(sync::SyncError::Busy)), "another run started while the approval read: its lease lapsed");
        let approved = approving.await.expect("task").expect("approve");
        assert_eq!(approved.status, "succeeded", "{:?}", approved.error);
        assert_eq!(synced_users(&app, profile).await.len(), 603, "the two are deleted");
    }
}

/// `count` users of `profile` (as an earlier sync would have written them) that the
/// directory no longer has: the next run deletes them.
async fn add_users_gone_from_the_directory(
    app: &crate::support::app::TestApp,
    profile: roster::db::ids::ProfileId,
    count: usize,
) {
    app.conn(move |c| {
        let ids: Vec<String> = (0..count).map(|i| format!("gone-{i:04}")).collect();
        let new: Vec<user_rows::NewDirectoryUser> = ids
            .iter()
            .map(|id| user_rows::NewDirectoryUser {
                external_id: id,
                username: id,
                full_name: "",
                emails: &[],
                disabled: false,
                sign_in_name: "",
                directory_name: "",
            })
            .collect();
        let of = user_rows::NewUsersOf {
            profile_id: profile,
            domain: "example.test",
            mfa_required: false,
            privileges: &[],
        };
        user_rows::insert_directory_users(c, &of, &new).expect("users");
    })
    .await;
}

/// The snapshot's users are kept in chunks the plan frees as it takes them; across chunk
/// boundaries it indexes, pops and walks them as a vector would.
#[test]
fn chunked_entries_index_iterate_and_pop_like_a_vector() {
    use roster::directory::Chunked;
    let n = 4096 * 2 + 5;
    let mut c: Chunked<usize> = (0..n).collect();
    assert_eq!(c.len(), n);
    assert_eq!((c[0], c[4096], c[n - 1]), (0, 4096, n - 1));
    assert_eq!(c.get(n), None);
    assert!(c.iter().copied().eq(0..n));
    for expected in (4096..n).rev() {
        assert_eq!(c.pop(), Some(expected));
    }
    assert_eq!(c.len(), 4096);
    c.push(7);
    assert_eq!((c[4095], c[4096], c.len()), (4095, 7, 4097));
    assert!(c.into_iter().take(3).eq([0, 1, 2]));
    let mut empty: Chunked<String> = Chunked::default();
    assert!(empty.is_empty());
    assert_eq!(empty.pop(), None);
    assert_eq!(empty.len(), 0);
}

/// The plan takes each user's data out of the snapshot from its end (freeing it chunk by
/// chunk) and still lists the changes by user name, each with its own user's data —
/// across chunks, with users left out (a duplicate name) and unchanged in between.
#[test]
fn the_plan_lists_changes_by_name_each_with_its_own_users_data() {
    use roster::db::models::users::SyncedUser;
    use roster::directory::{Snapshot, SourceUser};
    use roster::sync::plan::{Existing, PlanOptions, plan};
    let n = 10_000usize;
    // Names in an order unlike the snapshot's: user i is named by (i * 7919) % n.
    let name = |i: usize| format!("user{:05}", (i * 7919) % n);
    let mut users: Vec<SourceUser> = (0..n)
        .map(|i| SourceUser {
            external_id: format!("id-{i}"),
            username: name(i),
            full_name: format!("Full name of id-{i}"),
            emails: vec![format!("{}@example.test", name(i))],
            ..Default::default()
        })
        .collect();
    // A second entry with user 5's name: whichever sorts second is left out.
    users.push(SourceUser {
        external_id: "id-zz-duplicate".into(),
        username: name(5),
        full_name: "the duplicate".into(),
        ..Default::default()
    });
    // Users 0..100 are already there as they are: unchanged, no change listed.
    let existing = Existing {
        users: (0..100)
            .map(|i| SyncedUser {
                id: i as i64 + 1,
                external_id: format!("id-{i}"),
                username: name(i),
                full_name: format!("Full name of id-{i}"),
                directory_disabled: false,
                emails: vec![format!("{}@example.test", name(i))],
                sign_in_name_key: String::new(),
                directory_name: name(i),
            })
            .collect(),
        groups: Vec::new(),
        memberships: Vec::new(),
        names_taken: Default::default(),
    };
    let options = PlanOptions {
        use_local_part: false,
        delete_users: false,
        delete_groups: false,
        threshold_count: 100,
        threshold_percent: 100,
    };
    let snapshot = Snapshot {
        users: users.into(),
        ..Snapshot::default()
    };
    let planned = plan(&options, snapshot, &existing);
    assert_eq!(planned.users_unchanged, 100);
    assert_eq!(planned.users.len(), n - 100, "{:?}", planned.warnings);
    assert!(
        planned
            .warnings
            .iter()
            .any(|w| w.contains("another directory entry has the same user name")),
        "{:?}",
        planned.warnings
    );
    let names: Vec<&str> = planned.users.iter().map(|c| c.username.as_str()).collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "sorted by name, each once"
    );
    for change in &planned.users {
        assert_eq!(change.action, Action::Create);
        let i: usize = change.external_id["id-".len()..]
            .parse()
            .expect("a user's id");
        assert!(i >= 100, "unchanged users are not listed");
        assert_eq!(change.username, name(i), "{change:?}");
        assert_eq!(change.full_name, format!("Full name of id-{i}"));
        assert_eq!(change.emails, [format!("{}@example.test", name(i))]);
    }
}
