//! TOTP MFA: enrolment from the page's own secret, codes checked once (also across two
//! browsers at the same moment), recovery codes once, wrong codes drop the half session,
//! and nothing is reachable between the password step and the code.

use crate::profile_pages::{create, set, slapd_profile_of};
use crate::support::app::location;
use crate::support::app::{TestApp, csrf_token_in};
use crate::support::servers;
use crate::sync::context;
use roster::sync::{self, Trigger};

async fn post_code(client: &TestApp, code: &str) -> reqwest::Response {
    let token = csrf_token_in(&client.get_html("/mfa").await);
    client
        .client
        .post(client.url("/mfa"))
        .form(&[("csrf_token", token.as_str()), ("code", code), ("next", "")])
        .send()
        .await
        .expect("POST /mfa")
}

fn code_at(secret: &[u8], offset_steps: i64) -> String {
    let totp = roster::auth::totp::totp(secret, "alice").expect("totp");
    let at = (roster::db::now() + offset_steps * 30).max(0) as u64;
    totp.generate(at).to_string()
}

crate::db_test! {
    async fn mfa_enrolment_codes_once_recovery_once_and_nothing_in_between(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let mut f = slapd_profile_of(&slapd, "Main");
        set(&mut f, "ignore_tls_errors", "on");
        let profile = create(&app, &f).await; // MFA by default is on
        sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("sync");
        let password = slapd.fact("USER_PASSWORD").to_owned();

        let a = app.new_client();
        let res = a.sign_in("alice", &password).await;
        assert_eq!((res.status().as_u16(), location(&res).as_str()), (303, "/mfa"));
        // Half signed in: no page with data.
        for path in ["/account", "/admin", "/admin/users"] {
            let res = a.get(path).await;
            assert_ne!(res.status().as_u16(), 200, "{path} between the steps");
        }
        let page = a.get_html("/mfa").await;
        assert!(page.contains("Set up two-step sign-in"), "{page}");
        let secret_text = page.split("id=\"totp-secret\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("secret shown").replace(' ', "");
        let secret = totp_rs::Secret::try_from_base32(&secret_text).expect("base32").as_bytes().to_vec();
        assert!(secret.len() >= 20, "at least 160 bits");
        let qr = a.get("/mfa/qr.png").await;
        assert_eq!(qr.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("image/png"));
        assert_eq!(qr.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));

        let res = post_code(&a, "12345x").await;
        assert_eq!(res.status().as_u16(), 422);
        crate::support::clear_of_totp_step_boundary(3).await;
        let res = post_code(&a, &code_at(&secret, -1)).await;
        assert_eq!(res.status().as_u16(), 200);
        let page = res.text().await.expect("body");
        let codes: Vec<String> = page.split("<li><code>").skip(1).filter_map(|r| r.split('<').next()).map(str::to_owned).collect();
        assert_eq!(codes.len(), 10, "{page}");
        assert_eq!(a.get("/account").await.status().as_u16(), 200, "signed in after enrolling");

        // The same code from two browsers at the same moment: accepted once.
        let (b, c) = (app.new_client(), app.new_client());
        assert_eq!(location(&b.sign_in("alice", &password).await), "/mfa");
        assert_eq!(location(&c.sign_in("alice", &password).await), "/mfa");
        assert!(b.get_html("/mfa").await.contains("Enter your code"));
        let code = code_at(&secret, 0);
        let (rb, rc) = tokio::join!(post_code(&b, &code), post_code(&c, &code));
        let mut statuses = [rb.status().as_u16(), rc.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [303, 422], "one of the two browsers");
        // Replayed later: refused, saying why.
        let d = app.new_client();
        d.sign_in("alice", &password).await;
        let replayed = post_code(&d, &code).await;
        assert_eq!(replayed.status().as_u16(), 422);
        assert!(replayed.text().await.expect("body").contains("This code was already used; wait for the next one."));

        // A recovery code works once.
        assert_eq!(post_code(&d, &codes[0].to_uppercase()).await.status().as_u16(), 303);
        assert_eq!(d.get("/account").await.status().as_u16(), 200);
        let e = app.new_client();
        e.sign_in("alice", &password).await;
        assert_eq!(post_code(&e, &codes[0]).await.status().as_u16(), 422);

        // Wrong codes: after five the half session is gone.
        let f = app.new_client();
        f.sign_in("alice", &password).await;
        let mut last = 0;
        for _ in 0..5 {
            let res = post_code(&f, "000001").await;
            last = res.status().as_u16();
        }
        assert_eq!(last, 303, "the fifth wrong code ends the session");
        assert_eq!(location(&f.get("/mfa").await), "/login");

        // Across sessions too: more than ten codes in the window and even a right one is
        // refused (e: 1 and f: 5 wrong so far).
        let h = app.new_client();
        h.sign_in("alice", &password).await;
        for _ in 0..4 {
            assert_eq!(post_code(&h, "000002").await.status().as_u16(), 422);
        }
        let res = post_code(&h, &code_at(&secret, 1)).await;
        assert_eq!((res.status().as_u16(), location(&res).as_str()), (303, "/login"), "throttled");
        assert_ne!(h.get("/account").await.status().as_u16(), 200);

        // An admin resets alice's MFA: her next sign-in enrols again. Disabling her ends
        // her sessions at once.
        let alice: i64 = app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::users;
            users::table.filter(users::username.eq("alice")).select(users::id).first(c).expect("alice")
        }).await;
        let detail = format!("/admin/users/{alice}");
        assert!(app.get_html(&detail).await.contains("Reset MFA"));
        let res = app.post_form(&detail, &format!("{detail}/action"), &[("action", "reset_mfa")]).await;
        assert_eq!(res.status().as_u16(), 303);
        let g = app.new_client();
        g.sign_in("alice", &password).await;
        assert!(g.get_html("/mfa").await.contains("Set up two-step sign-in"));
        assert_eq!(d.get("/account").await.status().as_u16(), 200);
        let res = app.post_form(&detail, &format!("{detail}/action"), &[("action", "disable")]).await;
        assert_eq!(res.status().as_u16(), 303);
        assert_ne!(d.get("/account").await.status().as_u16(), 200, "disabled: signed out at once");
        assert_eq!(d.new_client().sign_in("alice", &password).await.status().as_u16(), 401);
        let actions: Vec<String> = app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::audit_events;
            audit_events::table.select(audit_events::action).load(c).expect("audit")
        }).await;
        for action in ["mfa_enrolled", "mfa_passed", "mfa_failed", "user_mfa_reset", "user_disabled"] {
            assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
        }
    }
}

