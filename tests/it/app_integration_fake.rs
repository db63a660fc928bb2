//! The Application Integration fake against PROTOCOLS.md, not against itself: a plain
//! reqwest client posts forms as a MailStore-style client would and reads what comes back,
//! status, content type and body.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::app_integration::{
    AppGroup, AppIntegrationFake, AppUser, Command, Fault, Refusal,
};

/// An answer as a client sees it.
struct Answer {
    status: u16,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn client() -> reqwest::Client {
    roster::install_crypto_provider();
    reqwest::Client::new()
}

async fn read(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.text().await.expect("a whole body");
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

async fn post(fake: &AppIntegrationFake, form: &[(&str, &str)]) -> Answer {
    read(
        client()
            .post(fake.url())
            .form(form)
            .send()
            .await
            .expect("an answer"),
    )
    .await
}

async fn list(fake: &AppIntegrationFake) -> Answer {
    post(fake, &[("cmd", "list")]).await
}

async fn check(fake: &AppIntegrationFake, user: &str, password: &str) -> Answer {
    post(
        fake,
        &[("cmd", "auth"), ("user", user), ("password", password)],
    )
    .await
}

fn alice() -> AppUser {
    let mut alice = AppUser::new(
        "alice",
        "Alice Liddell",
        &["alice@example.com", "al@example.com"],
    );
    alice.distinguished_name = Some("CN=Alice Liddell,OU=Staff,DC=example,DC=com".into());
    alice
}

fn bob() -> AppUser {
    AppUser::new("bob", "Bob Builder", &["bob@example.com"])
}

#[tokio::test]
async fn list_is_a_json_array_of_the_users_in_order_sent_as_text_json() {
    let fake = AppIntegrationFake::start().await;
    assert!(fake.url().starts_with("http://127.0.0.1:") && fake.url().ends_with("/api"));
    fake.set_users(vec![bob(), alice()]);
    let answer = list(&fake).await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "text/json")
    );
    let bob_listed = json!({
        "userName": "bob",
        "distinguishedName": null,
        "fullName": "Bob Builder",
        "emailAddresses": ["bob@example.com"],
    });
    let alice_listed = json!({
        "userName": "alice",
        "distinguishedName": "CN=Alice Liddell,OU=Staff,DC=example,DC=com",
        "fullName": "Alice Liddell",
        "emailAddresses": ["alice@example.com", "al@example.com"],
    });
    assert_eq!(answer.json(), json!([bob_listed, alice_listed]));

    // Scripts that leave the member out rather than send null.
    fake.omit_null_distinguished_names(true);
    let listed = list(&fake).await.json();
    assert!(listed[0].get("distinguishedName").is_none(), "{listed}");
    assert_eq!(listed[1], alice_listed);

    fake.content_type("application/json");
    assert_eq!(list(&fake).await.content_type, "application/json");
}

