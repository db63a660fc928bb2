//! Directory profiles under attack and misconfiguration (the trust issue): a stored bind
//! password never goes to a host just typed, self-signed directory certificates trusted by
//! upload or pin, TLS and connection errors in words, oversize uploads as field errors.

use diesel::prelude::*;
use roster::db::schema::audit_events;

use crate::profile_pages::{Fields, create, post, set, slapd_profile_of};
use crate::support::app::TestApp;
use crate::support::servers::{self, ExternalServer};

fn host_port(url: &str) -> String {
    crate::directory::host_port(url)
}

/// A profile form for the slapd over LDAPS, trusting nothing special.
fn ldaps_fields(slapd: &ExternalServer, name: &str) -> Fields {
    let mut f = slapd_profile_of(slapd, name);
    set(&mut f, "protocol", "ldaps");
    set(&mut f, "server", &host_port(slapd.fact("LDAPS_URL")));
    f
}

async fn test_connection(app: &TestApp, path: &str, fields: &Fields) -> String {
    post(
        app,
        "/admin/profiles/new?kind=generic_ldap",
        path,
        fields,
        true,
    )
    .await
    .text()
    .await
    .expect("body")
}

/// A port that records whether anything connected to it.
async fn listener() -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let touched = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = touched.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (address, touched)
}

