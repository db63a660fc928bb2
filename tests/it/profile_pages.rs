//! The directory-profile pages over HTTP: create and edit for every type, validation that
//! names the field, secrets that never come back, test connection and the group picker
//! against real slapd and Samba, dependent configurations, delete, the list.

use diesel::prelude::*;
use roster::db::ids::ProfileId;
use roster::db::models::directory_profiles::{self as profiles, ProfileKind};
use roster::db::schema::{audit_events, dependent_configurations, secrets, users};
use roster::profiles::KindSettings;
use roster::profiles::certificate;
use roster::profiles::google_key;
use secrecy::ExposeSecret;

use crate::support::app::{TestApp, csrf_token_in};
use crate::support::servers;

/// The CA certificates of the test directories, as one `tls_ca_file`.
pub fn directory_ca_bundle() -> std::path::PathBuf {
    static BUNDLE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let mut pem =
                std::fs::read_to_string(servers::slapd().fact("CA_CERT")).expect("slapd CA");
            pem.push_str(
                &std::fs::read_to_string(servers::samba().fact("CA_CERT")).expect("samba CA"),
            );
            let path = servers::target_dir().join("directory-ca-bundle.pem");
            std::fs::write(&path, pem).expect("write CA bundle");
            path
        })
        .clone()
}

pub fn trust_directories(s: &mut roster::config::Settings) {
    s.tls_ca_file = Some(directory_ca_bundle());
}

fn host_port(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_owned()
}

pub type Fields = Vec<(&'static str, String)>;

pub fn common_fields(name: &str) -> Fields {
    common(name)
}

fn common(name: &str) -> Fields {
    vec![
        ("name", name.into()),
        ("mfa_by_default", "on".into()),
        ("delete_threshold_count", "500".into()),
        ("delete_threshold_percent", "20".into()),
        ("privilege", "log_on".into()),
        ("privilege", "read_own_archive".into()),
    ]
}

/// A generic LDAP profile for the test slapd.
pub fn slapd_profile(name: &str) -> Fields {
    slapd_profile_of(servers::slapd(), name)
}

pub fn slapd_profile_of(slapd: &servers::ExternalServer, name: &str) -> Fields {
    let mut f = common(name);
    f.extend([
        ("kind", "generic_ldap".into()),
        ("server", host_port(slapd.fact("LDAP_URL"))),
        ("domain", "example.test".into()),
        ("protocol", "starttls".into()),
        ("bind_dn", slapd.fact("BIND_DN").into()),
        ("bind_password", slapd.fact("BIND_PASSWORD").into()),
        ("base_dn", slapd.fact("BASE_DN").into()),
        ("timeout_seconds", "5".into()),
        ("user_filter", "(objectClass=inetOrgPerson)".into()),
        ("username_attribute", "uid".into()),
        ("full_name_attribute", "cn".into()),
        ("email_attribute", "mail".into()),
        ("group_filter", "(objectClass=groupOfNames)".into()),
        ("group_name_attribute", "cn".into()),
        ("group_description_attribute", "description".into()),
        ("group_members_attribute", "member".into()),
    ]);
    f
}

fn samba_profile(name: &str) -> Fields {
    samba_profile_in(name, servers::samba().fact("BASE_DN"))
}

/// An Active Directory profile for the shared Samba DC, reading `base_dn`.
pub fn samba_profile_in(name: &str, base_dn: &str) -> Fields {
    let samba = servers::samba();
    let mut f = common(name);
    f.extend([
        ("kind", "active_directory".into()),
        ("server", host_port(samba.fact("LDAP_URL"))),
        ("domain", samba.fact("UPN_SUFFIX").into()),
        ("protocol", "starttls".into()),
        ("bind_dn", samba.fact("BIND_USER").into()),
        ("bind_password", samba.fact("BIND_PASSWORD").into()),
        ("base_dn", base_dn.into()),
        ("timeout_seconds", "10".into()),
    ]);
    f
}

pub fn set(fields: &mut Fields, name: &'static str, value: &str) {
    fields.retain(|(k, _)| *k != name);
    fields.push((name, value.into()));
}

fn without(fields: &mut Fields, name: &str) {
    fields.retain(|(k, _)| *k != name);
}

/// Posts the form fields with a CSRF token from `token_page`; `htmx` adds `HX-Request`.
pub async fn post(
    app: &TestApp,
    token_page: &str,
    path: &str,
    fields: &Fields,
    htmx: bool,
) -> reqwest::Response {
    let token = csrf_token_in(&app.get_html(token_page).await);
    let mut body: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
    body.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
    let mut req = app.client.post(app.url(path)).form(&body);
    if htmx {
        req = req.header("HX-Request", "true");
    }
    req.send().await.expect("POST")
}

pub async fn create(app: &TestApp, fields: &Fields) -> ProfileId {
    let res = post(
        app,
        "/admin/profiles/new?kind=generic_ldap",
        "/admin/profiles",
        fields,
        false,
    )
    .await;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, 303, "create should redirect: {body}");
    location
        .and_then(|l| l.rsplit('/').next().and_then(|id| id.parse().ok()))
        .expect("redirect to the profile")
}

