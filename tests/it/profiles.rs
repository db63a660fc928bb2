//! The directory-profiles model: list order and search, unique names, fixed kind, and a
//! delete that is refused while the profile is in use and otherwise takes its users along.

use diesel::prelude::*;
use roster::db::DbConnection;
use roster::db::ids::ProfileId;
use roster::db::models::directory_profiles::{
    self as profiles, DeleteOutcome, ProfileChanges, ProfileKind,
};
use roster::db::schema::{dependent_configurations, directory_groups, schedules, users};

fn changes(name: &str) -> ProfileChanges {
    ProfileChanges {
        name: name.into(),
        name_key: profiles::name_key(name),
        settings: "{}".into(),
        delete_users: false,
        delete_groups: false,
        groups_to_sync: String::new(),
        domain: String::new(),
        use_local_part: false,
        mfa_by_default: true,
        default_privileges: "log_on,read_own_archive".into(),
        delete_threshold_count: 50,
        delete_threshold_percent: 10,
    }
}

fn names(list: Vec<profiles::DirectoryProfile>) -> Vec<String> {
    list.into_iter().map(|p| p.name).collect()
}

crate::db_test! {
    async fn profiles_sort_by_name_and_search_by_name_or_exact_id(app) {
        app.conn(|c| {
            let corp = profiles::create(c, ProfileKind::ActiveDirectory, &changes("Corp AD")).expect("create");
            profiles::create(c, ProfileKind::GenericLdap, &changes("ldap-main")).expect("create");
            let cloud = profiles::create(c, ProfileKind::EntraId, &changes("Cloud")).expect("create");
            assert_eq!(names(profiles::list(c, "", false).expect("list")), ["Cloud", "Corp AD", "ldap-main"]);
            assert_eq!(names(profiles::list(c, "", true).expect("list")), ["ldap-main", "Corp AD", "Cloud"]);
            assert_eq!(names(profiles::list(c, "corp a", false).expect("search")), ["Corp AD"]);
            assert_eq!(names(profiles::list(c, &cloud.to_string(), false).expect("by id")), ["Cloud"]);
            assert!(profiles::list(c, "%", false).expect("wildcard").is_empty());

            // Unique regardless of case; the profile's own name does not count against it.
            assert!(profiles::name_taken(c, "CORP ad", None).expect("taken"));
            assert!(!profiles::name_taken(c, "CORP ad", Some(corp)).expect("own name"));
            assert!(profiles::create(c, ProfileKind::GenericLdap, &changes("corp ad")).is_err(), "unique index");

            // Edit changes everything but the kind.
            let mut edited = changes("Corporate AD");
            edited.delete_users = true;
            profiles::update(c, corp, &edited).expect("update");
            let row = profiles::find(c, corp).expect("find").expect("exists");
            assert_eq!((row.name.as_str(), row.kind(), row.delete_users), ("Corporate AD", Some(ProfileKind::ActiveDirectory), true));
        })
        .await;
    }
}

pub fn add_synchronised_user(c: &mut DbConnection, profile: ProfileId, name: &str) {
    diesel::insert_into(users::table)
        .values((
            users::profile_id.eq(profile),
            users::external_id.eq(format!("guid-{name}")),
            users::username.eq(name),
            users::username_key.eq(name),
            users::domain.eq("corp.example"),
            users::auth_method.eq("directory"),
            users::search_text.eq(name),
            users::created_at.eq(0_i64),
            users::updated_at.eq(0_i64),
        ))
        .execute(c)
        .expect("user");
    // As the models do: new rows enter SQLite's search index from code.
    let id: Option<i64> = users::table
        .select(diesel::dsl::max(users::id))
        .first(c)
        .expect("id");
    roster::db::models::users::index_search(c, id.unwrap_or(1) - 1).expect("index");
}

crate::db_test! {
    async fn deleting_a_profile_is_refused_while_in_use_and_otherwise_removes_its_users(app) {
        app.conn(|c| {
            let scheduled = profiles::create(c, ProfileKind::ActiveDirectory, &changes("Scheduled")).expect("create");
            diesel::insert_into(schedules::table)
                .values((schedules::profile_id.eq(scheduled), schedules::kind.eq("interval"), schedules::interval_minutes.eq(60), schedules::created_at.eq(0_i64), schedules::updated_at.eq(0_i64)))
                .execute(c)
                .expect("schedule");
            match profiles::delete(c, scheduled).expect("delete") {
                DeleteOutcome::InUse(usage) => assert_eq!(usage.schedules, 1),
                other => panic!("{other:?}"),
            }

            let cloud = profiles::create(c, ProfileKind::EntraId, &changes("Cloud")).expect("create");
            diesel::insert_into(dependent_configurations::table)
                .values((dependent_configurations::profile_id.eq(cloud), dependent_configurations::kind.eq("archiving"), dependent_configurations::name.eq("Archive: Cloud"), dependent_configurations::settings.eq("{}"), dependent_configurations::created_at.eq(0_i64)))
                .execute(c)
                .expect("configuration");
            match profiles::delete(c, cloud).expect("delete") {
                DeleteOutcome::InUse(usage) => assert_eq!(usage.configurations, ["Archive: Cloud"]),
                other => panic!("{other:?}"),
            }

            let ad = profiles::create(c, ProfileKind::ActiveDirectory, &changes("Corp AD")).expect("create");
            add_synchronised_user(c, ad, "dora");
            add_synchronised_user(c, ad, "emil");
            add_synchronised_user(c, scheduled, "fritz");
            diesel::insert_into(directory_groups::table)
                .values((directory_groups::profile_id.eq(ad), directory_groups::external_id.eq("g1"), directory_groups::name.eq("staff"), directory_groups::created_at.eq(0_i64), directory_groups::updated_at.eq(0_i64)))
                .execute(c)
                .expect("group");
            assert_eq!(profiles::usage(c, ad).expect("usage").synchronised_users, 2);
            assert_eq!(profiles::delete(c, ad).expect("delete"), DeleteOutcome::Deleted { users_deleted: 2 });
            assert_eq!(profiles::delete(c, ad).expect("again"), DeleteOutcome::NotFound);
            let left: Vec<String> = users::table.order(users::username).select(users::username).load(c).expect("users");
            assert_eq!(left, ["admin", "fritz"], "only that profile's users went");
            let groups: i64 = directory_groups::table.count().get_result(c).expect("groups");
            assert_eq!(groups, 0);
        })
        .await;
    }
}