crate::db_test! {
    settings(crate::profile_pages::trust_directories);
    async fn a_stored_bind_password_only_goes_to_the_server_it_was_stored_for(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::slapd();
        let f = slapd_profile_of(slapd, "Stored secret");
        let profile = create(&app, &f).await;
        let page = format!("/admin/profiles/{profile}");
        let mut blank = f.clone();
        set(&mut blank, "bind_password", "");

        // Unchanged endpoint: a blank field means the stored password.
        let html = test_connection(&app, &format!("{page}/test-connection"), &blank).await;
        assert!(html.contains("Connection succeeded"), "{html}");

        // Another host, port, protocol, TLS option or bind DN: the password must be typed.
        let (elsewhere, touched) = listener().await;
        let changes: [(&'static str, &str); 4] = [("server", &elsewhere), ("protocol", "ldaps"), ("ignore_tls_errors", "on"), ("bind_dn", "cn=admin,dc=example,dc=test")];
        for (field, value) in changes {
            let mut moved = blank.clone();
            set(&mut moved, field, value);
            for probe in ["test-connection", "groups"] {
                let html = test_connection(&app, &format!("{page}/{probe}"), &moved).await;
                assert!(html.contains("The server changed: enter the bind password again."), "{field} {probe}: {html}");
            }
            let res = post(&app, &page, &page, &moved, false).await;
            assert_eq!(res.status().as_u16(), 422, "{field}: saving needs the password");
            assert!(res.text().await.expect("body").contains("The server changed: enter the bind password again."));
        }
        assert!(!touched.load(std::sync::atomic::Ordering::SeqCst), "nothing connected to the new host");

        // Typed again, it is used and saved.
        let mut moved = f.clone();
        set(&mut moved, "server", &elsewhere);
        let res = post(&app, &page, &page, &moved, false).await;
        assert_eq!(res.status().as_u16(), 303);

        // Every Test connection is audited.
        let tested = app.conn(|c| audit_events::table.filter(audit_events::action.eq("profile_connection_tested")).count().get_result::<i64>(c).expect("count")).await;
        assert_eq!(tested, 5);
    }
}

crate::db_test! {
    async fn a_self_signed_directory_certificate_is_trusted_by_upload_and_pin(app) {
        app.sign_in_as_admin().await;
        let selfsigned = servers::private_with("slapd", &[("ROSTER_SLAPD_SELF_SIGNED", "1")]);
        let path = "/admin/profiles/test-connection";
        let f = ldaps_fields(&selfsigned, "Self-signed");

        // Without it: refused, and said in words.
        let html = test_connection(&app, path, &f).await;
        assert!(html.contains("Connection failed") && html.contains("presents a CA certificate (CA:TRUE) as its own") && html.contains("trusted certificate"), "{html}");
        assert!(!html.contains("CaUsedAsEndEntity") && !html.contains("OtherError"), "no debug strings: {html}");

        // The server's own certificate uploaded: pinned, and it connects.
        let cert = std::fs::read_to_string(selfsigned.fact("SERVER_CERT")).expect("cert");
        let mut pinned = f.clone();
        set(&mut pinned, "trusted_certificate_pem", &cert);
        let html = test_connection(&app, path, &pinned).await;
        assert!(html.contains("Connection succeeded"), "{html}");
        let profile = create(&app, &pinned).await;
        let run = roster::sync::run(&crate::sync::context(&app), profile, roster::sync::Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);

        // A CA uploaded instead (the shared slapd's CA signs its leaf): verified as a chain.
        let shared = servers::slapd();
        let mut by_ca = ldaps_fields(shared, "By CA");
        let html = test_connection(&app, path, &by_ca).await;
        assert!(html.contains("not signed by a CA Roster trusts"), "no tls_ca_file here: {html}");
        set(&mut by_ca, "trusted_certificate_pem", &std::fs::read_to_string(shared.fact("CA_CERT")).expect("ca"));
        let html = test_connection(&app, path, &by_ca).await;
        assert!(html.contains("Connection succeeded"), "{html}");

        // Another server's certificate does not vouch for this one.
        let mut wrong = f.clone();
        set(&mut wrong, "trusted_certificate_pem", &std::fs::read_to_string(shared.fact("CA_CERT")).expect("ca"));
        let html = test_connection(&app, path, &wrong).await;
        assert!(html.contains("Connection failed"), "{html}");

        // Not a certificate: a field error, nothing saved.
        let mut garbage = f.clone();
        set(&mut garbage, "trusted_certificate_pem", "hello");
        let res = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles", &garbage, false).await;
        assert_eq!(res.status().as_u16(), 422);
        assert!(res.text().await.expect("body").contains("Trusted certificate (PEM) holds no PEM certificate"));
    }
}

crate::db_test! {
    async fn protocol_and_port_mismatches_and_lost_connections_are_explained(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::slapd();
        let path = "/admin/profiles/test-connection";
        // LDAPS spoken to the plain LDAP port.
        let mut f = slapd_profile_of(slapd, "Mismatch");
        set(&mut f, "protocol", "ldaps");
        set(&mut f, "ignore_tls_errors", "on");
        let html = test_connection(&app, path, &f).await;
        assert!(html.contains("is this a plain LDAP port? LDAPS usually listens on port 636"), "{html}");
        // StartTLS spoken to the LDAPS port.
        let mut f = slapd_profile_of(slapd, "Mismatch");
        set(&mut f, "server", &host_port(slapd.fact("LDAPS_URL")));
        set(&mut f, "ignore_tls_errors", "on");
        let html = test_connection(&app, path, &f).await;
        assert!(html.contains("Connection failed") && html.contains("LDAPS"), "{html}");
        assert!(!html.contains("channel closed"), "{html}");
    }
}

crate::db_test! {
    async fn oversize_uploads_get_a_field_error_plain_and_htmx(app) {
        app.sign_in_as_admin().await;
        let mut f = slapd_profile_of(servers::slapd(), "Big upload");
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", "A".repeat(2 * 1024 * 1024));
        set(&mut f, "trusted_certificate_pem", &pem);
        for htmx in [false, true] {
            let res = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles", &f, htmx).await;
            assert_eq!(res.status().as_u16(), 422, "htmx {htmx}");
            let body = res.text().await.expect("body");
            assert!(body.contains("Trusted certificate (PEM) is larger than 256 KiB."), "htmx {htmx}: {}", &body[..body.len().min(2000)]);
            assert!(body.len() < 200_000, "the upload is not echoed back");
        }
        let count = app.conn(|c| roster::db::models::directory_profiles::count(c).expect("count")).await;
        assert_eq!(count, 0, "nothing saved");
    }
}

// The trusted certificate of an IceWarp or Application Integration profile is kept (it was
// dropped without a word), and changing it counts as a new endpoint for the password.
crate::db_test! {
    async fn http_kinds_keep_their_trusted_certificate(app) {
        app.sign_in_as_admin().await;
        let pem = roster::profiles::certificate::generate("mail.example.com").expect("cert").certificate_pem;
        let line = pem.lines().nth(1).expect("base64").to_owned();
        for (mut f, kind) in [(crate::profile_pages::icewarp("IceWarp"), "icewarp"), (crate::profile_pages::app_integration("App"), "application_integration")] {
            set(&mut f, "trusted_certificate_pem", &pem);
            let id = create(&app, &f).await;
            let edit = app.get_html(&format!("/admin/profiles/{id}")).await;
            assert!(edit.contains(&line), "{kind}: the certificate is shown again");
            // Another certificate with the password left blank: it must be typed again.
            let other = roster::profiles::certificate::generate("other.example.com").expect("cert").certificate_pem;
            set(&mut f, "trusted_certificate_pem", &other);
            set(&mut f, "password", "");
            let page = format!("/admin/profiles/{id}");
            let res = post(&app, &page, &page, &f, false).await;
            assert_eq!(res.status().as_u16(), 422, "{kind}");
            assert!(res.text().await.expect("body").contains("enter the password again"), "{kind}");
        }
    }
}