async fn profile_count(app: &TestApp) -> i64 {
    app.conn(|c| profiles::count(c).expect("count")).await
}

crate::db_test! {
    settings(trust_directories);
    async fn ldap_profile_test_connection_groups_create_and_edit_against_slapd(app) {
        app.sign_in_as_admin().await;
        let form = app.get_html("/admin/profiles/new?kind=generic_ldap").await;
        for label in ["Server", "Bind DN", "Base DN", "User filter", "Group-members search filter", "Deletion threshold (users)"] {
            assert!(form.contains(&format!(">{label}")), "form has the label {label}");
        }
        assert!(form.contains("value=\"(objectClass=inetOrgPerson)\""), "generic LDAP defaults");
        assert!(form.contains("value=\"member\""));
        assert!(form.contains(">Unique id attribute") && form.contains("value=\"entryUUID\""));

        // Test connection before saving: a real round trip.
        let fields = slapd_profile("Main LDAP");
        let res = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/test-connection", &fields, true).await;
        let html = res.text().await.expect("body");
        assert!(html.contains("Connection succeeded"), "{html}");
        assert!(html.contains("<dt>Users matching the filter</dt><dd>3</dd>"), "{html}");
        assert!(html.contains("<dt>Groups matching the filter</dt><dd>2</dd>"), "{html}");

        let mut wrong = fields.clone();
        set(&mut wrong, "bind_password", "not the password");
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/test-connection", &wrong, true).await.text().await.expect("body");
        assert!(html.contains("Connection failed") && html.contains("refused the credentials"), "{html}");

        let mut unknown = fields.clone();
        set(&mut unknown, "server", "no-such-host.invalid");
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/test-connection", &unknown, true).await.text().await.expect("body");
        assert!(html.contains("no-such-host.invalid") && html.contains("is unknown"), "{html}");

        let mut base = fields.clone();
        set(&mut base, "base_dn", "ou=nowhere,dc=example,dc=test");
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/test-connection", &base, true).await.text().await.expect("body");
        assert!(html.contains("does not exist"), "{html}");

        let mut incomplete = fields.clone();
        set(&mut incomplete, "server", "");
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/test-connection", &incomplete, true).await.text().await.expect("body");
        assert!(html.contains("Fill in the mandatory fields first") && html.contains("Server is required."), "{html}");

        // The group picker asks the directory; chosen groups come back ticked.
        let mut picking = fields.clone();
        set(&mut picking, "groups_to_sync", "staff");
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/groups", &picking, true).await.text().await.expect("body");
        assert!(html.contains("value=\"admins\" data-group-pick>"), "{html}");
        assert!(html.contains("value=\"staff\" data-group-pick checked>"), "{html}");
        set(&mut picking, "group_search", "adm");
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/groups", &picking, true).await.text().await.expect("body");
        assert!(html.contains("admins") && !html.contains("value=\"staff\""), "search narrows: {html}");

        // Plain form post (no htmx): the form again with the result above it.
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/test-connection", &fields, false).await.text().await.expect("body");
        assert!(html.contains("Connection succeeded") && html.contains("<form method=\"post\""), "{html}");

        // Save: the password is sealed, not in the settings.
        let mut saving = fields.clone();
        set(&mut saving, "groups_to_sync", "staff,  admins, STAFF");
        let id = create(&app, &saving).await;
        let (row, sealed) = app.conn(move |c| {
            let row = profiles::find(c, id).expect("find").expect("saved");
            let sealed: Vec<String> = secrets::table.select(secrets::sealed).load(c).expect("secrets");
            (row, sealed)
        }).await;
        assert_eq!(row.groups_to_sync, "staff, admins");
        assert_eq!((row.domain.as_str(), row.mfa_by_default, row.default_privileges.as_str()), ("example.test", true, "log_on,read_own_archive"));
        let password = servers::slapd().fact("BIND_PASSWORD");
        assert!(!row.settings.contains(password));
        assert_eq!(sealed.len(), 1);
        assert!(!sealed[0].contains(password));
        let KindSettings::Ldap(_, stored) = KindSettings::of(&row).expect("settings") else { panic!("LDAP settings") };
        let secret_id = stored.bind_password_secret.expect("secret id");
        let revealed = app.conn({
            let key = app.master_key.clone();
            move |c| roster::secrets::reveal(c, &key, secret_id).expect("reveal")
        }).await;
        assert_eq!(revealed.expose_secret(), password);

        // Edit: the password field is blank and a blank password keeps the stored one.
        let page = format!("/admin/profiles/{id}");
        let edit = app.get_html(&page).await;
        assert!(edit.contains("value=\"Main LDAP\""));
        assert!(edit.contains("id=\"bind_password\" name=\"bind_password\" type=\"password\" autocomplete=\"new-password\" value=\"\""), "{edit}");
        assert!(!edit.contains(password));
        let mut kept = saving.clone();
        set(&mut kept, "bind_password", "");
        let html = post(&app, &page, &format!("{page}/test-connection"), &kept, true).await.text().await.expect("body");
        assert!(html.contains("Connection succeeded"), "stored password used: {html}");
        set(&mut kept, "name", "Renamed LDAP");
        set(&mut kept, "kind", "entra_id");
        let res = post(&app, &page, &page, &kept, false).await;
        assert_eq!(res.status().as_u16(), 303);
        let row = app.conn(move |c| profiles::find(c, id).expect("find").expect("row")).await;
        assert_eq!((row.name.as_str(), row.kind()), ("Renamed LDAP", Some(ProfileKind::GenericLdap)), "the type never changes");
        let KindSettings::Ldap(_, after) = KindSettings::of(&row).expect("settings") else { panic!("LDAP settings") };
        assert_eq!(after.bind_password_secret, Some(secret_id), "blank = unchanged");

        // A new password replaces the sealed one in place, and is audited.
        set(&mut kept, "bind_password", "a new bind password");
        assert_eq!(post(&app, &page, &page, &kept, false).await.status().as_u16(), 303);
        let (actions, revealed) = app.conn({
            let key = app.master_key.clone();
            move |c| {
                let actions: Vec<String> = audit_events::table.order(audit_events::id).select(audit_events::action).load(c).expect("audit");
                (actions, roster::secrets::reveal(c, &key, secret_id).expect("reveal"))
            }
        }).await;
        assert_eq!(revealed.expose_secret(), "a new bind password");
        for action in ["profile_created", "profile_updated", "profile_secret_changed"] {
            assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
        }
        assert_eq!(actions.iter().filter(|a| *a == "profile_secret_changed").count(), 2, "created + changed: {actions:?}");

        // The name stays unique (case-insensitive).
        let mut dup = slapd_profile("renamed ldap");
        set(&mut dup, "domain", "example.test");
        let res = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles", &dup, false).await;
        assert_eq!(res.status().as_u16(), 422);
        assert!(res.text().await.expect("body").contains("Name is already used by another profile."));
        assert_eq!(profile_count(&app).await, 1);
    }
}

