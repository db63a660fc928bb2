//! The LDAP / Active Directory connector against real slapd and a real Samba AD DC:
//! "Test connection" and the group picker, and every failure an admin must be told about.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use roster::directory::ldap::{Flavour, LdapDirectory, LdapSettings, Protocol, ad_sub_code};
use roster::directory::names::{LocalPartError, local_part};
use roster::directory::{Directory, DirectoryError};
use secrecy::SecretString;

use crate::support::servers;

pub fn host_port(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_owned()
}

fn trust(ca: &str) -> Arc<rustls::ClientConfig> {
    roster::install_crypto_provider();
    roster::tls::client_config(Some(Path::new(ca))).expect("TLS config")
}

fn slapd_settings() -> LdapSettings {
    let slapd = servers::slapd();
    LdapSettings {
        server: host_port(slapd.fact("LDAP_URL")),
        bind_dn: slapd.fact("BIND_DN").into(),
        bind_password: SecretString::from(slapd.fact("BIND_PASSWORD")),
        base_dn: slapd.fact("BASE_DN").into(),
        timeout: Duration::from_secs(5),
        ..LdapSettings::defaults(Flavour::GenericLdap)
    }
}

fn slapd(settings: LdapSettings) -> LdapDirectory {
    LdapDirectory::new(settings, trust(servers::slapd().fact("CA_CERT")))
}

fn samba_settings() -> LdapSettings {
    let samba = servers::samba();
    LdapSettings {
        server: host_port(samba.fact("LDAP_URL")),
        bind_dn: samba.fact("BIND_USER").into(),
        bind_password: SecretString::from(samba.fact("BIND_PASSWORD")),
        base_dn: samba.fact("BASE_DN").into(),
        timeout: Duration::from_secs(10),
        ..LdapSettings::defaults(Flavour::ActiveDirectory)
    }
}

