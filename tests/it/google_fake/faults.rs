//! Injected faults: Google's rate limits and errors in their shapes (OAuth's on the token
//! route), cut-off, garbage and stalled answers, a refused page token; latency and the
//! request record.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{KeyFile, api, assertion, directory_token, grant, start};
use crate::support::google::{Fault, Route};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_errors_come_in_googles_shapes() {
    let setup = start().await;
    let token = directory_token(&setup).await;
    let users = "users?customer=my_customer";
    let limit = |status: u16, reason: &str| Fault::RateLimit {
        status,
        reason: reason.into(),
    };
    setup
        .fake
        .fault(Route::Users, 0, limit(403, "userRateLimitExceeded"));
    let (status, body) = api(&setup, &token, users).await;
    assert_eq!(status, 403);
    let item = &body["error"]["errors"][0];
    assert_eq!(
        (item["domain"].as_str(), item["reason"].as_str()),
        (Some("usageLimits"), Some("userRateLimitExceeded"))
    );
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(api(&setup, &token, users).await.0, 200, "once");

    // The second matching request from now, not the first.
    setup
        .fake
        .fault(Route::Users, 1, limit(429, "rateLimitExceeded"));
    assert_eq!(api(&setup, &token, users).await.0, 200);
    let (status, body) = api(&setup, &token, users).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (429, Some("RESOURCE_EXHAUSTED"))
    );

    setup.fake.throttle_always(Route::Groups, 403);
    for _ in 0..2 {
        let (status, body) = api(&setup, &token, "groups?customer=my_customer").await;
        assert_eq!(
            (status, body["error"]["errors"][0]["reason"].as_str()),
            (403, Some("userRateLimitExceeded"))
        );
    }
    assert_eq!(
        api(&setup, &token, users).await.0,
        200,
        "other routes are not throttled"
    );
    setup.fake.clear_faults();
    assert_eq!(
        api(&setup, &token, "groups?customer=my_customer").await.0,
        200
    );

    let error = Fault::Error {
        status: 503,
        reason: "backendError".into(),
        message: "Backend Error".into(),
    };
    setup.fake.fault(Route::Members, 0, error.clone());
    setup
        .fake
        .set_groups(vec![crate::support::google::DirectoryGroup::new(
            "03g",
            "g@example.com",
            "G",
            vec![],
        )]);
    let (status, body) = api(&setup, &token, "groups/03g/members").await;
    assert_eq!(
        (status, body),
        (
            503,
            json!({"error": {
                "code": 503,
                "message": "Backend Error",
                "errors": [{"message": "Backend Error", "domain": "global", "reason": "backendError"}],
                "status": "UNAVAILABLE",
            }})
        )
    );

    // On the token route: OAuth's shape.
    let file = KeyFile::read(&setup.account);
    let signed = assertion(&file, &setup.fake.token_url(), |_, _| {});
    setup.fake.fault(
        Route::Token,
        0,
        Fault::Error {
            status: 500,
            reason: "internal_failure".into(),
            message: "Internal failure.".into(),
        },
    );
    let answer = grant(&setup, &signed).await;
    assert_eq!(
        answer,
        (
            500,
            json!({"error": "internal_failure", "error_description": "Internal failure."})
        )
    );
    setup
        .fake
        .fault(Route::Any, 0, limit(429, "rateLimitExceeded"));
    let (status, body) = grant(&setup, &signed).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
    setup.fake.fault(Route::Token, 0, Fault::BadPageToken);
    let (status, body) = grant(&setup, &signed).await;
    assert!(
        status == 200 && body.get("access_token").is_none(),
        "{body}"
    );
    assert_eq!(grant(&setup, &signed).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_garbage_refused_page_tokens_and_stalls_fail_as_they_would() {
    let setup = start().await;
    setup.fake.generate(300, 0, 0);
    let token = super::token_with(&setup, |_, c| c["sub"] = json!("user0@example.com")).await;
    let path = "users?customer=my_customer&maxResults=50";
    let url = format!("{}/admin/directory/v1/{path}", setup.fake.base_url());

    setup.fake.fault(Route::Users, 0, Fault::CutOff);
    let response = setup
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.bytes().await.is_err(), "the body read must fail");

    setup.fake.fault(Route::Users, 0, Fault::Garbage);
    let response = setup
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.json::<Value>().await.is_err());

    setup.fake.fault(Route::Users, 0, Fault::BadPageToken);
    let (status, body) = api(&setup, &token, path).await;
    assert_eq!(
        (status, body["users"].as_array().map(Vec::len)),
        (200, Some(50))
    );
    let next = body["nextPageToken"].as_str().expect("a next page token");
    let (status, body) = api(&setup, &token, &format!("{path}&pageToken={next}")).await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (400, Some("invalid"))
    );

    setup.fake.fault(Route::Users, 0, Fault::Stall);
    let stalled = setup
        .http
        .get(&url)
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(stalled.is_err_and(|e| e.is_timeout()));

    setup.fake.fault(Route::Oidc, 0, Fault::Garbage);
    let discovery = format!("{}/.well-known/openid-configuration", setup.fake.base_url());
    let response = setup.http.get(&discovery).send().await.expect("response");
    assert!(response.json::<Value>().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_added_and_requests_are_recorded_decoded() {
    let setup = start().await;
    let token = directory_token(&setup).await;
    setup.fake.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    let (status, _) = api(
        &setup,
        &token,
        "users?customer=my_customer&fields=users(id,name%2FfullName)",
    )
    .await;
    assert!(status == 200 && started.elapsed() >= Duration::from_millis(150));
    setup.fake.set_latency(Duration::ZERO);
    let unknown = format!(
        "{}/admin/directory/v1/customers/my_customer",
        setup.fake.base_url()
    );
    let response = setup.http.get(unknown).send().await.expect("response");
    assert_eq!(response.status().as_u16(), 404);
    assert!(
        response
            .text()
            .await
            .expect("page")
            .contains("That’s an error.")
    );

    let recorded = setup.fake.requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!(
        (recorded[0].method.as_str(), recorded[0].route),
        ("POST", Some(Route::Token))
    );
    assert!(!recorded[0].authorization_present);
    assert_eq!(recorded[1].route, Some(Route::Users));
    assert!(recorded[1].authorization_present);
    assert_eq!(
        recorded[1].path_and_query,
        "/admin/directory/v1/users?customer=my_customer&fields=users(id,name/fullName)"
    );
    assert_eq!(recorded[2].route, None);
    assert!(recorded[1].at >= recorded[0].at);
    assert_eq!(setup.fake.request_count(Route::Users), 1);
    assert_eq!(setup.fake.request_count(Route::Any), 3);
}
