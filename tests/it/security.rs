//! CSRF, origin checks, security headers and secrets (SECURITY.md: sessions and the admin UI).

use crate::support::app::csrf_token_in;

crate::db_test! {
    async fn unsafe_requests_need_a_token_bound_to_this_browser(app) {
        app.sign_in_as_admin().await;
        let form = [("username", "mallory"), ("password", "a long password!"), ("password_confirm", "a long password!")];
        // No token at all.
        let res = app.client.post(app.url("/admin/users")).form(&form).send().await.expect("POST");
        assert_eq!(res.status().as_u16(), 403);
        assert!(res.text().await.expect("body").contains("This form has expired"));
        // A token from another browser's session.
        let other = app.new_client();
        other.sign_in_as_admin().await;
        let foreign = csrf_token_in(&other.get_html("/admin/users/new").await);
        let mut body = vec![("csrf_token", foreign.as_str())];
        body.extend_from_slice(&form);
        let res = app.client.post(app.url("/admin/users")).form(&body).send().await.expect("POST");
        assert_eq!(res.status().as_u16(), 403);
        // The right token in the htmx header works.
        let own = csrf_token_in(&app.get_html("/admin/users/new").await);
        let res = app
            .client
            .post(app.url("/admin/users"))
            .header("X-CSRF-Token", own)
            .header("HX-Request", "true")
            .form(&form)
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers().get("hx-redirect").and_then(|v| v.to_str().ok()).map(|s| s.starts_with("/admin/users/")), Some(true));
        let count = app.conn(|c| roster::db::models::users::count(c).expect("count")).await;
        assert_eq!(count, 2, "only the request with the right token created a user");
    }
}

crate::db_test! {
    async fn cross_site_requests_are_refused_even_with_a_token(app) {
        app.sign_in_as_admin().await;
        let token = csrf_token_in(&app.get_html("/admin/users/new").await);
        for (header, value) in [("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")] {
            let res = app
                .client
                .post(app.url("/logout"))
                .header(header, value)
                .form(&[("csrf_token", token.as_str())])
                .send()
                .await
                .expect("POST");
            assert_eq!(res.status().as_u16(), 403, "{header}: {value}");
        }
        let same = app
            .client
            .post(app.url("/logout"))
            .header("Origin", app.address.clone())
            .header("Sec-Fetch-Site", "same-origin")
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .expect("POST");
        assert_eq!(same.status().as_u16(), 303);
    }
}

crate::db_test! {
    async fn every_page_carries_strict_security_headers(app) {
        app.sign_in_as_admin().await;
        for path in ["/login", "/admin", "/admin/users", "/admin/users/new", "/admin/profiles", "/admin/profiles/new?kind=entra_id", "/account", "/nope", "/static/js/roster.js"] {
            let res = app.get(path).await;
            let h = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let csp = h("content-security-policy");
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
            assert!(csp.contains("object-src 'none'") && csp.contains("base-uri 'none'") && csp.contains("frame-ancestors 'none'"));
            assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        }
        for path in ["/admin/users", "/admin/profiles/new?kind=entra_id", "/admin/profiles/new?kind=generic_ldap"] {
            let page = app.get_html(path).await;
            let handler = page.split(" on").skip(1).any(|rest| {
                let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase()).collect();
                !name.is_empty() && rest[name.len()..].starts_with('=')
            });
            assert!(!page.contains("<script>") && !page.contains("style=") && !handler, "{path}: no inline script, handler or style");
        }
        let missing = app.get("/nope").await;
        assert_eq!(missing.status().as_u16(), 404);
        assert!(missing.text().await.expect("body").contains("404 · Not Found"));
    }
}

crate::db_test! {
    async fn secrets_never_reach_a_page(app) {
        app.sign_in_as_admin().await;
        let key = app.conn(|c| {
            use diesel::prelude::*;
            roster::db::schema::master_keys::table
                .select(roster::db::schema::master_keys::verifier)
                .first::<String>(c)
                .expect("verifier")
        })
        .await;
        let password_canary = "canary-password-7f3a9c";
        app.create_user("henry", password_canary, &["log_on"]).await;
        let hash = app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::users;
            users::table.filter(users::username.eq("henry")).select(users::password_hash).first::<Option<String>>(c).expect("hash")
        })
        .await
        .expect("henry has a hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        for path in ["/admin", "/admin/users", "/admin/users?q=henry", "/admin/users/2", "/account"] {
            let page = app.get_html(path).await;
            for secret in [password_canary, hash.as_str(), key.as_str()] {
                assert!(!page.contains(secret), "{path} shows a secret");
            }
        }
    }
}

mod first_start_setup_link {
    use crate::support::app::{Backend, spawn_app_with};

    async fn body(backend: Backend) {
        let app = spawn_app_with(backend, |s| s.admin_password = None).await;
        let link = app.setup_link.clone().expect("a setup link");
        assert_eq!(app.get("/setup?token=wrong").await.status().as_u16(), 403);
        let choose = |password: &'static str| {
            let (app, link) = (&app, &link);
            async move {
                let token = link.trim_start_matches("/setup?token=");
                app.post_form(
                    link,
                    "/setup",
                    &[
                        ("token", token),
                        ("username", "root-admin"),
                        ("password", password),
                        ("password_confirm", password),
                    ],
                )
                .await
            }
        };
        let res = choose("short").await;
        assert_eq!(res.status().as_u16(), 422);
        assert!(
            res.text()
                .await
                .expect("body")
                .contains("Password must be at least 8 characters long.")
        );
        let res = choose("the first admin password").await;
        assert_eq!(res.status().as_u16(), 303);
        assert_eq!(
            app.get("/admin").await.status().as_u16(),
            200,
            "signed in after setup"
        );
        // The link is spent.
        assert_eq!(app.new_client().get(&link).await.status().as_u16(), 403);
        assert_eq!(
            app.new_client()
                .sign_in("root-admin", "the first admin password")
                .await
                .status()
                .as_u16(),
            303
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        body(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        body(Backend::Postgres).await
    }
}