crate::db_test! {
    async fn my_account_lists_sessions_signs_out_others_and_changes_the_password(app) {
        app.sign_in_as_admin().await;
        assert_eq!(app.create_user("henry", "henry's first password", &["log_on"]).await.status().as_u16(), 303);
        let (a, b) = (app.new_client(), app.new_client());
        a.sign_in("henry", "henry's first password").await;
        b.sign_in("henry", "henry's first password").await;
        let page = a.get_html("/account").await;
        assert_eq!(page.matches("<tr><td>").count(), 2, "two sessions: {page}");
        assert!(page.contains("This session") && page.contains("Two-step sign-in"));
        let res = a.post_form("/account", "/account/sessions/others", &[]).await;
        assert!(res.text().await.expect("body").contains("Signed out 1 other session(s)."));
        assert_ne!(b.get("/account").await.status().as_u16(), 200, "the other session ended");

        let res = a.post_form("/account", "/account/password", &[("current", "not it"), ("password", "henry's second password"), ("password_confirm", "henry's second password")]).await;
        assert_eq!(res.status().as_u16(), 422);
        assert!(res.text().await.expect("body").contains("Current password is not correct."));
        let res = a.post_form("/account", "/account/password", &[("current", "henry's first password"), ("password", "henry's second password"), ("password_confirm", "henry's second password")]).await;
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(app.new_client().sign_in("henry", "henry's first password").await.status().as_u16(), 401);
        assert_eq!(app.new_client().sign_in("henry", "henry's second password").await.status().as_u16(), 303);

        // Setting up two-step sign-in takes the password again, then goes through /mfa.
        let res = a.post_form("/account", "/account/mfa", &[("current", "wrong")]).await;
        assert_eq!(res.status().as_u16(), 422);
        assert!(res.text().await.expect("body").contains("Password is not correct."));
        let res = a.post_form("/account", "/account/mfa", &[("current", "henry's second password")]).await;
        assert_eq!((res.status().as_u16(), location(&res).as_str()), (303, "/mfa?next=%2Faccount"));
        assert_ne!(a.get("/account").await.status().as_u16(), 200, "back at the MFA step");
        let page = a.get_html("/mfa").await;
        let key = page.split("id=\"totp-secret\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("key").replace(' ', "");
        let secret = totp_rs::Secret::try_from_base32(&key).expect("base32").as_bytes().to_vec();
        let token = csrf_token_in(&page);
        let res = a.client.post(a.url("/mfa")).form(&[("csrf_token", token.as_str()), ("code", code_at(&secret, 0).as_str()), ("next", "/account")]).send().await.expect("POST");
        assert!(res.text().await.expect("body").contains("Save your recovery codes"));
        assert!(a.get_html("/account").await.contains("On since"));
    }
}

crate::db_test! {
    async fn admin_edits_privileges_and_deletes_users_but_not_themselves(app) {
        app.sign_in_as_admin().await;
        let res = app.create_user("ivy", "ivy's long password", &["log_on"]).await;
        let page = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("user page").to_owned();
        let ivy = app.new_client();
        assert_eq!(ivy.sign_in("ivy", "ivy's long password").await.status().as_u16(), 303);
        let res = app.post_form(&page, &format!("{page}/privileges"), &[("privilege", "log_on"), ("privilege", "archive_email")]).await;
        assert_eq!(res.status().as_u16(), 303);
        let detail = app.get_html(&page).await;
        assert!(detail.contains("Log on, Archive e-mail"), "{detail}");
        let res = app.post_form(&page, &format!("{page}/action"), &[("action", "delete")]).await;
        assert_eq!(res.headers().get("location").and_then(|v| v.to_str().ok()), Some("/admin/users"));
        assert_eq!(app.get(&page).await.status().as_u16(), 404);
        assert_ne!(ivy.get("/account").await.status().as_u16(), 200, "a deleted user's sessions end");
        // The admin cannot lock themselves out.
        let me: i64 = app.conn(|c| {
            use diesel::prelude::*;
            use roster::db::schema::users;
            users::table.filter(users::username.eq("admin")).select(users::id).first(c).expect("admin")
        }).await;
        let mine = format!("/admin/users/{me}");
        assert_eq!(app.post_form(&mine, &format!("{mine}/action"), &[("action", "delete")]).await.status().as_u16(), 400);
        app.post_form(&mine, &format!("{mine}/privileges"), &[("privilege", "log_on")]).await;
        assert!(app.get_html(&mine).await.contains("Administrator"), "admin kept");
    }
}