fn samba(settings: LdapSettings) -> LdapDirectory {
    LdapDirectory::new(settings, trust(servers::samba().fact("CA_CERT")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_test_connection_over_starttls_and_ldaps_counts_users_and_groups() {
    let report = slapd(slapd_settings())
        .test_connection()
        .await
        .expect("StartTLS");
    assert_eq!(
        (report.users_matched, report.groups_matched),
        (3, 2),
        "{report:?}"
    );
    let ldaps = LdapSettings {
        server: host_port(servers::slapd().fact("LDAPS_URL")),
        protocol: Protocol::Ldaps,
        ..slapd_settings()
    };
    let report = slapd(ldaps).test_connection().await.expect("LDAPS");
    assert_eq!(report.users_matched, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_failures_say_what_is_wrong() {
    let wrong_password = LdapSettings {
        bind_password: SecretString::from("wrong"),
        ..slapd_settings()
    };
    let err = slapd(wrong_password)
        .test_connection()
        .await
        .expect_err("wrong password");
    assert!(
        matches!(err, DirectoryError::InvalidCredentials { .. }),
        "{err}"
    );

    let unknown = LdapSettings {
        server: "no-such-host.invalid".into(),
        ..slapd_settings()
    };
    let err = slapd(unknown)
        .test_connection()
        .await
        .expect_err("unknown server");
    assert!(matches!(err, DirectoryError::ServerUnknown { .. }), "{err}");

    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").port()
    };
    let refused = LdapSettings {
        server: format!("127.0.0.1:{closed_port}"),
        ..slapd_settings()
    };
    let err = slapd(refused).test_connection().await.expect_err("refused");
    assert!(matches!(err, DirectoryError::Unreachable { .. }), "{err}");

    let wrong_base = LdapSettings {
        base_dn: "ou=nowhere,dc=example,dc=test".into(),
        ..slapd_settings()
    };
    let err = slapd(wrong_base)
        .test_connection()
        .await
        .expect_err("wrong base DN");
    assert!(
        matches!(err, DirectoryError::BaseDnNotFound { .. }),
        "{err}"
    );

    let bad_filter = LdapSettings {
        user_filter: "(objectClass=inetOrgPerson".into(),
        ..slapd_settings()
    };
    let err = slapd(bad_filter)
        .test_connection()
        .await
        .expect_err("bad filter");
    assert!(matches!(err, DirectoryError::Settings(_)), "{err}");

    // An empty password would be an anonymous bind (RFC 4513): refused before any traffic.
    let empty = LdapSettings {
        bind_password: SecretString::from("  "),
        ..slapd_settings()
    };
    let err = slapd(empty)
        .test_connection()
        .await
        .expect_err("empty password");
    assert_eq!(
        err,
        DirectoryError::Settings("the bind password is empty".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_fails_unless_tls_errors_are_ignored() {
    roster::install_crypto_provider();
    let system_roots_only = roster::tls::client_config(None).expect("TLS config");
    let err = LdapDirectory::new(slapd_settings(), system_roots_only.clone())
        .test_connection()
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(err, DirectoryError::Tls { .. }), "{err}");
    let ignoring = LdapSettings {
        ignore_tls_errors: true,
        ..slapd_settings()
    };
    LdapDirectory::new(ignoring, system_roots_only)
        .test_connection()
        .await
        .expect("ignoring TLS errors was asked for explicitly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out_within_the_profile_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("addr").port();
    // Accepts connections and never says anything.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let silent = LdapSettings {
        server: format!("127.0.0.1:{port}"),
        timeout: Duration::from_secs(1),
        ..slapd_settings()
    };
    let started = std::time::Instant::now();
    let err = slapd(silent).test_connection().await.expect_err("timeout");
    assert!(matches!(err, DirectoryError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_group_picker_lists_and_searches_groups() {
    let dir = slapd(slapd_settings());
    let names = |groups: Vec<roster::directory::DirectoryGroup>| {
        groups.into_iter().map(|g| g.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(dir.list_groups("").await.expect("groups")),
        ["admins", "staff"]
    );
    assert_eq!(
        names(dir.list_groups("STA").await.expect("search")),
        ["staff"]
    );
    // Filter syntax in the search box is just text.
    assert!(
        dir.list_groups("*)(cn=*")
            .await
            .expect("escaped")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_ad_test_connection_group_picker_and_bad_password_sub_code() {
    let report = samba(samba_settings())
        .test_connection()
        .await
        .expect("AD over StartTLS");
    assert!(report.users_matched >= 4, "{report:?}");
    let groups = samba(samba_settings())
        .list_groups("staff")
        .await
        .expect("groups");
    assert_eq!(
        groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["staff"]
    );
    assert!(groups[0].id.starts_with("CN=staff,"), "{:?}", groups[0]);

    let wrong = LdapSettings {
        bind_password: SecretString::from("Wrong-Pass-1!"),
        ..samba_settings()
    };
    match samba(wrong).test_connection().await {
        Err(DirectoryError::InvalidCredentials { sub_code, detail }) => {
            assert_eq!(sub_code.as_deref(), Some("52e"), "{detail}");
        }
        other => panic!("expected invalid credentials, got {other:?}"),
    }
}

#[test]
fn active_directory_sub_codes_are_read_from_the_error_text() {
    let text =
        "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 533, v4563";
    assert_eq!(ad_sub_code(text).as_deref(), Some("533"));
    assert_eq!(ad_sub_code("invalid credentials"), None);
}

#[test]
fn use_only_local_part_drops_everything_after_the_last_unquoted_at() {
    assert_eq!(local_part("alice@example.com").as_deref(), Ok("alice"));
    assert_eq!(local_part("alice").as_deref(), Ok("alice"));
    assert_eq!(local_part("a@b@example.com").as_deref(), Ok("a@b"));
    assert_eq!(
        local_part("\"loc@lpart\"@example.com").as_deref(),
        Ok("\"loc@lpart\"")
    );
    assert_eq!(
        local_part("\"only@quoted\"").as_deref(),
        Ok("\"only@quoted\"")
    );
    assert_eq!(
        local_part("\"esc\\\"@aped\"@example.com").as_deref(),
        Ok("\"esc\\\"@aped\"")
    );
    assert_eq!(local_part("  "), Err(LocalPartError::Empty));
    assert!(matches!(
        local_part("\"open@example.com"),
        Err(LocalPartError::UnclosedQuote(_))
    ));
    assert!(matches!(
        local_part("@example.com"),
        Err(LocalPartError::EmptyLocalPart(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_snapshot_reads_users_groups_and_members_by_stable_id() {
    let snapshot = slapd(slapd_settings())
        .snapshot(&roster::directory::Progress::default())
        .await
        .expect("snapshot");
    let mut names: Vec<&str> = snapshot.users.iter().map(|u| u.username.as_str()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let bob = snapshot
        .users
        .iter()
        .find(|u| u.username == "bob")
        .expect("bob");
    assert_eq!(bob.full_name, "Bob Baker");
    assert_eq!(bob.emails, ["bob@example.test", "bob.baker@example.test"]);
    assert_eq!(bob.external_id.len(), 36, "entryUUID: {}", bob.external_id);
    let id_of = |name: &str| {
        snapshot
            .users
            .iter()
            .find(|u| u.username == name)
            .map(|u| u.external_id.clone())
            .expect("user")
    };
    let staff = snapshot
        .groups
        .iter()
        .find(|g| g.name == "staff")
        .expect("staff");
    let mut members = staff.members.clone();
    members.sort();
    let mut expected = vec![id_of("alice"), id_of("bob")];
    expected.sort();
    assert_eq!(members, expected);

    // A configured id attribute replaces entryUUID.
    let by_uid = LdapSettings {
        id_attribute: "uid".into(),
        ..slapd_settings()
    };
    let snapshot = slapd(by_uid)
        .snapshot(&roster::directory::Progress::default())
        .await
        .expect("by uid");
    let mut ids: Vec<String> = snapshot
        .users
        .iter()
        .map(|u| u.external_id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["alice", "bob", "carol"]);

    // Scope: only the chosen groups and their members.
    let scoped = LdapSettings {
        groups_to_sync: vec!["ADMINS".into()],
        ..slapd_settings()
    };
    let snapshot = slapd(scoped)
        .snapshot(&roster::directory::Progress::default())
        .await
        .expect("scoped");
    assert_eq!(
        snapshot
            .users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(
        snapshot
            .groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["admins"]
    );

    // A chosen group that does not exist is an error, not an empty scope.
    let missing = LdapSettings {
        groups_to_sync: vec!["nobody".into()],
        ..slapd_settings()
    };
    let err = slapd(missing)
        .snapshot(&roster::directory::Progress::default())
        .await
        .expect_err("missing group");
    assert!(err.to_string().contains("`nobody`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_snapshot_has_guids_disabled_accounts_and_members() {
    let snapshot = samba(samba_settings())
        .snapshot(&roster::directory::Progress::default())
        .await
        .expect("snapshot");
    let user = |name: &str| {
        snapshot
            .users
            .iter()
            .find(|u| u.username == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", snapshot.users))
    };
    assert!(!user("alice").disabled);
    assert!(user("dave").disabled, "userAccountControl bit 2");
    let guid = &user("alice").external_id;
    assert!(
        guid.len() == 36 && guid.chars().filter(|c| *c == '-').count() == 4,
        "{guid}"
    );
    let staff = snapshot
        .groups
        .iter()
        .find(|g| g.name == "staff")
        .expect("staff");
    assert!(staff.members.contains(guid), "{staff:?}");
}

#[test]
fn ranged_member_answers_are_followed_to_the_end() {
    use roster::directory::ldap::ranged_values;
    use std::collections::HashMap;
    let values = |n: usize, from: usize| {
        (from..from + n)
            .map(|i| format!("cn=u{i}"))
            .collect::<Vec<_>>()
    };
    // AD's forced form: an empty `member` plus the first 1,500 values.
    let forced = HashMap::from([
        ("member".to_owned(), Vec::new()),
        ("member;range=0-1499".to_owned(), values(1500, 0)),
    ]);
    let (got, next) = ranged_values(&forced, "member");
    assert_eq!((got.len(), next), (1500, Some(1500)));
    // The last range ends in `*`.
    let last = HashMap::from([("member;range=1500-*".to_owned(), values(20, 1500))]);
    assert_eq!(ranged_values(&last, "member").1, None);
    // Not ranged at all (slapd, small groups).
    let plain = HashMap::from([("member".to_owned(), values(3, 0))]);
    assert_eq!(ranged_values(&plain, "Member"), (values(3, 0), None));
    assert_eq!(
        roster::directory::ldap::format_guid(&[
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff
        ])
        .as_deref(),
        Some("00112233-4455-6677-8899-aabbccddeeff")
    );
}