#[tokio::test]
async fn one_endpoint_takes_a_posted_form_only() {
    let fake = AppIntegrationFake::start().await;
    let http = client();
    let other = fake.url().replace("/api", "/api/users");
    let answer = read(
        http.post(&other)
            .form(&[("cmd", "list")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 404);
    let answer = read(http.get(fake.url()).send().await.unwrap()).await;
    assert_eq!(
        (answer.status, answer.headers["allow"].to_str().unwrap()),
        (405, "POST")
    );

    // The command travels in a form body: in JSON or in the query it is no command at all.
    let unknown = |answer: Answer| {
        assert_eq!(
            (
                answer.status,
                answer.content_type.as_str(),
                answer.body.as_str()
            ),
            (400, "text/plain; charset=utf-8", "Unknown command ''.")
        );
    };
    let posted_json = http.post(fake.url()).json(&json!({"cmd": "list"})).send();
    unknown(read(posted_json.await.unwrap()).await);
    let in_query = http.post(format!("{}?cmd=list", fake.url())).send();
    unknown(read(in_query.await.unwrap()).await);
    unknown(post(&fake, &[]).await);
    assert_eq!(fake.requests().len(), 5);
    assert_eq!(
        fake.request_count(Command::List),
        0,
        "none of them was a list command"
    );
}

#[tokio::test]
async fn basic_auth_when_required_guards_every_command_and_no_password_is_recorded() {
    let fake = AppIntegrationFake::start().await;
    fake.set_users(vec![alice()]);
    fake.set_password("alice", Some("wonderland"));
    fake.require_basic("roster", "pa:ss wörd");
    let http = client();
    let refused = |answer: Answer| {
        assert_eq!(answer.status, 401, "{}", answer.body);
        let challenge = answer.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(challenge, r#"Basic realm="MailStore""#);
        assert!(answer.content_type.starts_with("text/plain") && !answer.body.is_empty());
    };
    for form in [
        &[("cmd", "list")][..],
        &[
            ("cmd", "auth"),
            ("user", "alice"),
            ("password", "wonderland"),
        ],
        &[("cmd", "groups")],
        &[("cmd", "nonsense")],
    ] {
        refused(post(&fake, form).await);
        let wrong = http
            .post(fake.url())
            .basic_auth("roster", Some("pa:ss"))
            .form(form);
        refused(read(wrong.send().await.unwrap()).await);
        let stranger = http
            .post(fake.url())
            .basic_auth("root", Some("pa:ss wörd"))
            .form(form);
        refused(read(stranger.send().await.unwrap()).await);
    }
    let right = http
        .post(fake.url())
        .basic_auth("roster", Some("pa:ss wörd"));
    let answer = read(right.form(&[("cmd", "list")]).send().await.unwrap()).await;
    assert_eq!(
        (answer.status, answer.json()[0]["userName"].clone()),
        (200, json!("alice"))
    );

    let recorded = fake.requests();
    assert_eq!(recorded.len(), 13);
    assert_eq!(recorded[0].basic_user, None);
    assert_eq!(recorded[12].basic_user.as_deref(), Some("roster"));
    assert_eq!(recorded[12].cmd, "list");
    let kept = format!("{recorded:?}");
    assert!(
        !kept.contains("pa:ss") && !kept.contains("wonderland"),
        "{kept}"
    );
}

#[tokio::test]
async fn auth_accepts_the_right_password_and_refuses_as_configured() {
    let fake = AppIntegrationFake::start().await;
    fake.set_users(vec![alice(), bob()]);
    assert!(fake.set_password("alice", Some("wonderland")));
    assert!(!fake.set_password("nobody", Some("x")), "no such user");
    let answer = check(&fake, "alice", "wonderland").await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "text/json")
    );
    assert_eq!(answer.json(), json!({"success": true}));

    let refusal = json!({"success": false, "error": "invalid credentials"});
    for (user, password) in [
        ("alice", "Wonderland"),
        ("alice", ""),
        ("nobody", "wonderland"),
        // A user without a password refuses every password, the empty one too.
        ("bob", ""),
        ("bob", "anything"),
    ] {
        let answer = check(&fake, user, password).await;
        assert_eq!(
            (answer.status, answer.json()),
            (401, refusal.clone()),
            "{user}"
        );
    }
    let without_password = post(&fake, &[("cmd", "auth"), ("user", "alice")]).await;
    assert_eq!(without_password.status, 401);

    fake.set_refusal(Refusal::Status403);
    let answer = check(&fake, "alice", "wrong").await;
    assert_eq!((answer.status, answer.json()), (403, refusal));
    fake.set_refusal(Refusal::Ok200False);
    let answer = check(&fake, "alice", "wrong").await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"success": false}))
    );
    assert_eq!(
        check(&fake, "alice", "wonderland").await.json()["success"],
        true
    );

    fake.set_password("alice", None);
    assert_eq!(
        check(&fake, "alice", "wonderland").await.json()["success"],
        false
    );
    assert_eq!(fake.request_count(Command::Auth), 11);
}

