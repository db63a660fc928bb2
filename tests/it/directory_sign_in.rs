//! Signing in with directory credentials: synchronised users of a real slapd and a real Samba
//! AD DC bind at their directory; every accepted form of the name; failures answer alike.

use diesel::prelude::*;
use roster::db::ids::ProfileId;
use roster::db::schema::audit_events;
use roster::sync::{self, Trigger};

use crate::profile_pages::{common_fields, create, set, slapd_profile_of};
use crate::support::app::TestApp;
use crate::support::servers;
use crate::sync::context;

/// A sign-in in a fresh browser: the status, and where it went (303) or the message shown.
pub async fn status_and_body(app: &TestApp, login: &str, password: &str) -> (u16, String) {
    let client = app.new_client();
    let res = client.sign_in(login, password).await;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = res.text().await.unwrap_or_default();
    // The answer is the page's message (the page also echoes the typed name back).
    let message = body
        .split("role=\"alert\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_default()
        .to_owned();
    (status, if status == 303 { location } else { message })
}

/// The audited reason of the last refused sign-in.
pub async fn last_failure(app: &TestApp) -> String {
    app.conn(|c| {
        audit_events::table
            .filter(audit_events::action.eq("sign_in_failed"))
            .order(audit_events::id.desc())
            .select(audit_events::detail)
            .first::<String>(c)
            .expect("audited")
    })
    .await
}

crate::db_test! {
    async fn ldap_users_sign_in_by_every_name_form_and_failures_answer_alike(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let mut f = slapd_profile_of(&slapd, "Main");
        set(&mut f, "ignore_tls_errors", "on");
        set(&mut f, "mfa_by_default", "");
        let profile = create(&app, &f).await;
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("sync");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let password = slapd.fact("USER_PASSWORD").to_owned();

        for login in ["alice", "alice@example.test", "ALICE@Example.Test", "EXAMPLE\\alice"] {
            let (status, to) = status_and_body(&app, login, &password).await;
            assert_eq!((status, to.as_str()), (303, "/account"), "{login}");
        }
        let (_, refused) = status_and_body(&app, "alice", "wrong password").await;
        assert_eq!(refused, "The user name or password is incorrect.");
        assert!(last_failure(&app).await.starts_with("invalid credentials"), "the directory's reason is audited");
        for (login, pw) in [("alice", ""), ("alice", "   "), ("nobody", password.as_str()), ("*", password.as_str()), ("al*", password.as_str()), ("alice)(uid=*", password.as_str()), ("alice\\", password.as_str()), ("alice\0", password.as_str())] {
            let (status, body) = status_and_body(&app, login, pw).await;
            assert_eq!(status, 401, "{login:?}/{pw:?}");
            assert_eq!(body, refused, "same answer for {login:?}");
        }
        assert_eq!(last_failure(&app).await, "unknown user");

        // Disabled in Roster: refused alike (audit says why).
        app.conn(move |c| {
            use roster::db::schema::users;
            diesel::update(users::table.filter(users::username.eq("bob"))).set(users::disabled.eq(true)).execute(c).expect("disable");
        }).await;
        let (status, body) = status_and_body(&app, "bob", &password).await;
        assert_eq!((status, body), (401, refused.clone()));
        assert_eq!(last_failure(&app).await, "user is disabled");

        // A name in two domains must be said with its domain.
        let mut other = slapd_profile_of(&slapd, "Second");
        set(&mut other, "ignore_tls_errors", "on");
        set(&mut other, "domain", "second.test");
        let second = create(&app, &other).await;
        sync::run(&context(&app), second, Trigger::Cli, "test", false).await.expect("sync");
        let (status, body) = status_and_body(&app, "carol", &password).await;
        assert_eq!(status, 401);
        assert!(body.contains("exists in more than one domain"), "{body}");
        // Only a correct password learns that the name is in two domains.
        let (status, body) = status_and_body(&app, "carol", "not her password").await;
        assert_eq!((status, body.as_str()), (401, "The user name or password is incorrect."));
        let (status, _) = status_and_body(&app, "carol@second.test", &password).await;
        assert_eq!(status, 303);
    }
}

crate::db_test! {
    async fn active_directory_users_sign_in_and_disabled_accounts_do_not(app) {
        app.sign_in_as_admin().await;
        let samba = servers::samba();
        let mut f = common_fields("Corp");
        f.extend([
            ("kind", "active_directory".to_owned()),
            ("server", crate::directory::host_port(samba.fact("LDAP_URL"))),
            ("domain", samba.fact("UPN_SUFFIX").to_owned()),
            ("protocol", "starttls".to_owned()),
            ("ignore_tls_errors", "on".to_owned()),
            ("bind_dn", samba.fact("BIND_USER").to_owned()),
            ("bind_password", samba.fact("BIND_PASSWORD").to_owned()),
            ("base_dn", samba.fact("BASE_DN").to_owned()),
            ("timeout_seconds", "10".to_owned()),
        ]);
        set(&mut f, "mfa_by_default", "");
        // Only the seeded people (other tests add users to their own OUs meanwhile).
        let profile = create(&app, &f).await;
        app.conn(move |c| {
            use roster::db::schema::directory_profiles;
            let settings: String = directory_profiles::table.find(profile).select(directory_profiles::settings).first(c).expect("settings");
            let mut json: serde_json::Value = serde_json::from_str(&settings).expect("json");
            json["user_filter"] = "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName=alice)(sAMAccountName=bob)(sAMAccountName=dave)))".into();
            diesel::update(directory_profiles::table.find(profile)).set(directory_profiles::settings.eq(json.to_string())).execute(c).expect("filter");
        }).await;
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("sync");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let password = samba.fact("USER_PASSWORD").to_owned();
        let upn = format!("alice@{}", samba.fact("UPN_SUFFIX"));
        for login in ["alice", upn.as_str(), "CORP\\alice"] {
            let (status, to) = status_and_body(&app, login, &password).await;
            assert_eq!((status, to.as_str()), (303, "/account"), "{login}");
        }
        let (status, refused) = status_and_body(&app, "alice", "Wrong.Password-1").await;
        assert_eq!(status, 401);
        assert_eq!(last_failure(&app).await, "wrong password", "AD sub-code 52e in the audit log");
        let (status, body) = status_and_body(&app, "dave", &password).await;
        assert_eq!((status, body), (401, refused));
        assert_eq!(last_failure(&app).await, "disabled in the directory");
    }
}

crate::db_test! {
    async fn admin_switches_a_local_user_to_directory_sign_in_and_back(app) {
        use roster::db::schema::users;
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let mut f = slapd_profile_of(&slapd, "Main");
        set(&mut f, "ignore_tls_errors", "on");
        set(&mut f, "mfa_by_default", "");
        let profile = create(&app, &f).await;
        let password = slapd.fact("USER_PASSWORD").to_owned();
        let res = app.post_form("/admin/users/new", "/admin/users", &[
            ("username", "alice"), ("full_name", "Local Alice"), ("emails", ""),
            ("password", "the local password"), ("password_confirm", "the local password"),
            ("privilege", "log_on"),
        ]).await;
        assert_eq!(res.status().as_u16(), 303);
        let page = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("user page").to_owned();
        let id: i64 = page.rsplit('/').next().and_then(|i| i.parse().ok()).expect("id");
        let switch = |fields: Vec<(&'static str, String)>| {
            let (app, page) = (&app, page.clone());
            async move { crate::profile_pages::post(app, &page, &format!("{page}/authentication"), &fields, false).await }
        };

        // A profile whose directory has no such user: refused, naming the field; nothing changes.
        let nobody = app.post_form("/admin/users/new", "/admin/users", &[
            ("username", "zed"), ("full_name", ""), ("emails", ""),
            ("password", "the local password"), ("password_confirm", "the local password"),
        ]).await;
        let zed_page = nobody.headers().get("location").and_then(|v| v.to_str().ok()).expect("zed").to_owned();
        let res = crate::profile_pages::post(&app, &zed_page, &format!("{zed_page}/authentication"), &vec![("profile", profile.to_string())], false).await;
        assert_eq!(res.status().as_u16(), 422);
        let body = res.text().await.expect("body");
        assert!(body.contains("Profile: the directory of Main has no user named zed."), "{body}");
        let res = switch(vec![("profile", "x".into())]).await;
        assert_eq!(res.status().as_u16(), 422);

        // Local → directory: the same row, now at the profile; the directory's password works,
        // the old local one does not.
        let res = switch(vec![("profile", profile.to_string())]).await;
        assert_eq!(res.status().as_u16(), 303);
        let (method, profile_id, domain): (String, Option<ProfileId>, String) = app.conn(move |c| users::table.find(id).select((users::auth_method, users::profile_id, users::domain)).first(c).expect("user")).await;
        assert_eq!((method.as_str(), profile_id), ("directory", Some(profile)));
        assert_eq!(domain, "example.test");
        assert_eq!(status_and_body(&app, "alice", &password).await, (303, "/account".into()));
        assert_eq!(status_and_body(&app, "alice", "the local password").await.0, 401);
        // The next sync owns the row: no second alice, the name and e-mail from the directory.
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("sync");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let alices: Vec<i64> = app.conn(|c| users::table.filter(users::username.eq("alice")).select(users::id).load(c).expect("users")).await;
        assert_eq!(alices, [id]);

        // Directory → local: a weak password is refused by field; then the new password works.
        let res = switch(vec![("password", "short".into()), ("password_confirm", "short".into())]).await;
        assert_eq!(res.status().as_u16(), 422);
        assert!(res.text().await.expect("body").contains("New password: Password"), "field named");
        let res = switch(vec![("password", "a new local password".into()), ("password_confirm", "a new local password".into())]).await;
        assert_eq!(res.status().as_u16(), 303);
        assert_eq!(status_and_body(&app, "alice@example.test", "a new local password").await, (303, "/account".into()));
        assert_eq!(status_and_body(&app, "alice@example.test", &password).await.0, 401);
        // Syncs no longer touch it: the name is taken, the directory's alice is left out.
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("sync");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        let (method, profile_id): (String, Option<i64>) = app.conn(move |c| users::table.find(id).select((users::auth_method, users::profile_id)).first(c).expect("user")).await;
        assert_eq!((method.as_str(), profile_id), ("local", None));
        let switched: i64 = app.conn(|c| audit_events::table.filter(audit_events::action.eq("user_authentication_switched")).count().get_result(c).expect("audit")).await;
        assert_eq!(switched, 2);
    }
}

crate::db_test! {
    async fn active_directory_users_sign_in_with_their_upn_after_a_rename(app) {
        app.sign_in_as_admin().await;
        let samba = servers::samba();
        let (mut dir, ou) = crate::sync::samba_ou("upn").await;
        let tag: String = ou[7..].chars().filter(char::is_ascii_alphanumeric).take(5).collect::<String>().to_lowercase();
        let (first, renamed) = (format!("carla{tag}"), format!("cgray{tag}"));
        let password = samba.fact("USER_PASSWORD").to_owned();
        let upn = format!("{first}@{}", samba.fact("UPN_SUFFIX"));
        // A user with a password needs LDAPS (AD sets unicodePwd only over TLS); then
        // renamed: a new sAMAccountName, the userPrincipalName kept.
        let (conn, mut ldaps) = ldap3::LdapConnAsync::with_settings(ldap3::LdapConnSettings::new().set_no_tls_verify(true), samba.fact("LDAPS_URL")).await.expect("ldaps");
        ldap3::drive!(conn);
        ldaps.simple_bind(samba.fact("ADMIN_USER"), samba.fact("ADMIN_PASSWORD")).await.expect("bind").success().expect("admin");
        let quoted: Vec<u8> = format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect();
        let value = |v: &str| std::collections::HashSet::from([v.as_bytes().to_vec()]);
        let attrs: Vec<(Vec<u8>, std::collections::HashSet<Vec<u8>>)> = vec![
            (b"objectClass".to_vec(), value("user")),
            (b"sAMAccountName".to_vec(), value(&first)),
            (b"userPrincipalName".to_vec(), value(&upn)),
            (b"unicodePwd".to_vec(), std::collections::HashSet::from([quoted])),
            (b"userAccountControl".to_vec(), value("512")),
        ];
        let dn = format!("CN={first},{ou}");
        ldaps.add(&dn, attrs).await.expect("add").success().expect("user with a password");
        dir.modify_dn(&dn, vec![ldap3::Mod::Replace("sAMAccountName", std::collections::HashSet::from([renamed.as_str()]))]).await;

        let mut f = crate::profile_pages::samba_profile_in("Corp UPN", &ou);
        set(&mut f, "ignore_tls_errors", "on");
        set(&mut f, "mfa_by_default", "");
        let profile = create(&app, &f).await;
        let run = sync::run(&context(&app), profile, Trigger::Cli, "test", false).await.expect("sync");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        for login in [upn.to_uppercase(), renamed.clone(), format!("{renamed}@{}", samba.fact("UPN_SUFFIX")), format!("CORP\\{renamed}")] {
            let (status, to) = status_and_body(&app, &login, &password).await;
            assert_eq!((status, to.as_str()), (303, "/account"), "{login}");
        }
        let (status, _) = status_and_body(&app, &first, &password).await;
        assert_eq!(status, 401, "the old sAMAccountName alone is not a name any more");
    }
}
