//! Local sign-in, sessions and throttling (SECURITY.md: sign-in, sessions).

use crate::support::app::location;
use crate::support::app::{ADMIN_PASSWORD, TestApp, csrf_token_in};

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("roster_session="))
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim_start_matches("roster_session=")
                .to_owned()
        })
}

async fn create_plain_user(app: &TestApp, name: &str, password: &str) {
    app.sign_in_as_admin().await;
    let res = app.create_user(name, password, &["log_on"]).await;
    assert_eq!(res.status().as_u16(), 303, "user creation should redirect");
}

crate::db_test! {
    async fn admin_signs_in_and_lands_on_the_console(app) {
        let res = app.sign_in("admin", ADMIN_PASSWORD).await;
        assert_eq!(res.status().as_u16(), 303);
        assert_eq!(location(&res), "/admin");
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("roster_session="))
            .expect("session cookie")
            .to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        let page = app.get_html("/admin").await;
        assert!(page.contains("Dashboard"), "{page}");
    }
}

crate::db_test! {
    async fn wrong_password_unknown_user_and_disabled_user_answer_alike(app) {
        create_plain_user(&app, "dora", "dora's long password").await;
        app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::users;
            diesel::update(users::table.filter(users::username.eq("dora")))
                .set(users::disabled.eq(true))
                .execute(c)
                .expect("disable dora");
        })
        .await;
        let mut answers = Vec::new();
        for (name, password) in [
            ("admin", "wrong password!"),
            ("nobody-here", "some password"),
            ("dora", "dora's long password"),
            ("admin", "   "),
        ] {
            let fresh = app.new_client();
            let res = fresh.sign_in(name, password).await;
            let status = res.status().as_u16();
            let body = res.text().await.expect("body");
            // Only the echoed user name and the CSRF token may differ.
            let normalised = body
                .replace(&format!("value=\"{name}\""), "value=\"NAME\"")
                .replace(&csrf_token_in(&body), "TOKEN");
            answers.push((status, normalised));
        }
        for (status, body) in &answers {
            assert_eq!(*status, 401);
            assert!(body.contains("The user name or password is incorrect."));
            assert_eq!(body, &answers[0].1);
        }
    }
}