#[tokio::test]
async fn groups_are_listed_when_the_script_has_them_and_unknown_otherwise() {
    let fake = AppIntegrationFake::start().await;
    fake.set_users(vec![alice(), bob()]);
    let unknown = post(&fake, &[("cmd", "groups")]).await;
    assert_eq!(
        (
            unknown.status,
            unknown.content_type.as_str(),
            unknown.body.as_str()
        ),
        (
            400,
            "text/plain; charset=utf-8",
            "Unknown command 'groups'."
        )
    );
    let other = post(&fake, &[("cmd", "users")]).await;
    assert_eq!(
        (other.status, other.body.as_str()),
        (400, "Unknown command 'users'.")
    );
    assert_eq!(
        fake.request_count(Command::Groups),
        1,
        "asked for, though not there"
    );

    fake.set_groups(Some(vec![
        AppGroup::new("Staff", "Everyone employed", &["alice", "bob"]),
        AppGroup::new("Empty", "", &[]),
    ]));
    let answer = post(&fake, &[("cmd", "groups")]).await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "text/json")
    );
    let staff = json!({"groupName": "Staff", "description": "Everyone employed", "members": ["alice", "bob"]});
    let empty = json!({"groupName": "Empty", "description": "", "members": []});
    assert_eq!(answer.json(), json!([staff, empty]));

    // A removed user leaves the groups too.
    assert!(fake.remove_user("bob"));
    assert!(!fake.remove_user("bob"));
    let groups = post(&fake, &[("cmd", "groups")]).await.json();
    assert_eq!(groups[0]["members"], json!(["alice"]));
    assert_eq!(list(&fake).await.json().as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn command_names_are_the_servers_own() {
    let fake = AppIntegrationFake::start().await;
    fake.set_users(vec![alice()]);
    fake.set_password("alice", Some("wonderland"));
    fake.set_groups(Some(vec![AppGroup::new("Staff", "", &["alice"])]));
    fake.set_commands("getusers", "checkpassword", "getgroups");

    for default in ["list", "auth", "groups"] {
        let answer = post(&fake, &[("cmd", default)]).await;
        assert_eq!(answer.body, format!("Unknown command '{default}'."));
    }
    assert_eq!(
        post(&fake, &[("cmd", "getusers")]).await.json()[0]["userName"],
        "alice"
    );
    let form = [
        ("cmd", "checkpassword"),
        ("user", "alice"),
        ("password", "wonderland"),
    ];
    assert_eq!(post(&fake, &form).await.json(), json!({"success": true}));
    assert_eq!(
        post(&fake, &[("cmd", "getgroups")]).await.json()[0]["groupName"],
        "Staff"
    );

    let counts = [Command::List, Command::Auth, Command::Groups, Command::Any];
    assert_eq!(counts.map(|c| fake.request_count(c)), [1, 1, 1, 6]);
    let recorded = fake.requests();
    assert_eq!(
        (recorded[0].cmd.as_str(), recorded[0].command),
        ("list", None)
    );
    assert_eq!(
        (recorded[3].cmd.as_str(), recorded[3].command),
        ("getusers", Some(Command::List))
    );
}

#[tokio::test]
async fn upsert_renames_by_distinguished_name_and_replaces_by_name() {
    let fake = AppIntegrationFake::start().await;
    fake.set_users(vec![alice(), bob()]);
    fake.set_groups(Some(vec![AppGroup::new("Staff", "", &["alice", "bob"])]));

    let mut renamed = alice();
    renamed.user_name = "aliddell".into();
    renamed.full_name = "Alice Hargreaves".into();
    // DNs compare as LDAP compares them.
    renamed.distinguished_name = Some("cn=Alice Liddell,ou=Staff,dc=example,dc=com".into());
    fake.upsert_user(renamed);
    let listed = list(&fake).await.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["aliddell", "bob"], "renamed in place, not added");
    assert_eq!(listed[0]["fullName"], "Alice Hargreaves");
    let groups = post(&fake, &[("cmd", "groups")]).await.json();
    assert_eq!(groups[0]["members"], json!(["aliddell", "bob"]));

    let mut moved = bob();
    moved.email_addresses = vec!["robert@example.com".into()];
    fake.upsert_user(moved);
    fake.upsert_user(AppUser::new("carol", "Carol", &[]));
    let listed = list(&fake).await.json();
    assert_eq!(listed[1]["emailAddresses"], json!(["robert@example.com"]));
    assert_eq!(
        (
            listed.as_array().unwrap().len(),
            listed[2]["userName"].clone()
        ),
        (3, json!("carol"))
    );
}

