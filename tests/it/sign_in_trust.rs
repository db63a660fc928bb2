//! Sign-in under attack (the trust issue): one lockout for every spelling of an account,
//! capped and pruned names, throttled re-entered passwords, MFA for everyone enrolled,
//! Unicode passwords.

use crate::support::app::location;
use diesel::prelude::*;
use roster::db::schema::{audit_events, sign_in_throttle};
use roster::sync::{self, Trigger};

use crate::profile_pages::{create, set, slapd_profile_of};
use crate::support::app::{TestApp, csrf_token_in};
use crate::support::servers;
use crate::sync::context;

async fn audited(app: &TestApp, action: &'static str) -> Vec<(String, String)> {
    app.conn(move |c| {
        audit_events::table
            .filter(audit_events::action.eq(action))
            .order(audit_events::id)
            .select((audit_events::target, audit_events::detail))
            .load::<(String, String)>(c)
            .expect("audit")
    })
    .await
}

crate::db_test! {
    settings(|s| s.throttle_account_failures = 3);
    async fn every_spelling_of_an_account_shares_one_lockout(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let mut f = slapd_profile_of(&slapd, "Main");
        set(&mut f, "ignore_tls_errors", "on");
        set(&mut f, "mfa_by_default", "");
        let profile = create(&app, &f).await;
        sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("sync");
        let password = slapd.fact("USER_PASSWORD").to_owned();

        // Spaces around `@` or `\` are refused, not ignored.
        for odd in ["alice @example.test", "alice@ example.test", "EXAMPLE\\ alice"] {
            assert_eq!(app.new_client().sign_in(odd, &password).await.status().as_u16(), 401, "{odd}");
        }
        assert!(audited(&app, "sign_in_failed").await.iter().all(|(_, d)| d.contains("spaces around")), "refused before any lookup");

        // Three wrong passwords, each spelt differently: the account is locked for all.
        for spelling in ["alice", "ALICE@Example.Test", "EXAMPLE\\alice"] {
            assert_eq!(app.new_client().sign_in(spelling, "wrong password").await.status().as_u16(), 401, "{spelling}");
        }
        for spelling in ["  Alice  ", "ａｌｉｃｅ", "alice@example.test"] {
            let res = app.new_client().sign_in(spelling, &password).await;
            assert_eq!(res.status().as_u16(), 429, "{spelling} is locked too");
        }
        assert_eq!(audited(&app, "sign_in_throttled").await.len(), 3);
        // Another account is not affected.
        assert_eq!(app.new_client().sign_in("bob", &password).await.status().as_u16(), 303);
        // The sign-in page says which forms of the name it accepts.
        let page = app.new_client().get_html("/login").await;
        assert!(page.contains("user@domain") && page.contains("DOMAIN\\user"), "{page}");
    }
}

crate::db_test! {
    async fn huge_names_are_refused_before_any_lookup_and_counters_expire(app) {
        let huge = "a".repeat(180_000);
        let res = app.sign_in(&huge, "some password").await;
        assert_eq!(res.status().as_u16(), 401);
        let exactly = "b".repeat(256);
        assert_eq!(app.new_client().sign_in(&exactly, "some password").await.status().as_u16(), 401);
        let longest_key = app.conn(|c| {
            sign_in_throttle::table.select(sign_in_throttle::throttle_key).load::<String>(c).expect("keys")
        }).await.into_iter().map(|k| k.len()).max().unwrap_or(0);
        assert!(longest_key < 300, "no huge key stored: {longest_key}");
        let stored = audited(&app, "sign_in_failed").await;
        assert!(stored.iter().all(|(t, _)| t.chars().count() <= 256), "audit keeps no huge name");
        assert!(stored[0].0.chars().count() <= 65, "a refused name is cut short");
        assert!(stored[0].1.contains("longer than 256 characters"), "{stored:?}");

        // Counters outlive their window only until the clean-up job runs.
        let now = roster::db::now();
        let window = 15 * 60;
        roster::jobs::session_cleanup::run_once(&app.db, now + window + 1, 3600, window).await.expect("clean up");
        let left = app.conn(|c| sign_in_throttle::table.count().get_result::<i64>(c).expect("count")).await;
        assert_eq!(left, 0);
    }
}