crate::db_test! {
    async fn sign_in_rotates_the_session_and_sign_out_ends_it(app) {
        let first = app.sign_in("admin", ADMIN_PASSWORD).await;
        let first_token = session_cookie(&first).expect("first session");
        // Signing in again from a signed-in browser (the sign-in page itself redirects,
        // so the form is posted with the token of the current page).
        let token = csrf_token_in(&app.get_html("/admin").await);
        let second = app
            .client
            .post(app.url("/login"))
            .form(&[("csrf_token", token.as_str()), ("username", "admin"), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .expect("POST");
        let second_token = session_cookie(&second).expect("second session");
        assert_ne!(first_token, second_token);

        // The replaced session no longer works.
        let stale = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let res = stale
            .get(app.url("/admin"))
            .header("cookie", format!("roster_session={first_token}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status().as_u16(), 303);

        let page = app.get_html("/admin").await;
        let token = csrf_token_in(&page);
        let res = app.client.post(app.url("/logout")).form(&[("csrf_token", token)]).send().await.expect("logout");
        assert_eq!(res.status().as_u16(), 303);
        let res = stale
            .get(app.url("/admin"))
            .header("cookie", format!("roster_session={second_token}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status().as_u16(), 303, "signed-out session must not work");
    }
}

crate::db_test! {
    async fn idle_and_absolute_expiry_end_sessions(app) {
        app.sign_in_as_admin().await;
        assert_eq!(app.get("/admin").await.status().as_u16(), 200);
        app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::sessions;
            diesel::update(sessions::table)
                .set(sessions::last_seen_at.eq(roster::db::now() - 2 * 3600))
                .execute(c)
                .expect("age the session");
        })
        .await;
        let res = app.get("/admin").await;
        assert_eq!(res.status().as_u16(), 303, "idle session must expire");

        app.sign_in_as_admin().await;
        app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::sessions;
            diesel::update(sessions::table)
                .set(sessions::expires_at.eq(roster::db::now() - 1))
                .execute(c)
                .expect("expire the session");
        })
        .await;
        assert_eq!(app.get("/admin").await.status().as_u16(), 303, "absolute expiry");
    }
}

crate::db_test! {
    async fn parallel_wrong_passwords_are_throttled_exactly(app) {
        // The account limit is 10 per window: of 50 parallel attempts exactly 10 are checked.
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let other = app.new_client();
            tasks.push(tokio::spawn(async move {
                other.sign_in("admin", "not the password").await.status().as_u16()
            }));
        }
        let mut refused = 0;
        let mut throttled = 0;
        for t in tasks {
            match t.await.expect("join") {
                401 => refused += 1,
                429 => throttled += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        assert_eq!((refused, throttled), (10, 40));
        // Even the right password is refused while the account is locked…
        let res = app.new_client().sign_in("admin", ADMIN_PASSWORD).await;
        assert_eq!(res.status().as_u16(), 429);
        assert!(res.text().await.expect("body").contains("Try again in"));
        // …and works again once the window has passed.
        app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::sign_in_throttle;
            diesel::update(sign_in_throttle::table)
                .set(sign_in_throttle::window_started_at.eq(roster::db::now() - 3600))
                .execute(c)
                .expect("age the window");
        })
        .await;
        assert_eq!(app.new_client().sign_in("admin", ADMIN_PASSWORD).await.status().as_u16(), 303);
    }
}

crate::db_test! {
    async fn next_is_followed_only_to_local_paths(app) {
        for (next, expected) in [
            ("/admin/users?q=a", "/admin/users?q=a"),
            ("//evil.example/x", "/admin"),
            ("https://evil.example/", "/admin"),
            ("/\\evil.example", "/admin"),
            ("javascript:alert(1)", "/admin"),
        ] {
            let fresh = app.new_client();
            let res = fresh
                .post_form(&format!("/login?next={}", urlencode(next)), "/login", &[
                    ("username", "admin"),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ])
                .await;
            assert_eq!(location(&res), expected, "next={next}");
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

crate::db_test! {
    async fn signed_in_non_admin_lands_on_my_account_and_cannot_open_admin_pages(app) {
        create_plain_user(&app, "erin", "erin's long password").await;
        let erin = app.new_client();
        let res = erin.sign_in("erin", "erin's long password").await;
        assert_eq!(location(&res), "/account");
        let page = erin.get_html("/account").await;
        assert!(page.contains("erin") && page.contains("Log on"), "{page}");
        for path in ["/admin", "/admin/users", "/admin/users/new", "/admin/users/1", "/admin/profiles", "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/new/fields?kind=icewarp", "/admin/profiles/1", "/admin/profiles/1/delete", "/admin/profiles/1/certificate.pem", "/admin/profiles/1/runs", "/admin/profiles/1/run-status", "/admin/runs", "/admin/runs/1", "/admin/schedules", "/admin/schedules/new", "/admin/schedules/1"] {
            assert_eq!(erin.get(path).await.status().as_u16(), 403, "{path}");
            let htmx = erin.client.get(erin.url(path)).header("HX-Request", "true").send().await.expect("GET");
            assert_eq!(htmx.status().as_u16(), 403, "{path} (htmx)");
            assert_eq!(htmx.headers().get("hx-retarget").and_then(|v| v.to_str().ok()), Some("#toasts"));
        }
        // Unsafe requests too, with a valid CSRF token of her own: nothing is created or probed.
        let token = crate::support::app::csrf_token_in(&erin.get_html("/account").await);
        for path in ["/admin/profiles", "/admin/profiles/test-connection", "/admin/profiles/groups", "/admin/profiles/1", "/admin/profiles/1/delete", "/admin/profiles/1/sync", "/admin/runs/1/approve", "/admin/runs/1/discard", "/admin/runs/1/cancel", "/admin/users/1/action", "/admin/users/1/privileges", "/admin/users/1/authentication", "/admin/schedules", "/admin/schedules/1", "/admin/schedules/1/enabled", "/admin/schedules/1/delete"] {
            let res = erin.client.post(erin.url(path)).form(&[("csrf_token", token.as_str()), ("kind", "icewarp"), ("name", "x")]).send().await.expect("POST");
            assert_eq!(res.status().as_u16(), 403, "POST {path}");
        }
        assert_eq!(app.conn(|c| roster::db::models::directory_profiles::count(c).expect("count")).await, 0);
        // A user without the log on privilege cannot sign in at all.
        app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::users;
            let id: roster::db::ids::UserId = users::table.filter(users::username.eq("erin")).select(users::id).first(c).expect("erin");
            roster::db::models::user_privileges::replace(c, id, &[]).expect("revoke");
        })
        .await;
        assert_eq!(app.new_client().sign_in("erin", "erin's long password").await.status().as_u16(), 401);
    }
}

crate::db_test! {
    async fn anonymous_visitors_are_sent_to_sign_in(app) {
        let res = app.get("/admin/users?q=x").await;
        assert_eq!(res.status().as_u16(), 303);
        assert_eq!(location(&res), "/login?next=%2Fadmin%2Fusers%3Fq%3Dx");
        let htmx = app.client.get(app.url("/admin/users")).header("HX-Request", "true").send().await.expect("GET");
        assert_eq!(htmx.headers().get("hx-redirect").and_then(|v| v.to_str().ok()), Some("/login?next=%2Fadmin%2Fusers"));
    }
}

/// A synchronisation holds SQLite's one write lock for as long as it applies (half a minute
/// for a million users): pages whose session is due to record the visit are served
/// meanwhile, and a later request records it. Before, each waited the 10 s busy timeout on
/// a pooled connection and failed with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_served_while_a_long_write_holds_the_sqlite_lock() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use roster::db::schema::sessions;
    let app = crate::support::app::spawn_app(crate::support::app::Backend::Sqlite).await;
    app.sign_in_as_admin().await;
    let long_ago = roster::db::now() - 600;
    app.conn(move |c| {
        diesel::update(sessions::table)
            .set(sessions::last_seen_at.eq(long_ago))
            .execute(c)
            .expect("age the session");
    })
    .await;

    let mut writer = roster::db::DbConnection::open(&app.database_url).expect("second connection");
    writer
        .batch_execute("BEGIN IMMEDIATE")
        .expect("take the write lock");
    for path in ["/admin", "/admin/users", "/admin/users?q=admin"] {
        assert_eq!(
            app.get(path).await.status().as_u16(),
            200,
            "{path} while the lock is held"
        );
    }
    assert_eq!(
        last_seen(&app).await,
        long_ago,
        "nothing could be written meanwhile"
    );
    writer.batch_execute("ROLLBACK").expect("release the lock");

    assert_eq!(app.get("/admin").await.status().as_u16(), 200);
    assert!(
        last_seen(&app).await > long_ago,
        "the next request records the visit"
    );
}

async fn last_seen(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use roster::db::schema::sessions;
    app.conn(|c| {
        sessions::table
            .select(sessions::last_seen_at)
            .first::<i64>(c)
            .expect("session")
    })
    .await
}