crate::db_test! {
    settings(trust_directories);
    async fn ad_profile_against_samba_reports_the_sub_code(app) {
        app.sign_in_as_admin().await;
        let form = app.get_html("/admin/profiles/new?kind=active_directory").await;
        assert!(form.contains(">Bind user") && !form.contains(">User filter"), "AD shows no attribute settings");
        let fields = samba_profile("Corp AD");
        let html = post(&app, "/admin/profiles/new?kind=active_directory", "/admin/profiles/test-connection", &fields, true).await.text().await.expect("body");
        assert!(html.contains("Connection succeeded"), "{html}");
        let mut wrong = fields.clone();
        set(&mut wrong, "bind_password", "wrong password");
        let html = post(&app, "/admin/profiles/new?kind=active_directory", "/admin/profiles/test-connection", &wrong, true).await.text().await.expect("body");
        assert!(html.contains("sub-code 52e: wrong password"), "{html}");
        let html = post(&app, "/admin/profiles/new?kind=active_directory", "/admin/profiles/groups", &fields, true).await.text().await.expect("body");
        assert!(html.contains("value=\"staff\""), "{html}");
        let id = create(&app, &fields).await;
        let row = app.conn(move |c| profiles::find(c, id).expect("find").expect("row")).await;
        let KindSettings::Ldap(_, s) = KindSettings::of(&row).expect("settings") else { panic!("LDAP") };
        assert_eq!((s.username_attribute.as_str(), s.user_filter.as_str()), ("sAMAccountName", "(&(objectCategory=person)(objectClass=user))"));
    }
}

