//! The JWT-bearer grant: the key file, the token, each refusal Google documents, delegation,
//! and what the Directory API then makes of the token.

use serde_json::{Value, json};

use super::{
    KeyFile, api, assertion, directory_token, error_reason, grant, now, post_form, start,
    token_with,
};
use crate::support::google::{GROUP_READONLY, MEMBER_READONLY, USER_READONLY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_file_is_googles_and_a_delegated_assertion_gets_a_token() {
    let setup = start().await;
    let file: Value = serde_json::from_str(&setup.account.key_json).expect("JSON");
    let mut members: Vec<&str> = file
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(
        members,
        [
            "auth_provider_x509_cert_url",
            "auth_uri",
            "client_email",
            "client_id",
            "client_x509_cert_url",
            "private_key",
            "private_key_id",
            "project_id",
            "token_uri",
            "type",
            "universe_domain"
        ]
    );
    assert_eq!(file["type"], "service_account");
    assert_eq!(file["project_id"], "roster-test");
    assert_eq!(file["token_uri"], "https://oauth2.googleapis.com/token");
    assert_eq!(file["universe_domain"], "googleapis.com");
    let key_id = file["private_key_id"].as_str().expect("id");
    assert!(key_id.len() == 40 && key_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(key_id, setup.account.private_key_id);
    let client_id = file["client_id"].as_str().expect("client_id");
    assert!(client_id.len() == 21 && client_id.chars().all(|c| c.is_ascii_digit()));
    let pem = file["private_key"].as_str().expect("pem");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    // The PEM's line breaks are JSON escapes in the file, as in the console's download.
    assert!(
        setup
            .account
            .key_json
            .contains("-----BEGIN PRIVATE KEY-----\\n")
    );

    let (status, body) = grant(
        &setup,
        &assertion(
            &KeyFile::read(&setup.account),
            &setup.fake.token_url(),
            |_, _| {},
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().expect("access_token");
    assert!(token.starts_with("ya29."), "{token}");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");
    let (status, _) = api(&setup, token, "users?customer=my_customer").await;
    assert_eq!(status, 200);
    assert_eq!(setup.fake.token_requests(), 1);

    // Without `kid` the account's key is still the one tried.
    token_with(&setup, |header, _| {
        header.as_object_mut().expect("header").remove("kid");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_assertions_are_refused_with_googles_errors() {
    let setup = start().await;
    let file = KeyFile::read(&setup.account);
    let other = KeyFile::read(
        &setup
            .fake
            .new_service_account("other@roster-test.iam.gserviceaccount.com"),
    );
    let url = setup.fake.token_url();
    let refused = |status: u16, error: &str, description: &str| {
        (
            status,
            json!({"error": error, "error_description": description}),
        )
    };
    let signature = refused(400, "invalid_grant", "Invalid JWT Signature.");
    let short = refused(
        400,
        "invalid_grant",
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
         timeframe. Check your iat and exp values in the JWT claim.",
    );

    // Our iss and kid, signed with another key; our iss with another key's kid.
    let mut forged = KeyFile::read(&setup.account);
    forged.key = other.key.clone();
    let cases: Vec<(String, (u16, Value))> = vec![
        (assertion(&forged, &url, |_, _| {}), signature.clone()),
        (
            assertion(&file, &url, |h, _| h["kid"] = json!(other.private_key_id)),
            signature.clone(),
        ),
        (
            assertion(&file, &url, |h, _| h["alg"] = json!("RS512")),
            signature.clone(),
        ),
        (
            assertion(&file, &url, |_, c| {
                c["iss"] = json!("nobody@x.iam.gserviceaccount.com")
            }),
            refused(401, "invalid_client", "The OAuth client was not found."),
        ),
        // The key file's token_uri is Google's; the fake only takes its own.
        (
            assertion(&file, "https://oauth2.googleapis.com/token", |_, _| {}),
            refused(400, "invalid_grant", "Invalid JWT: Failed audience check."),
        ),
        (
            assertion(&file, &url, |_, c| {
                c["iat"] = json!(now() - 7200);
                c["exp"] = json!(now() - 3600);
            }),
            short.clone(),
        ),
        (
            assertion(&file, &url, |_, c| c["exp"] = json!(now() + 3601)),
            short.clone(),
        ),
        (
            assertion(&file, &url, |_, c| {
                c.as_object_mut().expect("claims").remove("iat");
            }),
            short,
        ),
        (
            assertion(&file, &url, |_, c| c["scope"] = json!(" ")),
            refused(400, "invalid_scope", "Empty or missing scope not allowed."),
        ),
        (
            assertion(&file, &url, |_, c| c["sub"] = json!("nobody@example.com")),
            refused(400, "invalid_grant", "Invalid email or User ID"),
        ),
        // The read-write user scope was never delegated.
        (
            assertion(&file, &url, |_, c| {
                c["scope"] = json!("https://www.googleapis.com/auth/admin.directory.user")
            }),
            refused(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client \
                 not authorized for any of the scopes requested.",
            ),
        ),
    ];
    for (i, (signed, expected)) in cases.into_iter().enumerate() {
        assert_eq!(grant(&setup, &signed).await, expected, "case {i}");
    }
    let (status, body) = grant(&setup, "not.a.jwt").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = post_form(
        &setup.http,
        &url,
        &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")],
    )
    .await;
    assert_eq!(
        (status, body),
        refused(
            400,
            "invalid_request",
            "Missing required parameter: assertion"
        )
    );
    let (status, body) = post_form(&setup.http, &url, &[("grant_type", "password")]).await;
    assert_eq!(
        (status, body),
        refused(
            400,
            "unsupported_grant_type",
            "Invalid grant_type: password"
        )
    );
    // An account replaced by a new key: the old key is deleted.
    setup.fake.new_service_account(super::SERVICE_ACCOUNT);
    assert_eq!(
        grant(&setup, &assertion(&file, &url, |_, _| {})).await,
        signature
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_delegation_refuses_and_a_non_admin_gets_a_token_the_api_forbids() {
    let setup = start().await;
    let file = KeyFile::read(&setup.account);
    setup.fake.set_delegation(&setup.account.client_id, &[]);
    let (status, body) = grant(
        &setup,
        &assertion(&file, &setup.fake.token_url(), |_, _| {}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized_client"))
    );
    setup.fake.set_delegation(
        &setup.account.client_id,
        &[USER_READONLY, GROUP_READONLY, MEMBER_READONLY],
    );

    // Google issues the token for a user who is no administrator; the API refuses.
    let token = token_with(&setup, |_, c| c["sub"] = json!("Alice@Example.com")).await;
    let (status, body) = api(&setup, &token, "users?customer=my_customer").await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error": {
            "code": 403,
            "message": "Not Authorized to access this resource/api",
            "errors": [{
                "message": "Not Authorized to access this resource/api",
                "domain": "global",
                "reason": "forbidden",
            }],
        }})
    );
    // So is a token of the service account itself (no `sub`).
    let own = token_with(&setup, |_, c| {
        c.as_object_mut().expect("claims").remove("sub");
    })
    .await;
    let (status, _) = api(&setup, &own, "groups?customer=my_customer").await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_needs_its_scope_and_a_live_token() {
    let setup = start().await;
    let only = |scope: &'static str| move |_: &mut Value, c: &mut Value| c["scope"] = json!(scope);
    let users_only = token_with(&setup, only(USER_READONLY)).await;
    let groups_only = token_with(&setup, only(GROUP_READONLY)).await;
    let members_only = token_with(&setup, only(MEMBER_READONLY)).await;
    let group =
        crate::support::google::DirectoryGroup::new("03abc", "staff@example.com", "Staff", vec![]);
    setup.fake.set_groups(vec![group]);
    let cases = [
        (&users_only, "users?customer=my_customer", 200),
        (&users_only, "groups?customer=my_customer", 403),
        (&users_only, "groups/03abc/members", 403),
        (&groups_only, "users/admin@example.com", 403),
        (&groups_only, "groups?customer=my_customer", 200),
        // group.readonly also opens members.list.
        (&groups_only, "groups/03abc/members", 200),
        (&members_only, "groups/03abc/members", 200),
        (&members_only, "groups/03abc", 403),
    ];
    for (token, path, expected) in cases {
        let (status, body) = api(&setup, token, path).await;
        assert_eq!(status, expected, "{path}: {body}");
        if status == 403 {
            assert_eq!(
                error_reason(&body),
                (
                    "insufficientPermissions",
                    "Request had insufficient authentication scopes."
                )
            );
            assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        }
    }

    let invalid = json!({"error": {
        "code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access \
                    token, login cookie or other valid authentication credential. See \
                    https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "errors": [{
            "message": "Invalid Credentials",
            "domain": "global",
            "reason": "authError",
            "location": "Authorization",
            "locationType": "header",
        }],
        "status": "UNAUTHENTICATED",
    }});
    assert_eq!(
        api(&setup, "ya29.made-up", "users?customer=my_customer").await,
        (401, invalid.clone())
    );
    let token = directory_token(&setup).await;
    setup.fake.expire_access_tokens();
    assert_eq!(
        api(&setup, &token, "users?customer=my_customer").await,
        (401, invalid)
    );
    let url = format!(
        "{}/admin/directory/v1/users?customer=my_customer",
        setup.fake.base_url()
    );
    let response = setup.http.get(url).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_reason(&body).0, "required");
}