#[tokio::test]
async fn wire_faults_stall_cut_off_fail_and_answer_html_before_basic_auth() {
    let fake = AppIntegrationFake::start().await;
    fake.generate(200);
    fake.require_basic("roster", "secret");
    let http = client();
    let send = |cmd: &'static str| {
        let form = [("cmd", cmd)];
        http.post(fake.url())
            .basic_auth("roster", Some("secret"))
            .form(&form)
            .send()
    };

    fake.fault(Command::List, 0, Fault::Stall);
    let stalled = tokio::time::timeout(Duration::from_millis(300), send("list")).await;
    assert!(stalled.is_err(), "no answer");

    fake.fault(Command::List, 0, Fault::CutOff);
    let response = send("list").await.expect("headers arrive");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.content_length().unwrap_or(0) > 1000);
    assert!(response.bytes().await.is_err(), "the body read must fail");

    fake.fault(Command::Auth, 0, Fault::Status(503));
    let answer = read(send("auth").await.unwrap()).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (503, "503 Service Unavailable")
    );
    assert!(answer.content_type.starts_with("text/plain"));

    // A proxy in front answers before the script, and before its Basic auth.
    fake.fault(Command::Any, 0, Fault::Html);
    let answer = post(&fake, &[("cmd", "groups")]).await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert!(answer.body.contains("502 Bad Gateway"));
    assert!(serde_json::from_str::<Value>(&answer.body).is_err());

    let answer = read(send("list").await.unwrap()).await;
    assert_eq!(
        answer.json().as_array().map(Vec::len),
        Some(200),
        "each fault fired once"
    );
}

#[tokio::test]
async fn script_faults_break_the_json_of_an_answer_that_passed_basic_auth() {
    let fake = AppIntegrationFake::start().await;
    fake.set_users(vec![alice(), bob()]);
    fake.set_password("alice", Some("wonderland"));
    fake.set_groups(Some(vec![AppGroup::new("Staff", "", &["alice"])]));

    fake.fault(Command::List, 0, Fault::NotJson);
    let answer = list(&fake).await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "text/json")
    );
    assert!(
        serde_json::from_str::<Value>(&answer.body).is_err(),
        "{}",
        answer.body
    );

    fake.fault(Command::List, 0, Fault::WrongShape);
    let answer = list(&fake).await;
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "text/json")
    );
    assert!(answer.json().is_object(), "an object, not the array");
    fake.fault(Command::Groups, 0, Fault::WrongShape);
    assert!(post(&fake, &[("cmd", "groups")]).await.json().is_object());
    fake.fault(Command::Auth, 0, Fault::WrongShape);
    let answer = check(&fake, "alice", "wonderland").await;
    assert_eq!(
        answer.json(),
        json!([{"success": true}]),
        "an array, not the object"
    );

    fake.fault(Command::List, 0, Fault::MissingUserName);
    let listed = list(&fake).await.json();
    assert!(listed[0].get("userName").is_none() && listed[0]["fullName"] == "Alice Liddell");
    assert_eq!(listed[1]["userName"], "bob", "one entry only");
    fake.fault(Command::Groups, 0, Fault::MissingUserName);
    let groups = post(&fake, &[("cmd", "groups")]).await.json();
    assert!(groups[0].get("groupName").is_none() && groups[0]["members"] == json!(["alice"]));
    fake.fault(Command::Auth, 0, Fault::MissingUserName);
    assert_eq!(check(&fake, "alice", "wonderland").await.json(), json!({}));
    fake.set_users(Vec::new());
    fake.fault(Command::List, 0, Fault::MissingUserName);
    let listed = list(&fake).await.json();
    assert!(
        listed
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0].get("userName").is_none())
    );

    // The script's faults come after Basic auth: on a request it refuses, one does nothing.
    fake.require_basic("roster", "secret");
    fake.fault(Command::List, 0, Fault::NotJson);
    let refused = list(&fake).await;
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (401, "401 Unauthorized")
    );
    let right = client()
        .post(fake.url())
        .basic_auth("roster", Some("secret"));
    let answer = read(right.form(&[("cmd", "list")]).send().await.unwrap()).await;
    assert_eq!(answer.json(), json!([]), "fired on the refused request");
}