crate::db_test! {
    settings(|s| s.throttle_account_failures = 3);
    async fn re_entered_passwords_are_throttled_like_sign_in(app) {
        app.sign_in_as_admin().await;
        assert_eq!(app.create_user("ivy", "ivy's long password", &["log_on"]).await.status().as_u16(), 303);
        let ivy = app.new_client();
        assert_eq!(ivy.sign_in("ivy", "ivy's long password").await.status().as_u16(), 303);
        for _ in 0..3 {
            let res = ivy.post_form("/account", "/account/password", &[("current", "guess"), ("password", "another long password"), ("password_confirm", "another long password")]).await;
            assert_eq!(res.status().as_u16(), 422);
        }
        let res = ivy.post_form("/account", "/account/mfa", &[("current", "ivy's long password")]).await;
        assert_eq!(res.status().as_u16(), 429);
        assert!(res.text().await.expect("body").contains("Too many failed attempts"));
        assert_eq!(app.new_client().sign_in("ivy", "ivy's long password").await.status().as_u16(), 429, "the same account counter");
    }
}

crate::db_test! {
    async fn a_user_who_enrolled_on_their_own_is_asked_for_a_code(app) {
        app.sign_in_as_admin().await;
        assert_eq!(app.create_user("jo", "jo's long password", &["log_on"]).await.status().as_u16(), 303);
        let jo = app.new_client();
        assert_eq!(location(&jo.sign_in("jo", "jo's long password").await), "/account", "no MFA yet");
        let res = jo.post_form("/account", "/account/mfa", &[("current", "jo's long password")]).await;
        assert_eq!(res.status().as_u16(), 303);
        let page = jo.get_html("/mfa").await;
        let key = page.split("id=\"totp-secret\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("key").replace(' ', "");
        let secret = totp_rs::Secret::try_from_base32(&key).expect("base32").as_bytes().to_vec();
        let totp = roster::auth::totp::totp(&secret, "jo").expect("totp");
        crate::support::clear_of_totp_step_boundary(3).await;
        let token = csrf_token_in(&page);
        let code = totp.generate(roster::db::now() as u64).to_string();
        let res = jo.client.post(jo.url("/mfa")).form(&[("csrf_token", token.as_str()), ("code", code.as_str()), ("next", "")]).send().await.expect("POST");
        assert!(res.text().await.expect("body").contains("Save your recovery codes"));

        let again = app.new_client();
        let res = again.sign_in("jo", "jo's long password").await;
        assert_eq!(location(&res), "/mfa", "enrolled by choice: a code is asked for");
        assert_ne!(again.get("/account").await.status().as_u16(), 200);
    }
}

crate::db_test! {
    async fn local_passwords_match_in_any_unicode_normal_form(app) {
        app.sign_in_as_admin().await;
        let nfc = "Gr\u{00FC}\u{00DF}e aus K\u{00F6}ln";
        let nfd = "Gru\u{0308}\u{00DF}e aus Ko\u{0308}ln";
        assert_ne!(nfc, nfd);
        assert_eq!(app.create_user("kai", nfd, &["log_on"]).await.status().as_u16(), 303);
        assert_eq!(app.new_client().sign_in("kai", nfc).await.status().as_u16(), 303, "NFC matches a password set as NFD");
        assert_eq!(app.new_client().sign_in("kai", nfd).await.status().as_u16(), 303);
        assert_eq!(app.new_client().sign_in("kai", "Grusse aus Koln").await.status().as_u16(), 401);
    }
}

crate::db_test! {
    async fn mfa_pages_change_nothing_and_recovery_codes_are_keyed(app) {
        use roster::db::schema::{recovery_codes, secrets, users};
        app.sign_in_as_admin().await;
        assert_eq!(app.create_user("lu", "lu's long password", &["log_on"]).await.status().as_u16(), 303);
        app.conn(|c| diesel::update(users::table.filter(users::username.eq("lu"))).set(users::mfa_required.eq(true)).execute(c).expect("require")).await;
        let lu = app.new_client();
        assert_eq!(location(&lu.sign_in("lu", "lu's long password").await), "/mfa");
        let state = || app.conn(|c| {
            let seed = users::table.filter(users::username.eq("lu")).select(users::totp_secret_id).first::<Option<i64>>(c).expect("seed");
            (seed, secrets::table.count().get_result::<i64>(c).expect("count"))
        });
        let after_password = state().await;
        assert!(after_password.0.is_some(), "the seed is made at the password step");
        let page = lu.get_html("/mfa").await;
        assert_eq!(lu.get("/mfa/qr.png").await.status().as_u16(), 200);
        lu.get_html("/mfa").await;
        assert_eq!(state().await, after_password, "GET /mfa and the QR code change no state");

        let key = page.split("id=\"totp-secret\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("key").replace(' ', "");
        let secret = totp_rs::Secret::try_from_base32(&key).expect("base32").as_bytes().to_vec();
        let totp = roster::auth::totp::totp(&secret, "lu").expect("totp");
        crate::support::clear_of_totp_step_boundary(3).await;
        let code = totp.generate(roster::db::now() as u64).to_string();
        let res = lu.client.post(lu.url("/mfa")).form(&[("csrf_token", csrf_token_in(&page).as_str()), ("code", code.as_str()), ("next", "")]).send().await.expect("POST");
        let body = res.text().await.expect("body");
        let codes: Vec<String> = body.split("<li><code>").skip(1).filter_map(|r| r.split('<').next()).map(str::to_owned).collect();
        assert_eq!(codes.len(), 10);
        let stored: Vec<String> = app.conn(|c| recovery_codes::table.select(recovery_codes::code_hash).load(c).expect("hashes")).await;
        let plain = roster::auth::totp::legacy_recovery_hash(&codes[0]);
        assert!(stored.iter().all(|h| h.starts_with("k1:")) && !stored.contains(&plain), "keyed, not plain SHA-256");

        // A recovery code signs in once.
        let again = app.new_client();
        assert_eq!(location(&again.sign_in("lu", "lu's long password").await), "/mfa");
        let page = again.get_html("/mfa").await;
        let res = again.client.post(again.url("/mfa")).form(&[("csrf_token", csrf_token_in(&page).as_str()), ("code", codes[0].as_str()), ("next", "")]).send().await.expect("POST");
        assert_eq!(res.status().as_u16(), 303, "recovery code accepted");
    }
}

crate::db_test! {
    settings(|s| s.public_url = Some("https://roster.example.test".into()));
    async fn over_https_the_pre_session_cookie_has_the_host_prefix(app) {
        let res = app.get("/login").await;
        let cookies: Vec<String> = res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        assert!(cookies.iter().any(|c| c.starts_with("__Host-roster_presession=") && c.contains("Secure") && c.contains("Path=/")), "{cookies:?}");
        assert!(!cookies.iter().any(|c| c.starts_with("roster_presession=")), "{cookies:?}");
    }
}

crate::db_test! {
    async fn a_directory_that_stops_answering_refuses_sign_in_within_the_timeout(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let mut f = slapd_profile_of(&slapd, "Stalls");
        set(&mut f, "ignore_tls_errors", "on");
        set(&mut f, "mfa_by_default", "");
        let profile = create(&app, &f).await;
        sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("sync");
        let password = slapd.fact("USER_PASSWORD").to_owned();
        // The directory goes silent: it accepts connections and answers nothing.
        let stalling = crate::sync::CuttingProxy::stalling(&crate::directory::host_port(slapd.fact("LDAP_URL")), 0).await;
        set(&mut f, "server", &stalling.address);
        set(&mut f, "timeout_seconds", "2");
        let page = format!("/admin/profiles/{profile}");
        assert_eq!(crate::profile_pages::post(&app, &page, &page, &f, false).await.status().as_u16(), 303);
        let started = std::time::Instant::now();
        let res = app.new_client().sign_in("alice", &password).await;
        assert_eq!(res.status().as_u16(), 401, "fails closed");
        assert!(started.elapsed() < std::time::Duration::from_secs(8), "{:?}", started.elapsed());
        let (_, detail) = audited(&app, "sign_in_failed").await.pop().expect("audited");
        assert!(detail.contains("no answer from") && detail.contains("within 2 s"), "{detail}");
    }
}

crate::db_test! {
    settings(|s| s.throttle_account_failures = 3);
    async fn typed_names_never_share_a_counter_with_a_users_codes(app) {
        use roster::db::schema::users;
        app.sign_in_as_admin().await;
        assert_eq!(app.create_user("mo", "mo's long password", &["log_on"]).await.status().as_u16(), 303);
        let id = app.conn(|c| users::table.filter(users::username.eq("mo")).select(users::id).first::<i64>(c).expect("id")).await;
        // The MFA counter's key was once "mfa {id}", the same text as this typed name's.
        for typed in [format!("mfa {id}"), format!("mfa:{id}")] {
            for _ in 0..4 {
                app.new_client().sign_in(&typed, "whatever it is").await;
            }
        }
        let keys: Vec<String> = app.conn(|c| sign_in_throttle::table.select(sign_in_throttle::throttle_key).load(c).expect("keys")).await;
        assert!(!keys.contains(&format!("mfa:{id}")), "{keys:?}");
        assert!(keys.iter().all(|k| k.starts_with("name:") || k.starts_with("user:") || k.starts_with("address:")), "{keys:?}");
    }
}
