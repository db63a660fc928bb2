//! The Directory API: paging to the end, `fields`, page tokens bound to their query,
//! single users, groups and their (derived) members, and a benchmark-sized directory.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::{ADMIN, Setup, admin, alice, api, directory_token, error_reason, start};
use crate::support::google::{DirectoryGroup, DirectoryUser, GoogleFake, GroupMember, user_id};

/// Every page of a listing from `first` on: (the items of each page, the last page).
async fn walk(setup: &Setup, token: &str, first: &str, key: &str) -> (Vec<Vec<Value>>, Value) {
    let (mut pages, mut path) = (Vec::new(), first.to_owned());
    loop {
        let (status, body) = api(setup, token, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        pages.push(body[key].as_array().cloned().unwrap_or_default());
        let Some(next) = body["nextPageToken"].as_str() else {
            return (pages, body);
        };
        path = format!("{first}&pageToken={next}");
    }
}

fn ids(pages: &[Vec<Value>]) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_page_to_the_end_500_at_a_time() {
    let setup = start().await;
    let mut users: Vec<DirectoryUser> = (10..1_209)
        .map(|i| DirectoryUser::new(&user_id(i), &format!("u{i}@example.com"), &format!("U {i}")))
        .collect();
    users.extend([admin(), alice()]);
    setup.fake.set_users(users.clone());
    let token = directory_token(&setup).await;
    let (pages, last) = walk(
        &setup,
        &token,
        "users?customer=my_customer&maxResults=500",
        "users",
    )
    .await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [500, 500, 201]
    );
    let got: HashSet<String> = ids(&pages).into_iter().collect();
    let want: HashSet<String> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!((got.len(), got), (1_201, want));
    assert!(last.get("nextPageToken").is_none());
    assert_eq!(last["kind"], "admin#directory#users");

    let (_, body) = api(&setup, &token, "users?customer=my_customer").await;
    assert_eq!(
        body["users"].as_array().map(Vec::len),
        Some(100),
        "default page"
    );
    let (status, _) = api(&setup, &token, "users?domain=EXAMPLE.com&maxResults=5").await;
    assert_eq!(status, 200);
    let (status, body) = api(&setup, &token, "users?domain=elsewhere.org").await;
    assert_eq!((status, error_reason(&body).0), (403, "forbidden"));
    let (status, body) = api(&setup, &token, "users?maxResults=5").await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": {"code": 400, "message": "Bad Request",
            "errors": [{"message": "Bad Request", "domain": "global", "reason": "badRequest"}]}})
        )
    );
    for bad in ["0", "501", "ten"] {
        let (status, body) = api(
            &setup,
            &token,
            &format!("users?customer=my_customer&maxResults={bad}"),
        )
        .await;
        assert_eq!(status, 400);
        let message = format!("Invalid value '{bad}'. Values must be within the range: [1, 500]");
        assert_eq!(error_reason(&body), ("invalidParameter", message.as_str()));
    }
    let (status, body) = api(
        &setup,
        &token,
        "users?customer=my_customer&orderBy=email&maxResults=3",
    )
    .await;
    assert_eq!(status, 200);
    let emails: Vec<&str> = body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["primaryEmail"].as_str().expect("email"))
        .collect();
    assert_eq!(
        emails,
        [
            "admin@example.com",
            "alice@example.com",
            "u1000@example.com"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_select_only_what_is_asked_and_users_look_like_googles() {
    let setup = start().await;
    let mut bob = DirectoryUser::new(&user_id(3), "bob@example.com", "Bob Builder");
    bob.suspended = true;
    bob.non_editable_aliases = vec!["bob@example.com.test-google-a.com".into()];
    setup.fake.upsert_user(bob);
    let token = directory_token(&setup).await;
    let wanted = "nextPageToken,users(id,primaryEmail,name/fullName,suspended,archived,aliases)";
    let (status, body) = api(
        &setup,
        &token,
        &format!("users?customer=my_customer&fields={wanted}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only users: {body}"
    );
    let users = body["users"].as_array().expect("users");
    assert_eq!(
        users[1],
        json!({
            "id": user_id(2),
            "primaryEmail": "alice@example.com",
            "name": {"fullName": "Alice Liddell"},
            "suspended": false,
            "archived": false,
            "aliases": ["ally@example.com"],
        })
    );
    // No aliases: no member.
    assert!(users[0].get("aliases").is_none() && users[0]["suspended"] == false);

    let (_, body) = api(&setup, &token, "users?customer=my_customer&maxResults=2").await;
    assert_eq!(body["kind"], "admin#directory#users");
    assert!(body["etag"].as_str().is_some_and(|e| e.starts_with('"')));
    assert!(body["nextPageToken"].is_string());
    let user = &body["users"][0];
    for (member, value) in [
        ("kind", json!("admin#directory#user")),
        ("primaryEmail", json!(ADMIN)),
        ("isAdmin", json!(true)),
        ("isDelegatedAdmin", json!(false)),
        ("suspended", json!(false)),
        ("archived", json!(false)),
        ("changePasswordAtNextLogin", json!(false)),
        ("agreedToTerms", json!(true)),
        ("customerId", json!(setup.fake.customer_id())),
        ("orgUnitPath", json!("/")),
        ("isMailboxSetup", json!(true)),
        ("includeInGlobalAddressList", json!(true)),
        (
            "name",
            json!({"givenName": "Ada", "familyName": "Admin", "fullName": "Ada Admin"}),
        ),
        ("emails", json!([{"address": ADMIN, "primary": true}])),
    ] {
        assert_eq!(user[member], value, "{member}");
    }
    let id = user["id"].as_str().expect("id");
    assert!(
        id.len() == 21 && id.chars().all(|c| c.is_ascii_digit()),
        "{id}"
    );
    for member in ["etag", "creationTime", "lastLoginTime"] {
        assert!(user[member].is_string(), "{member}");
    }
    assert!(user.get("aliases").is_none() && user.get("nonEditableAliases").is_none());

    // One user by id, by email in any case, by alias.
    for key in [user_id(3), "BOB@example.com".into()] {
        let (status, bob) = api(&setup, &token, &format!("users/{key}")).await;
        assert_eq!(status, 200, "{bob}");
        assert_eq!(
            (bob["suspended"].as_bool(), bob["suspensionReason"].as_str()),
            (Some(true), Some("ADMIN"))
        );
        assert_eq!(
            bob["nonEditableAliases"],
            json!(["bob@example.com.test-google-a.com"])
        );
    }
    let (_, ally) = api(
        &setup,
        &token,
        "users/ally@example.com?fields=primaryEmail,name(givenName)",
    )
    .await;
    assert_eq!(
        ally,
        json!({"primaryEmail": "alice@example.com", "name": {"givenName": "Alice"}})
    );
    let (status, body) = api(&setup, &token, "users/nobody@example.com").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": {
                "code": 404,
                "message": "Resource Not Found: userKey",
                "errors": [{
                    "message": "Resource Not Found: userKey",
                    "domain": "global",
                    "reason": "notFound",
                }],
            }})
        )
    );
    // Field names are case-sensitive at Google: a misspelt one is a 400, not silence.
    let (status, body) = api(
        &setup,
        &token,
        "users?customer=my_customer&fields=users(primaryemail)",
    )
    .await;
    assert_eq!((status, error_reason(&body).0), (400, "invalidParameter"));
    let (status, _) = api(&setup, &token, "users?customer=my_customer&fields=users(id").await;
    assert_eq!(status, 400);

    let removed = setup.fake.remove_user(&user_id(3));
    assert!(removed && !setup.fake.remove_user(&user_id(3)));
    let (_, body) = api(
        &setup,
        &token,
        "users?customer=my_customer&showDeleted=true",
    )
    .await;
    assert_eq!(body["users"][0]["primaryEmail"], "bob@example.com");
    assert!(body["users"][0]["deletionTime"].is_string());
    let (_, body) = api(&setup, &token, "groups?customer=my_customer").await;
    assert!(
        body.get("groups").is_none(),
        "an empty listing has no member: {body}"
    );
    assert_eq!(body["kind"], "admin#directory#groups");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_tokens_belong_to_their_query() {
    let setup = start().await;
    let token = directory_token(&setup).await;
    let first = "users?customer=my_customer&orderBy=email&maxResults=1";
    let (_, body) = api(&setup, &token, first).await;
    let next = body["nextPageToken"]
        .as_str()
        .expect("a next page")
        .to_owned();
    // Another page size or field selection keeps the query; another order does not.
    let same = format!(
        "users?customer=my_customer&orderBy=email&maxResults=5&fields=users(id)&pageToken={next}"
    );
    let (status, body) = api(&setup, &token, &same).await;
    assert_eq!(
        (status, body["users"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let invalid = (
        400,
        json!({"error": {"code": 400, "message": "Invalid Input",
        "errors": [{"message": "Invalid Input", "domain": "global", "reason": "invalid"}]}}),
    );
    let other = format!("users?customer=my_customer&orderBy=familyName&pageToken={next}");
    assert_eq!(api(&setup, &token, &other).await, invalid);
    let groups = format!("groups?customer=my_customer&pageToken={next}");
    assert_eq!(api(&setup, &token, &groups).await, invalid);
    let made_up = "users?customer=my_customer&orderBy=email&pageToken=made-up";
    assert_eq!(api(&setup, &token, made_up).await, invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_members_with_nesting_a_cycle_and_roles() {
    let setup = start().await;
    let user =
        |i: usize| DirectoryUser::new(&user_id(i), &format!("u{i}@example.com"), &format!("U {i}"));
    let mut users = vec![admin()];
    users.extend((11..=14).map(user));
    setup.fake.set_users(users);
    let u = |i: usize| user_id(i);
    let mut staff = DirectoryGroup::new(
        "03staff00000001",
        "staff@example.com",
        "Staff",
        vec![
            GroupMember::User(u(11)),
            GroupMember::Group("03team000000002".into()),
            GroupMember::External("friend@gmail.com".into()),
            GroupMember::Owner(u(13)),
        ],
    );
    staff.description = "Everyone".into();
    let team = DirectoryGroup::new(
        "03team000000002",
        "team@example.com",
        "Team",
        vec![
            GroupMember::User(u(12)),
            GroupMember::User(u(11)),
            GroupMember::Group("03staff00000001".into()),
            GroupMember::Group("03sub0000000003".into()),
        ],
    );
    let sub = DirectoryGroup::new(
        "03sub0000000003",
        "sub@example.com",
        "Sub",
        vec![
            GroupMember::Manager(u(14)),
            GroupMember::Customer,
            GroupMember::User("gone".into()),
        ],
    );
    setup.fake.set_groups(vec![staff, team, sub]);
    let token = directory_token(&setup).await;

    let (_, body) = api(&setup, &token, "groups?customer=my_customer").await;
    let groups = body["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0]["kind"], "admin#directory#group");
    assert_eq!(groups[0]["directMembersCount"], "4", "an int64 is a string");
    assert_eq!(groups[0]["description"], "Everyone");
    let (_, one) = api(&setup, &token, "groups/TEAM@example.com?fields=id,name").await;
    assert_eq!(one, json!({"id": "03team000000002", "name": "Team"}));
    let (_, mine) = api(
        &setup,
        &token,
        &format!("groups?userKey={}&fields=groups(id)", u(11)),
    )
    .await;
    assert_eq!(
        mine,
        json!({"groups": [{"id": "03staff00000001"}, {"id": "03team000000002"}]})
    );

    let members = |body: &Value| -> Vec<(String, String, String)> {
        body["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                let text = |k: &str| m[k].as_str().unwrap_or("").to_owned();
                (text("type"), text("role"), text("email"))
            })
            .collect()
    };
    let row = |t: &str, r: &str, e: &str| (t.to_owned(), r.to_owned(), e.to_owned());
    let (status, direct) = api(&setup, &token, "groups/03staff00000001/members").await;
    assert_eq!(status, 200, "{direct}");
    assert_eq!(
        members(&direct),
        [
            row("USER", "MEMBER", "u11@example.com"),
            row("GROUP", "MEMBER", "team@example.com"),
            row("EXTERNAL", "MEMBER", "friend@gmail.com"),
            row("USER", "OWNER", "u13@example.com"),
        ]
    );
    assert_eq!(direct["members"][0]["kind"], "admin#directory#member");
    assert_eq!(direct["members"][0]["status"], "ACTIVE");
    assert_eq!(direct["members"][0]["id"], u(11));

    let (_, derived) = api(
        &setup,
        &token,
        "groups/staff@example.com/members?includeDerivedMembership=true&maxResults=200",
    )
    .await;
    assert_eq!(
        members(&derived),
        [
            row("USER", "MEMBER", "u11@example.com"),
            row("GROUP", "MEMBER", "team@example.com"),
            row("EXTERNAL", "MEMBER", "friend@gmail.com"),
            row("USER", "OWNER", "u13@example.com"),
            row("USER", "MEMBER", "u12@example.com"),
            row("GROUP", "MEMBER", "sub@example.com"),
            row("USER", "MANAGER", "u14@example.com"),
            row("CUSTOMER", "MEMBER", ""),
        ]
    );
    assert_eq!(derived["members"][7]["id"], setup.fake.customer_id());
    let (_, owners) = api(
        &setup,
        &token,
        "groups/03staff00000001/members?roles=OWNER,MANAGER&includeDerivedMembership=true",
    )
    .await;
    assert_eq!(
        members(&owners),
        [
            row("USER", "OWNER", "u13@example.com"),
            row("USER", "MANAGER", "u14@example.com")
        ]
    );
    let (status, body) = api(&setup, &token, "groups/nope@example.com/members").await;
    assert_eq!(
        (status, error_reason(&body)),
        (404, ("notFound", "Resource Not Found: groupKey"))
    );
    let (status, body) = api(
        &setup,
        &token,
        "groups/03staff00000001/members?maxResults=201",
    )
    .await;
    assert_eq!((status, error_reason(&body).0), (400, "invalidParameter"));
    assert!(setup.fake.remove_group("03sub0000000003"));
    let (_, after) = api(&setup, &token, "groups/03team000000002/members").await;
    assert_eq!(after["members"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_directory_of_100000_users_serves_its_first_and_last_pages() {
    let setup = start().await;
    setup.fake.generate(100_000, 1_000, 100);
    // generate replaces the directory; its first user is the administrator.
    let token = super::token_with(&setup, |_, c| c["sub"] = json!("user0@example.com")).await;
    let (_, first) = api(&setup, &token, "users?customer=my_customer&maxResults=500").await;
    assert_eq!(first["users"].as_array().map(Vec::len), Some(500));
    assert_eq!(first["users"][0]["id"], GoogleFake::generated_user_id(0));
    let (pages, last) = walk(
        &setup,
        &token,
        "users?customer=my_customer&maxResults=500&fields=nextPageToken,users(id)",
        "users",
    )
    .await;
    assert_eq!(
        (
            pages.len(),
            ids(&pages).into_iter().collect::<HashSet<_>>().len()
        ),
        (200, 100_000)
    );
    assert_eq!(
        last["users"][499]["id"],
        GoogleFake::generated_user_id(99_999)
    );

    let (groups, _) = walk(
        &setup,
        &token,
        "groups?customer=my_customer&maxResults=200&fields=nextPageToken,groups(id)",
        "groups",
    )
    .await;
    assert_eq!(groups.len(), 5);
    let last_group = GoogleFake::generated_group_id(999);
    assert_eq!(groups[4][199]["id"], last_group);
    assert!(
        last_group.len() == 15 && last_group.starts_with('0'),
        "{last_group}"
    );
    let (_, members) = api(
        &setup,
        &token,
        &format!("groups/{last_group}/members?includeDerivedMembership=true"),
    )
    .await;
    assert_eq!(members["members"].as_array().map(Vec::len), Some(100));
    assert_eq!(members["members"][99]["email"], "user99999@example.com");
}