#[tokio::test]
async fn faults_count_their_own_command_fire_once_and_clear_and_latency_adds_up() {
    let fake = AppIntegrationFake::start().await;
    fake.set_users(vec![alice()]);
    // The third list from now; an auth request in between does not count.
    fake.fault(Command::List, 2, Fault::Status(500));
    assert_eq!(list(&fake).await.status, 200);
    assert_eq!(check(&fake, "alice", "x").await.status, 401);
    assert_eq!(list(&fake).await.status, 200);
    assert_eq!(list(&fake).await.status, 500);
    assert_eq!(list(&fake).await.status, 200);

    // `Any` counts every request, an unknown command too.
    fake.fault(Command::Any, 1, Fault::Status(502));
    assert_eq!(post(&fake, &[("cmd", "bogus")]).await.status, 400);
    assert_eq!(check(&fake, "alice", "x").await.status, 502);

    fake.fault(Command::List, 0, Fault::Status(500));
    fake.fault(Command::List, 0, Fault::Html);
    fake.clear_faults();
    assert_eq!(list(&fake).await.status, 200);

    fake.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(list(&fake).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let counts = [Command::List, Command::Auth, Command::Groups, Command::Any];
    assert_eq!(counts.map(|c| fake.request_count(c)), [6, 2, 0, 9]);
    let recorded = fake.requests();
    assert!(recorded.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn a_hundred_thousand_generated_users_are_served_whole_and_quickly() {
    let fake = AppIntegrationFake::start().await;
    let started = Instant::now();
    fake.generate(100_000);
    let first = list(&fake).await;
    let second = Instant::now();
    let again = list(&fake).await;
    let served_again = second.elapsed();
    assert_eq!(first.body, again.body);
    let listed = first.json();
    let users = listed.as_array().expect("an array");
    assert_eq!(users.len(), 100_000);
    let last = AppIntegrationFake::generated_user_name(99_999);
    assert_eq!(users[99_999]["userName"], json!(last));
    assert_eq!(
        users[99_999]["emailAddresses"],
        json!(["user99999@example.com"])
    );
    assert_eq!(
        users[0]["distinguishedName"],
        "CN=User 0,OU=Users,DC=example,DC=com"
    );
    // Built once: the second answer is a copy, not a new serialisation.
    assert!(served_again < Duration::from_secs(1), "{served_again:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn https_serves_the_fakes_certificate_and_a_client_that_does_not_trust_it_refuses() {
    roster::install_crypto_provider();
    let fake = AppIntegrationFake::start_tls().await;
    assert!(fake.url().starts_with("https://127.0.0.1:"));
    fake.set_users(vec![alice()]);
    let pem = fake.certificate_pem().expect("a certificate");
    let trusted = reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM");
    let trusting = reqwest::Client::builder()
        .tls_certs_only([trusted])
        .build()
        .expect("HTTP client");
    let response = trusting
        .post(fake.url())
        .form(&[("cmd", "list")])
        .send()
        .await;
    let answer = read(response.expect("trusted")).await;
    assert_eq!(
        (answer.status, answer.json()[0]["userName"].clone()),
        (200, json!("alice"))
    );

    let refused = client()
        .post(fake.url())
        .form(&[("cmd", "list")])
        .send()
        .await;
    let error = refused.expect_err("a certificate nobody vouches for");
    let chain = format!("{error:?}");
    assert!(
        error.is_connect() && chain.contains("UnknownIssuer"),
        "{chain}"
    );
    assert_eq!(
        fake.request_count(Command::Any),
        1,
        "the refused one never arrived"
    );

    // Behind TLS the wire faults still work.
    fake.fault(Command::List, 0, Fault::CutOff);
    let response = trusting
        .post(fake.url())
        .form(&[("cmd", "list")])
        .send()
        .await;
    assert!(response.expect("headers arrive").bytes().await.is_err());
    assert!(
        AppIntegrationFake::start()
            .await
            .certificate_pem()
            .is_none()
    );
}