// The users list, the dashboard and the profiles list show exact totals, which PostgreSQL
// keeps in `user_counts` by trigger: they match a real count after every kind of write.
crate::db_test! {
    async fn user_totals_stay_exact_through_inserts_switches_and_deletes(app) {
        use roster::db::models::users::{self as model, NewDirectoryUser, NewUsersOf, Start, UserFilter};
        app.conn(|c| {
            let a = profiles::create(c, ProfileKind::GenericLdap, &changes("Totals A")).expect("create");
            let b = profiles::create(c, ProfileKind::GenericLdap, &changes("Totals B")).expect("create");
            let check = |c: &mut DbConnection, step: &str| {
                let real = |c: &mut DbConnection, p: Option<ProfileId>| -> i64 {
                    match p {
                        Some(p) => users::table.filter(users::profile_id.eq(p)).count().get_result(c).expect("count"),
                        None => users::table.filter(users::profile_id.is_null()).count().get_result(c).expect("count"),
                    }
                };
                let all: i64 = users::table.count().get_result(c).expect("count");
                assert_eq!(model::count(c).expect("total"), all, "{step}: all users");
                let per = model::count_per_profile(c).expect("per profile");
                for p in [a, b] {
                    assert_eq!(per.get(&p).copied().unwrap_or(0), real(c, Some(p)), "{step}: per profile");
                    assert_eq!(model::count_of_profile(c, p).expect("of profile"), real(c, Some(p)), "{step}: of profile");
                    let filter = UserFilter { source: Some(Some(p)), ..UserFilter::default() };
                    let page = model::search_filtered(c, "", &filter, Start::Offset(0), 50, 1_000).expect("page");
                    assert_eq!(page.total, real(c, Some(p)), "{step}: the list's total for a profile");
                }
                let local = UserFilter { source: Some(None), ..UserFilter::default() };
                let page = model::search_filtered(c, "", &local, Start::Offset(0), 50, 1_000).expect("page");
                assert_eq!(page.total, real(c, None), "{step}: the list's total for Roster's users");
                let page = model::search(c, "", Start::Offset(0), 50, 1_000).expect("page");
                assert_eq!(page.total, all, "{step}: the list's total");
            };
            check(c, "start");
            for name in ["dora", "emil", "fritz"] {
                add_synchronised_user(c, a, name);
            }
            add_synchronised_user(c, b, "gina");
            check(c, "one at a time");
            let names: Vec<String> = (0..25).map(|i| format!("bulk{i:02}")).collect();
            let new: Vec<NewDirectoryUser> = names
                .iter()
                .map(|n| NewDirectoryUser { external_id: n, username: n, full_name: "", emails: &[], disabled: false, sign_in_name: "", directory_name: n })
                .collect();
            let of = NewUsersOf { profile_id: b, domain: "b.example", mfa_required: true, privileges: &[] };
            model::insert_directory_users(c, &of, &new).expect("bulk insert");
            check(c, "a sync's batch");
            // Users moving between sources, one and several at a time.
            diesel::update(users::table.filter(users::username.eq("admin"))).set(users::profile_id.eq(Some(a))).execute(c).expect("move");
            check(c, "local to a profile");
            diesel::update(users::table.filter(users::username.like("bulk1%"))).set(users::profile_id.eq(Some(a))).execute(c).expect("move");
            diesel::update(users::table.filter(users::username.eq("dora"))).set(users::profile_id.eq(None::<i64>)).execute(c).expect("move");
            check(c, "between profiles and back to Roster");
            diesel::update(users::table.filter(users::username.eq("emil"))).set(users::full_name.eq("Emil")).execute(c).expect("rename");
            check(c, "an update of another column");
            diesel::delete(users::table.filter(users::username.like("bulk0%"))).execute(c).expect("delete");
            check(c, "deletes");
            assert!(matches!(profiles::delete(c, b).expect("delete"), DeleteOutcome::Deleted { .. }));
            check(c, "a profile deleted with its users");
        })
        .await;
    }
}
