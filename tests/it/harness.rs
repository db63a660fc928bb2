//! The external servers later issues test against really answer: slapd, the Samba AD DC and
//! the OIDC provider, started by `tests/support/<name>/start` once per run.

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

async fn bind(url: &str, dn: &str, password: &str, settings: LdapConnSettings) -> ldap3::Ldap {
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url)
        .await
        .expect("connect");
    ldap3::drive!(conn);
    ldap.simple_bind(dn, password)
        .await
        .expect("bind")
        .success()
        .expect("bind succeeds");
    ldap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_serves_the_seeded_directory_over_ldap_and_starttls() {
    roster::install_crypto_provider();
    let slapd = crate::support::servers::slapd();
    let base = slapd.fact("BASE_DN");
    let mut ldap = bind(
        slapd.fact("LDAP_URL"),
        slapd.fact("BIND_DN"),
        slapd.fact("BIND_PASSWORD"),
        LdapConnSettings::new(),
    )
    .await;
    let filter = format!("(uid={})", ldap3::ldap_escape("alice"));
    let (entries, _) = ldap
        .search(base, Scope::Subtree, &filter, vec!["cn", "mail"])
        .await
        .expect("search")
        .success()
        .expect("search succeeds");
    let alice = SearchEntry::construct(entries.into_iter().next().expect("alice"));
    assert_eq!(alice.attrs["cn"], vec!["Alice Archer".to_owned()]);

    // A wrong password is refused with invalidCredentials (49).
    let (conn, mut anon) = LdapConnAsync::new(slapd.fact("LDAP_URL"))
        .await
        .expect("connect");
    ldap3::drive!(conn);
    let res = anon
        .simple_bind(slapd.fact("BIND_DN"), "wrong")
        .await
        .expect("bind");
    assert_eq!(res.rc, 49);

    // StartTLS with the test CA verifies the server's certificate.
    let ca = std::fs::read(slapd.fact("CA_CERT")).expect("CA");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(&ca) {
        roots.add(cert).expect("add CA");
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings = LdapConnSettings::new()
        .set_starttls(true)
        .set_config(std::sync::Arc::new(tls));
    bind(
        slapd.fact("LDAP_URL"),
        slapd.fact("BIND_DN"),
        slapd.fact("BIND_PASSWORD"),
        settings,
    )
    .await;
}

/// PEM certificates, parsed with rustls' own PEM reader.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.expect("PEM certificate"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_ad_dc_answers_as_active_directory() {
    roster::install_crypto_provider();
    let samba = crate::support::servers::samba();
    let mut ldap = bind(
        samba.fact("LDAP_URL"),
        samba.fact("BIND_USER"),
        samba.fact("BIND_PASSWORD"),
        LdapConnSettings::new(),
    )
    .await;
    let (entries, _) = ldap
        .search(
            samba.fact("BASE_DN"),
            Scope::Subtree,
            "(sAMAccountName=dave)",
            vec!["userAccountControl", "objectGUID", "userPrincipalName"],
        )
        .await
        .expect("search")
        .success()
        .expect("search succeeds");
    let dave = SearchEntry::construct(entries.into_iter().next().expect("dave"));
    let uac: u32 = dave.attrs["userAccountControl"][0].parse().expect("number");
    assert_eq!(uac & 0x2, 0x2, "dave is disabled in AD");
    assert_eq!(
        dave.bin_attrs["objectGUID"][0].len(),
        16,
        "objectGUID is 16 bytes"
    );

    // AD's bind errors carry the sub-code (52e: bad credentials).
    let (conn, mut other) = LdapConnAsync::new(samba.fact("LDAP_URL"))
        .await
        .expect("connect");
    ldap3::drive!(conn);
    let res = other
        .simple_bind(samba.fact("BIND_USER"), "wrong password")
        .await
        .expect("bind");
    assert_eq!(res.rc, 49);
    assert!(res.text.contains("52e"), "{}", res.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_provider_publishes_its_discovery_document() {
    roster::install_crypto_provider();
    let oidc = crate::support::servers::oidc();
    let issuer = oidc.fact("ISSUER");
    let doc: serde_json::Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["issuer"], issuer);
    assert!(
        doc["code_challenge_methods_supported"]
            .as_array()
            .is_some_and(|m| m.iter().any(|v| v == "S256"))
    );
}