crate::db_test! {
    async fn untrusted_certificate_fails_unless_tls_errors_are_ignored(app) {
        // This application does not trust the test CA: the self-signed chain is refused.
        app.sign_in_as_admin().await;
        let fields = slapd_profile("Self-signed");
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/test-connection", &fields, true).await.text().await.expect("body");
        assert!(html.contains("TLS failure"), "{html}");
        let mut ignoring = fields.clone();
        set(&mut ignoring, "ignore_tls_errors", "on");
        let html = post(&app, "/admin/profiles/new?kind=generic_ldap", "/admin/profiles/test-connection", &ignoring, true).await.text().await.expect("body");
        assert!(html.contains("Connection succeeded"), "{html}");
    }
}

/// Posts a new profile that must be refused; returns the page.
async fn refused(app: &TestApp, fields: &Fields) -> String {
    let res = post(
        app,
        "/admin/profiles/new?kind=generic_ldap",
        "/admin/profiles",
        fields,
        false,
    )
    .await;
    assert_eq!(res.status().as_u16(), 422);
    let html = res.text().await.expect("body");
    assert!(html.contains("Nothing was saved:"), "{html}");
    html
}

fn entra(name: &str) -> Fields {
    let mut f = common(name);
    f.extend([
        ("kind", "entra_id".into()),
        ("client_id", "0d7c2a4e-1b2c-4d5e-8f90-123456789abc".into()),
        ("tenant_id", "72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
        ("enabled_users_only", "on".into()),
        ("certificate_mode", "generate".into()),
    ]);
    f
}

fn test_rsa_key() -> (String, String) {
    let credential = certificate::generate("Imported for tests").expect("generate");
    (
        credential.certificate_pem,
        credential.private_key_pem.expose_secret().to_owned(),
    )
}

fn google_key_json(private_key: &str, extra: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "roster-test",
        "private_key_id": "abc123",
        "private_key": private_key,
        "client_email": "roster@roster-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
        "canary": extra,
    })
    .to_string()
}

fn google(name: &str, key_json: &str) -> Fields {
    let mut f = common(name);
    f.extend([
        ("kind", "google_workspace".into()),
        ("domain", "example.com".into()),
        ("admin_user", "admin@example.com".into()),
        ("service_account_key", key_json.into()),
        (
            "oidc_client_id",
            "123-abc.apps.googleusercontent.com".into(),
        ),
        ("oidc_client_secret", "GOCSPX-client-secret".into()),
    ]);
    f
}

pub fn app_integration(name: &str) -> Fields {
    let mut f = common(name);
    f.extend([
        ("kind", "application_integration".into()),
        ("url", "https://users.example.com/api".into()),
        ("requires_auth", "on".into()),
        ("username", "roster".into()),
        ("password", "app password".into()),
    ]);
    f
}

pub fn icewarp(name: &str) -> Fields {
    let mut f = common(name);
    f.extend([
        ("kind", "icewarp".into()),
        ("server", "mail.example.com".into()),
        ("admin_user", "admin@example.com".into()),
        ("password", "icewarp password".into()),
        ("timeout_seconds", "30".into()),
    ]);
    f
}

crate::db_test! {
    async fn every_type_validates_each_field_and_saves_nothing_until_valid(app) {
        app.sign_in_as_admin().await;
        let (cert, key) = test_rsa_key();
        let (_, other_key) = test_rsa_key();

        // Common fields.
        let mut f = slapd_profile("");
        set(&mut f, "delete_threshold_percent", "150");
        set(&mut f, "delete_threshold_count", "lots");
        let html = refused(&app, &f).await;
        assert!(html.contains("Name is required."));
        assert!(html.contains("Deletion threshold (percent) must be a whole number from 1 to 100."));
        assert!(html.contains("Deletion threshold (users) must be a whole number from 1 to 1000000."));

        // Generic LDAP.
        let mut f = slapd_profile("LDAP");
        set(&mut f, "server", "ldap://ldap.example.com");
        set(&mut f, "base_dn", "example.com");
        set(&mut f, "user_filter", "(objectClass=person");
        set(&mut f, "username_attribute", "user name");
        set(&mut f, "group_members_search_filter", "(uid=x)");
        set(&mut f, "timeout_seconds", "0");
        set(&mut f, "protocol", "telnet");
        without(&mut f, "bind_password");
        let html = refused(&app, &f).await;
        for message in [
            "Server must be a host name without a scheme",
            "Base DN must be a DN like dc=example,dc=com.",
            "User filter is not a valid LDAP filter",
            "User-name attribute must be an attribute name",
            "Group-members search filter must contain %s",
            "Timeout (seconds) must be a whole number from 1 to 300.",
            "Protocol must be LDAP with StartTLS or LDAPS.",
            "Bind password is required.",
        ] {
            assert!(html.contains(message), "{message}: {html}");
        }
        assert!(html.contains("value=\"ldap://ldap.example.com\""), "typed values are kept");

        // Active Directory.
        let mut f = samba_profile("AD");
        set(&mut f, "server", "dc1.corp.example.com:99999");
        set(&mut f, "domain", "not a domain");
        let html = refused(&app, &f).await;
        assert!(html.contains("Server has a port `99999` that is not a number from 1 to 65535."), "{html}");
        assert!(html.contains("Domain must be a domain name like example.com."));

        // Entra ID: GUIDs and certificates.
        let mut f = entra("Entra");
        set(&mut f, "client_id", "not-a-guid");
        set(&mut f, "certificate_mode", "import");
        set(&mut f, "certificate_import", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----");
        set(&mut f, "private_key_import", &key);
        let html = refused(&app, &f).await;
        assert!(html.contains("Application (client) ID must be a GUID"));
        assert!(html.contains("Certificate (PEM): the certificate cannot be read"), "{html}");
        let mut f = entra("Entra");
        set(&mut f, "certificate_mode", "import");
        set(&mut f, "certificate_import", "MIIB... no PEM header");
        set(&mut f, "private_key_import", &key);
        assert!(refused(&app, &f).await.contains("Certificate (PEM): the certificate is not a PEM certificate"));
        let mut f = entra("Entra");
        set(&mut f, "certificate_mode", "import");
        set(&mut f, "certificate_import", &cert);
        set(&mut f, "private_key_import", &other_key);
        assert!(refused(&app, &f).await.contains("Private key (PEM): the private key does not belong to the certificate."));
        set(&mut f, "private_key_import", "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----");
        let html = refused(&app, &f).await;
        assert!(html.contains("Private key (PEM): the private key is not a PEM RSA private key"));
        assert!(!html.contains("garbage"), "a typed private key is never sent back");

        // Google Workspace: the key file, field by field.
        let pem_key = key.clone();
        for (json, message) in [
            ("{not json".to_owned(), "Service-account key: the key file is not JSON"),
            (r#"{"type":"authorized_user"}"#.to_owned(), "is not a service-account key"),
            (google_key_json("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", ""), "&#34;private_key&#34; is not a PEM PKCS#8 RSA key"),
            (google_key_json(&pem_key, "").replace("roster@roster-test.iam.gserviceaccount.com", ""), "the key file has no &#34;client_email&#34;"),
        ] {
            let f = google("Google", &json);
            let html = refused(&app, &f).await;
            assert!(html.contains(message), "{message}: {html}");
        }
        let mut f = google("Google", &google_key_json(&pem_key, ""));
        set(&mut f, "admin_user", "admin");
        without(&mut f, "oidc_client_secret");
        let html = refused(&app, &f).await;
        assert!(html.contains("Admin user name must be an e-mail address"));
        assert!(html.contains("OpenID client secret is required."));

        // Application Integration: URLs and authentication.
        for (url, message) in [
            ("http://users.example.com/api", "URL must use https:// (http:// only to localhost)."),
            ("ftp://users.example.com", "URL must start with https://, not ftp://."),
            ("users.example.com", "URL is not a URL"),
            ("https://user:pw@users.example.com", "URL must not contain a user name or password"),
        ] {
            let mut f = app_integration("App");
            set(&mut f, "url", url);
            let html = refused(&app, &f).await;
            assert!(html.contains(message), "{message}: {html}");
        }
        let mut f = app_integration("App");
        without(&mut f, "username");
        without(&mut f, "password");
        let html = refused(&app, &f).await;
        assert!(html.contains("User name is required when the server requires authentication."));
        assert!(html.contains("Password is required when the server requires authentication."));

        // IceWarp.
        let mut f = icewarp("IceWarp");
        set(&mut f, "server", "");
        without(&mut f, "password");
        let html = refused(&app, &f).await;
        assert!(html.contains("Server name is required.") && html.contains("Password is required."));

        assert_eq!(profile_count(&app).await, 0, "nothing was saved");
        let sealed = app.conn(|c| secrets::table.count().get_result::<i64>(c).expect("count")).await;
        assert_eq!(sealed, 0, "no secret was stored either");

        // And each type saves once valid.
        for f in [entra("Entra"), google("Google", &google_key_json(&pem_key, "")), app_integration("App"), icewarp("IceWarp"), samba_profile("AD"), slapd_profile("LDAP")] {
            create(&app, &f).await;
        }
        let list = app.get_html("/admin/profiles").await;
        for label in ["Microsoft Entra ID", "Google Workspace", "Active Directory", "Generic LDAP", "Application Integration", "IceWarp Server"] {
            assert!(list.contains(label), "{label} listed");
        }
    }
}

crate::db_test! {
    async fn secrets_never_appear_in_any_response(app) {
        app.sign_in_as_admin().await;
        const CANARY: &str = "canary-3f9c1d7e-secret";
        let (_, key) = test_rsa_key();
        let key_json = google_key_json(&key, CANARY);
        let mut ldap = slapd_profile("LDAP");
        set(&mut ldap, "bind_password", CANARY);
        let mut google_form = google("Google", &key_json);
        set(&mut google_form, "oidc_client_secret", CANARY);
        let mut app_form = app_integration("App");
        set(&mut app_form, "password", CANARY);
        let mut ice = icewarp("IceWarp");
        set(&mut ice, "password", CANARY);
        let entra_id = create(&app, &entra("Entra")).await;

        let mut bodies = Vec::new();
        // A form refused for another reason does not echo the secret back.
        for f in [&ldap, &google_form, &app_form, &ice] {
            let mut bad = f.clone();
            set(&mut bad, "name", "");
            bodies.push(refused(&app, &bad).await);
        }
        let mut ids = vec![entra_id];
        for f in [&ldap, &google_form, &app_form, &ice] {
            ids.push(create(&app, f).await);
        }
        let entra_key = app.conn({
            let key = app.master_key.clone();
            move |c| {
                let row = profiles::find(c, entra_id).expect("find").expect("row");
                let settings = KindSettings::of(&row).expect("settings");
                roster::profiles::store::reveal(c, &key, &settings, roster::profiles::SecretSlot::CertificateKey).expect("reveal").expect("stored")
            }
        }).await;
        let key_body: String = entra_key.expose_secret().lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("");
        let key_line = entra_key.expose_secret().lines().nth(2).expect("key line").to_owned();

        for page in ["/admin/profiles", "/admin", "/admin/profiles/new", "/admin/profiles/new?kind=entra_id"] {
            bodies.push(app.get_html(page).await);
        }
        for id in &ids {
            let page = format!("/admin/profiles/{id}");
            bodies.push(app.get_html(&page).await);
            bodies.push(app.get_html(&format!("{page}/delete")).await);
            // Dialogs with blank secrets (the stored ones are used, never shown).
            let mut blank = slapd_profile("LDAP");
            set(&mut blank, "bind_password", "");
            for probe in ["test-connection", "groups"] {
                bodies.push(post(&app, &page, &format!("{page}/{probe}"), &blank, true).await.text().await.expect("body"));
                bodies.push(post(&app, &page, &format!("{page}/{probe}"), &blank, false).await.text().await.expect("body"));
            }
        }
        bodies.push(app.get_html(&format!("/admin/profiles/{entra_id}/certificate.pem")).await);
        assert!(bodies.last().expect("cert").starts_with("-----BEGIN CERTIFICATE-----"));
        for body in &bodies {
            assert!(!body.contains(CANARY), "a secret leaked: {body}");
            assert!(!body.contains(&key_line) && !body.contains(&key_body), "the Entra private key leaked");
            assert!(!body.contains("GOCSPX-client-secret"));
        }
        // Nor in the database outside the sealed secrets, nor in the audit log.
        let (settings, audit): (Vec<String>, Vec<String>) = app.conn(|c| {
            let settings = profiles::list(c, "", false).expect("list").into_iter().map(|p| p.settings).collect();
            let audit = audit_events::table.select(audit_events::detail).load(c).expect("audit");
            (settings, audit)
        }).await;
        for text in settings.iter().chain(audit.iter()) {
            assert!(!text.contains(CANARY));
        }
    }
}

crate::db_test! {
    async fn entra_certificate_download_dependents_and_delete(app) {
        app.sign_in_as_admin().await;
        let form = app.get_html("/admin/profiles/new?kind=entra_id").await;
        assert!(form.contains("id=\"redirect_uri\"") && form.contains("readonly") && form.contains("data-copy=\"redirect_uri\""));
        assert!(form.contains("Also create the archiving and folder-synchronisation configurations"));
        let slug = form.split("name=\"redirect_slug\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("slug").to_owned();

        let mut f = entra("Tenant");
        set(&mut f, "redirect_slug", &slug);
        set(&mut f, "create_dependents", "on");
        let id = create(&app, &f).await;
        let page = app.get_html(&format!("/admin/profiles/{id}")).await;
        assert!(page.contains(&format!("/login/oidc/{slug}/callback")), "the redirect URI stays the one shown");
        assert!(page.contains("Thumbprint") && page.contains("Download the public certificate"));
        assert!(page.contains("Tenant – archiving") && page.contains("Tenant – folder synchronisation"));
        assert!(!page.contains("Also create the archiving"), "only at creation");

        // The download is the stored certificate, and the sealed key belongs to it.
        let res = app.get(&format!("/admin/profiles/{id}/certificate.pem")).await;
        assert_eq!(res.headers().get("content-disposition").and_then(|v| v.to_str().ok()), Some("attachment; filename=\"roster-Tenant.pem\""));
        let cert = res.text().await.expect("pem");
        let key = app.conn({
            let key = app.master_key.clone();
            move |c| {
                let row = profiles::find(c, id).expect("find").expect("row");
                let settings = KindSettings::of(&row).expect("settings");
                roster::profiles::store::reveal(c, &key, &settings, roster::profiles::SecretSlot::CertificateKey).expect("reveal").expect("stored")
            }
        }).await;
        certificate::import(&cert, &key).expect("the stored key matches the downloaded certificate");
        let info = certificate::info(&cert).expect("info");
        assert!(page.contains(&info.thumbprint) && info.subject.contains("Roster Tenant"));

        // Edit keeps the certificate unless asked; importing replaces it.
        let mut edit = f.clone();
        without(&mut edit, "certificate_mode");
        let page_path = format!("/admin/profiles/{id}");
        assert_eq!(post(&app, &page_path, &page_path, &edit, false).await.status().as_u16(), 303);
        assert_eq!(app.get_html(&format!("/admin/profiles/{id}/certificate.pem")).await, cert);
        let (new_cert, new_key) = test_rsa_key();
        set(&mut edit, "certificate_mode", "import");
        set(&mut edit, "certificate_import", &new_cert);
        set(&mut edit, "private_key_import", &new_key);
        assert_eq!(post(&app, &page_path, &page_path, &edit, false).await.status().as_u16(), 303);
        assert_eq!(app.get_html(&format!("/admin/profiles/{id}/certificate.pem")).await, new_cert);

        // Dependent configurations block the delete, by name.
        let confirm = app.get_html(&format!("/admin/profiles/{id}/delete")).await;
        assert!(confirm.contains("cannot be deleted") && confirm.contains("Tenant – archiving"), "{confirm}");
        let res = post(&app, &page_path, &format!("/admin/profiles/{id}/delete"), &vec![], false).await;
        assert_eq!(res.status().as_u16(), 303);
        assert_eq!(profile_count(&app).await, 1, "refused while in use");
        let configs: Vec<i64> = app.conn(move |c| dependent_configurations::table.filter(dependent_configurations::profile_id.eq(id)).select(dependent_configurations::id).load(c).expect("configs")).await;
        for cid in configs {
            let res = post(&app, &page_path, &format!("/admin/profiles/{id}/configurations/{cid}/delete"), &vec![], false).await;
            assert_eq!(res.status().as_u16(), 303);
        }

        // Now the confirmation states how many users go with it, and they do.
        app.conn(move |c| {
            for name in ["ann", "ben"] {
                crate::profiles::add_synchronised_user(c, id, name);
            }
        }).await;
        let confirm = app.get_html(&format!("/admin/profiles/{id}/delete")).await;
        assert!(confirm.contains("<strong>2</strong> user(s) synchronised from it"), "{confirm}");
        let res = post(&app, &format!("/admin/profiles/{id}/delete"), &format!("/admin/profiles/{id}/delete"), &vec![], false).await;
        assert_eq!(res.headers().get("location").and_then(|v| v.to_str().ok()), Some("/admin/profiles"));
        let (profiles_left, users_left, secrets_left, audit) = app.conn(|c| {
            (
                profiles::count(c).expect("count"),
                users::table.filter(users::profile_id.is_not_null()).count().get_result::<i64>(c).expect("users"),
                secrets::table.count().get_result::<i64>(c).expect("secrets"),
                audit_events::table.filter(audit_events::action.eq("profile_deleted")).select(audit_events::detail).first::<String>(c).expect("audited"),
            )
        }).await;
        assert_eq!((profiles_left, users_left, secrets_left), (0, 0, 0));
        assert_eq!(audit, "2 synchronised users deleted");
    }
}

crate::db_test! {
    async fn list_sorts_searches_and_swaps_type_fields(app) {
        app.sign_in_as_admin().await;
        let b = create(&app, &icewarp("Bravo mail")).await;
        create(&app, &app_integration("alpha users")).await;
        create(&app, &icewarp("Charlie")).await;
        let names = |html: &str| -> Vec<String> {
            html.split("<td><a href=\"/admin/profiles/").skip(1).filter_map(|r| r.split('>').nth(1)).map(|n| n.trim_end_matches("</a").to_owned()).collect()
        };
        assert_eq!(names(&app.get_html("/admin/profiles").await), ["alpha users", "Bravo mail", "Charlie"]);
        assert_eq!(names(&app.get_html("/admin/profiles?sort=desc").await), ["Charlie", "Bravo mail", "alpha users"]);
        assert_eq!(names(&app.get_html("/admin/profiles?q=MAIL").await), ["Bravo mail"]);
        assert_eq!(names(&app.get_html(&format!("/admin/profiles?q={b}")).await), ["Bravo mail"]);
        assert!(app.get_html("/admin/profiles?q=zulu").await.contains("No profile matches “zulu”."));

        // The type chooser names the six types; the fields fragment swaps by type.
        let chooser = app.get_html("/admin/profiles/new").await;
        for label in ["Microsoft Entra ID", "Google Workspace", "Active Directory", "Generic LDAP", "Application Integration", "IceWarp Server"] {
            assert!(chooser.contains(label));
        }
        let res = app.client.get(app.url("/admin/profiles/new/fields?kind=google_workspace")).header("HX-Request", "true").send().await.expect("GET");
        let fragment = res.text().await.expect("body");
        assert!(fragment.starts_with("<div id=\"kind-fields\">") && fragment.contains("Service-account key (JSON)") && fragment.contains("OpenID redirect URI"));
        assert!(!fragment.contains("<html"));
    }
}

#[test]
fn google_key_file_is_checked_field_by_field() {
    let (_, key) = test_rsa_key();
    let summary = google_key::check(&google_key_json(&key, "")).expect("valid key");
    assert_eq!(
        summary.client_email,
        "roster@roster-test.iam.gserviceaccount.com"
    );
    assert_eq!(summary.private_key_id, "abc123");
    assert!(matches!(
        google_key::check("[]"),
        Err(google_key::KeyFileError::NotJson(_))
    ));
    let http_token = google_key_json(&key, "").replace("https://oauth2", "http://oauth2");
    assert_eq!(
        google_key::check(&http_token),
        Err(google_key::KeyFileError::BadTokenUri)
    );
}
