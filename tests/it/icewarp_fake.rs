//! The IceWarp fake against the protocol (PROTOCOLS.md, "IceWarp API"), not against itself:
//! requests are written here by hand over HTTPS that trusts only the fake's certificate,
//! and answers are checked as text — whole `<iq>`s where the shape matters — so the fake's
//! own XML reader and writer are never both sides of a check.

use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::support::icewarp::{
    Account, AccountKind, Command, Fault, GENERATED_PASSWORD, IceWarpFake,
};

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "Adm1n-pass";
const ALICE: &str = "alice@example.com";
const ALICE_PASSWORD: &str = "alice-Pass1";

fn tls_trusting(pems: &[&str]) -> rustls::ClientConfig {
    roster::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for pem in pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.expect("PEM certificate")).expect("root");
        }
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn http_client(tls: rustls::ClientConfig, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .build()
        .expect("HTTP client")
}

struct Api {
    fake: IceWarpFake,
    http: reqwest::Client,
}

/// A fake holding an administrator and Alice, and a client that trusts its certificate.
async fn start() -> Api {
    let fake = IceWarpFake::start().await;
    fake.admin(ADMIN, ADMIN_PASSWORD);
    fake.upsert_account(Account::user(ALICE, "Alice Liddell", ALICE_PASSWORD));
    let tls = tls_trusting(&[&fake.certificate_pem()]);
    let http = http_client(tls, Duration::from_secs(10));
    Api { fake, http }
}

/// XML escaping, as a client writes it.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn unesc(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn envelope(sid: Option<&str>, command: &str, params: &str) -> String {
    let sid = sid
        .map(|s| format!(" sid=\"{}\"", esc(s)))
        .unwrap_or_default();
    format!(
        "<iq{sid}><query xmlns=\"admin:iq:rpc\"><commandname>{command}</commandname>\
         <commandparams>{params}</commandparams></query></iq>"
    )
}

fn auth_params(email: &str, password: &str) -> String {
    format!(
        "<authtype>0</authtype><email>{}</email><password>{}</password><digest></digest>\
         <persistentlogin>0</persistentlogin>",
        esc(email),
        esc(password)
    )
}

fn window(offset: i64, count: i64) -> String {
    format!("<offset>{offset}</offset><count>{count}</count>")
}

fn domains_params(mask: &str, offset: i64, count: i64) -> String {
    format!(
        "<filter><namemask>{}</namemask><typemask></typemask></filter>{}",
        esc(mask),
        window(offset, count)
    )
}

fn accounts_params(domain: &str, mask: &str, types: &str, offset: i64, count: i64) -> String {
    format!(
        "<domainstr>{}</domainstr><filter><namemask>{}</namemask><typemask>{types}</typemask>\
         </filter>{}",
        esc(domain),
        esc(mask),
        window(offset, count)
    )
}

fn members_params(who: &str, offset: i64, count: i64) -> String {
    format!(
        "<who>{}</who><filter><namemask></namemask></filter>{}",
        esc(who),
        window(offset, count)
    )
}

/// The texts of every `<tag>…</tag>`, unescaped.
fn values(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(&open) {
        rest = &rest[at + open.len()..];
        let end = rest.find(&close).expect("closed");
        out.push(unesc(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn value(body: &str, tag: &str) -> Option<String> {
    values(body, tag).into_iter().next()
}

fn error_iq(uid: &str) -> String {
    format!("<iq type=\"error\"><query xmlns=\"admin:iq:rpc\"><error uid=\"{uid}\"/></query></iq>")
}

fn result_iq(sid: &str, result: &str) -> String {
    format!(
        "<iq type=\"result\" sid=\"{sid}\"><query xmlns=\"admin:iq:rpc\"><result>{result}</result></query></iq>"
    )
}

/// The `sid` of a result `<iq>`.
fn sid_of(body: &str) -> Option<String> {
    let rest = body.strip_prefix("<iq type=\"result\" sid=\"")?;
    Some(rest[..rest.find('"')?].to_owned())
}

impl Api {
    async fn post_typed(&self, content_type: &str, body: &str) -> (u16, String, String) {
        let response = self
            .http
            .post(self.fake.url())
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, content_type, response.text().await.expect("body"))
    }

    /// A command's answer, which must be HTTP 200 `application/xml`.
    async fn call(&self, sid: Option<&str>, command: &str, params: &str) -> String {
        let (status, content_type, body) = self
            .post_typed("text/xml", &envelope(sid, command, params))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(content_type, "application/xml; charset=utf-8");
        body
    }

    async fn login(&self, email: &str, password: &str) -> Result<String, String> {
        let body = self
            .call(None, "authenticate", &auth_params(email, password))
            .await;
        match sid_of(&body) {
            Some(sid) => {
                assert_eq!(body, result_iq(&sid, "1"));
                Ok(sid)
            }
            None => Err(body),
        }
    }

    async fn admin_sid(&self) -> String {
        self.login(ADMIN, ADMIN_PASSWORD)
            .await
            .expect("admin login")
    }

    /// Every account address of `domain`, read in pages of `count`, and the overallcount
    /// each page gave.
    async fn all_accounts(&self, sid: &str, domain: &str, types: &str, count: i64) -> Vec<String> {
        let mut emails = Vec::new();
        loop {
            let params = accounts_params(domain, "", types, emails.len() as i64, count);
            let body = self.call(Some(sid), "getaccountsinfolist", &params).await;
            let page = values(&body, "email");
            let overall: usize = value(&body, "overallcount")
                .expect("count")
                .parse()
                .unwrap();
            if page.is_empty() {
                assert!(body.contains("<items/>"), "{body}");
                assert_eq!(overall, emails.len());
                return emails;
            }
            emails.extend(page);
            assert!(emails.len() <= overall);
        }
    }
}

#[tokio::test]
async fn login_logout_and_the_rules_of_sids() {
    let api = start().await;
    let sid = api.admin_sid().await;
    assert!(sid.starts_with("wm-") && sid.len() > 10, "{sid}");

    // A live administrator's sid reads; the answer carries it.
    let body = api
        .call(Some(&sid), "getdomainsinfolist", &domains_params("", 0, 10))
        .await;
    assert!(
        body.starts_with(&format!("<iq type=\"result\" sid=\"{sid}\">")),
        "{body}"
    );

    // No sid, an unknown one: session_invalid, for every command but authenticate.
    for sid in [None, Some("wm-unknown"), Some("")] {
        for (command, params) in [
            ("getdomainsinfolist", domains_params("", 0, 10)),
            (
                "getaccountsinfolist",
                accounts_params("example.com", "", "", 0, 10),
            ),
            (
                "getaccountmemberinfolist",
                members_params("staff@example.com", 0, 10),
            ),
            ("logout", String::new()),
        ] {
            let body = api.call(sid, command, &params).await;
            assert_eq!(body, error_iq("session_invalid"), "{command} {sid:?}");
        }
    }

    // A user's sid may only log out.
    let user = api.login(ALICE, ALICE_PASSWORD).await.expect("alice");
    for (command, params) in [
        ("getdomainsinfolist", domains_params("", 0, 10)),
        (
            "getaccountsinfolist",
            accounts_params("example.com", "", "", 0, 10),
        ),
        (
            "getaccountmemberinfolist",
            members_params("x@example.com", 0, 10),
        ),
    ] {
        let body = api.call(Some(&user), command, &params).await;
        assert_eq!(body, error_iq("access_denied"), "{command}");
    }
    assert_eq!(api.fake.open_sessions(), 2);
    let body = api.call(Some(&user), "logout", "").await;
    assert_eq!(body, result_iq(&user, "1"));

    // Unknown commands, with a sid or without.
    for sid in [Some(sid.as_str()), None] {
        let body = api.call(sid, "getserverinfo", "").await;
        assert_eq!(body, error_iq("command_unknown"));
    }
    // Command names in any case.
    let body = api
        .call(Some(&sid), "GetDomainsInfoList", &domains_params("", 0, 10))
        .await;
    assert!(body.contains("<overallcount>1</overallcount>"), "{body}");

    // logout without commandparams at all, as clients send it; the sid then dies.
    let bare = format!(
        "<iq sid=\"{sid}\"><query xmlns=\"admin:iq:rpc\"><commandname>logout</commandname></query></iq>"
    );
    let (status, _, body) = api.post_typed("text/xml", &bare).await;
    assert_eq!((status, body), (200, result_iq(&sid, "1")));
    let body = api
        .call(Some(&sid), "getdomainsinfolist", &domains_params("", 0, 10))
        .await;
    assert_eq!(body, error_iq("session_invalid"));
    assert_eq!(
        api.call(Some(&sid), "logout", "").await,
        error_iq("session_invalid")
    );
    assert_eq!(
        (api.fake.open_sessions(), api.fake.sessions_opened()),
        (0, 2)
    );

    // The record: passwords hidden, sids as sent.
    let requests = api.fake.requests();
    let first = &requests[0];
    assert_eq!(
        (first.command.as_str(), first.sid.as_deref()),
        ("authenticate", None)
    );
    let names: Vec<&str> = first.params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["authtype", "email", "password", "digest", "persistentlogin"]
    );
    assert_eq!(first.param("email"), Some(ADMIN));
    assert_eq!(first.param("password"), Some("***"));
    assert_eq!(requests[1].sid.as_deref(), Some(sid.as_str()));
    assert_eq!(requests[1].param("count"), Some("10"));
    assert_eq!(api.fake.request_count(Command::Authenticate), 2);
    assert_eq!(api.fake.request_count(Command::Logout), 6);
    assert_eq!(api.fake.request_count(Command::Any), requests.len());
}

#[tokio::test]
async fn only_xml_posted_to_the_api_path_is_read() {
    let api = start().await;
    let login = envelope(None, "authenticate", &auth_params(ADMIN, ADMIN_PASSWORD));
    for content_type in ["application/xml", "text/xml; charset=utf-8", "Text/XML"] {
        let (status, answer_type, body) = api.post_typed(content_type, &login).await;
        assert_eq!(status, 200);
        assert_eq!(answer_type, "application/xml; charset=utf-8");
        assert!(sid_of(&body).is_some(), "{content_type}: {body}");
    }
    for content_type in [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
    ] {
        let (status, _, _) = api.post_typed(content_type, &login).await;
        assert_eq!(status, 415, "{content_type}");
    }
    let untyped = api
        .http
        .post(api.fake.url())
        .body(login.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(untyped.status().as_u16(), 415);

    let base = format!("https://{}", api.fake.server());
    for path in ["/icewarpapi", "/", "/icewarpapi/x", "/webmail/"] {
        let response = api
            .http
            .post(format!("{base}{path}"))
            .header("content-type", "text/xml")
            .body(login.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    let get = api.http.get(api.fake.url()).send().await.expect("send");
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(
        api.fake.request_count(Command::Any),
        3,
        "only API requests are recorded"
    );

    // Bodies that are not well-formed, or no envelope: xml_invalid, HTTP 200.
    for body in [
        "",
        "not xml",
        "<iq><query xmlns=\"admin:iq:rpc\"><commandname>logout</commandname></query>",
        "<iq><query xmlns=\"admin:iq:rpc\"><commandname>logout</query></commandname></iq>",
        "<iq><query xmlns=\"admin:iq:rpc\"><commandname>a & b</commandname></query></iq>",
        "<iq><query xmlns=\"admin:iq:rpc\"><commandname>logout</commandname></query></iq><iq/>",
        "<iq sid=\"a\" sid=\"b\"><query xmlns=\"admin:iq:rpc\"><commandname>logout</commandname></query></iq>",
        "<iq><query xmlns=\"other\"><commandname>logout</commandname></query></iq>",
        "<iq><query><commandname>logout</commandname></query></iq>",
        "<request><query xmlns=\"admin:iq:rpc\"><commandname>logout</commandname></query></request>",
        "<iq><query xmlns=\"admin:iq:rpc\"></query></iq>",
        "<iq><query xmlns=\"admin:iq:rpc\"><commandname>authenti",
    ] {
        let (status, _, answer) = api.post_typed("text/xml", body).await;
        assert_eq!((status, answer), (200, error_iq("xml_invalid")), "{body}");
    }
    let last = api.fake.requests().pop().expect("recorded");
    assert_eq!((last.command.as_str(), last.sid), ("", None));

    // What well-formed XML may hold: a declaration, comments, CDATA, references.
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- login -->\n<iq>\n  <query \
         xmlns='admin:iq:rpc'>\n    <commandname>authenticate</commandname>\n    \
         <commandparams><authtype>0</authtype><email>&#97;dmin@example.com</email>\
         <password><![CDATA[{ADMIN_PASSWORD}]]></password><digest/>\
         <persistentlogin>0</persistentlogin></commandparams>\n  </query>\n</iq>\n"
    );
    let (_, _, answer) = api.post_typed("text/xml", &body).await;
    assert!(sid_of(&answer).is_some(), "{answer}");

    api.fake.answer_text_xml(true);
    let (_, answer_type, _) = api.post_typed("application/xml", &login).await;
    assert_eq!(answer_type, "text/xml; charset=utf-8");
}

#[tokio::test]
async fn failed_logins_wait_and_disabled_accounts_are_refused() {
    let api = start().await;
    api.fake
        .upsert_account(Account::group("staff@example.com", "Staff", &[ALICE]));
    let delay = Duration::from_millis(300);
    api.fake.set_failed_login_delay(delay);
    for (email, password) in [
        (ALICE, "wrong"),
        (ALICE, ""),
        ("nobody@example.com", ALICE_PASSWORD),
        ("alice@elsewhere.org", ALICE_PASSWORD),
        ("staff@example.com", ""),
        ("", ""),
    ] {
        let started = Instant::now();
        let answer = api.login(email, password).await;
        assert_eq!(answer, Err(error_iq("auth_login_invalid")), "{email}");
        assert!(started.elapsed() >= delay, "{email}: answered too soon");
    }
    // The right password answers at once, whatever the case of the address.
    let started = Instant::now();
    assert!(api.login("Alice@Example.COM", ALICE_PASSWORD).await.is_ok());
    assert!(started.elapsed() < delay);

    assert!(api.fake.set_state(ALICE, 1));
    let started = Instant::now();
    assert_eq!(
        api.login(ALICE, ALICE_PASSWORD).await,
        Err(error_iq("account_disabled_2"))
    );
    assert!(
        started.elapsed() < delay,
        "a disabled account is not a failed login"
    );
    // A wrong password does not tell a disabled account from an enabled one.
    assert_eq!(
        api.login(ALICE, "wrong").await,
        Err(error_iq("auth_login_invalid"))
    );
    assert!(api.fake.set_state(ALICE, 0));
    assert!(api.login(ALICE, ALICE_PASSWORD).await.is_ok());
    assert!(!api.fake.set_state("nobody@example.com", 1));

    // Plain-password logins only.
    let digest = auth_params(ALICE, ALICE_PASSWORD)
        .replace("<authtype>0</authtype>", "<authtype>1</authtype>");
    let body = api.call(None, "authenticate", &digest).await;
    assert_eq!(body, error_iq("param_invalid"));
    assert_eq!(api.fake.sessions_opened(), 2);
}

#[tokio::test]
async fn every_list_pages_to_the_end_with_its_overall_count() {
    let api = start().await;
    for domain in ["b.example.org", "a.example.org", "c.example.org"] {
        api.fake.add_domain(domain);
    }
    api.fake
        .set_domain_description("example.com", "The main domain");
    for i in [5, 3, 1, 4, 2, 6] {
        let email = format!("user{i}@example.com");
        api.fake
            .upsert_account(Account::user(&email, &format!("User {i}"), "pw"));
    }
    let sid = api.admin_sid().await;

    // Domains, by name, in pages of 3.
    let body = api
        .call(Some(&sid), "getdomainsinfolist", &domains_params("", 0, 3))
        .await;
    let item = |name: &str, description: &str| {
        format!(
            "<item><classname>tdomaininfo</classname><name>{name}</name>\
             <description>{description}</description></item>"
        )
    };
    let expected = format!(
        "<classname>tpropertyinfolist</classname><offset>0</offset>\
         <overallcount>4</overallcount><items>{}{}{}</items>",
        item("a.example.org", ""),
        item("b.example.org", ""),
        item("c.example.org", "")
    );
    assert_eq!(body, result_iq(&sid, &expected));
    let body = api
        .call(Some(&sid), "getdomainsinfolist", &domains_params("", 3, 3))
        .await;
    assert_eq!(values(&body, "name"), ["example.com"]);
    assert_eq!(values(&body, "description"), ["The main domain"]);
    assert_eq!(value(&body, "offset").as_deref(), Some("3"));
    let body = api
        .call(Some(&sid), "getdomainsinfolist", &domains_params("", 9, 3))
        .await;
    let expected = "<classname>tpropertyinfolist</classname><offset>9</offset>\
                    <overallcount>4</overallcount><items/>";
    assert_eq!(body, result_iq(&sid, expected));

    // Accounts, by address, in pages of 2 and of 1000.
    let mut expected: Vec<String> = (1..=6).map(|i| format!("user{i}@example.com")).collect();
    expected.extend([ADMIN.to_owned(), ALICE.to_owned()]);
    expected.sort();
    for count in [2, 3, 1000] {
        assert_eq!(
            api.all_accounts(&sid, "EXAMPLE.com", "", count).await,
            expected
        );
    }
    let params = accounts_params("example.com", "", "", 1, 1);
    let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
    let expected = "<classname>taccountsinfolist</classname><offset>1</offset>\
         <overallcount>8</overallcount><items><item><classname>taccountinfo</classname>\
         <name>Alice Liddell</name><email>alice@example.com</email>\
         <accounttype>0</accounttype><accountstate><classname>taccountstate</classname>\
         <state>0</state></accountstate><aliases></aliases></item></items>";
    assert_eq!(body, result_iq(&sid, expected));
    let body = api
        .call(
            Some(&sid),
            "getaccountsinfolist",
            &accounts_params("a.example.org", "", "", 0, 10),
        )
        .await;
    assert!(
        body.contains("<overallcount>0</overallcount><items/>"),
        "{body}"
    );

    // Windows IceWarp refuses, and unknown domains.
    for (offset, count) in [(0, 0), (0, -1), (-1, 10)] {
        let params = accounts_params("example.com", "", "", offset, count);
        let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
        assert_eq!(body, error_iq("param_invalid"), "{offset} {count}");
    }
    let body = api
        .call(
            Some(&sid),
            "getaccountsinfolist",
            "<domainstr>example.com</domainstr><count>x</count>",
        )
        .await;
    assert_eq!(body, error_iq("param_invalid"));
    // No offset reads from the start.
    let body = api
        .call(
            Some(&sid),
            "getaccountsinfolist",
            "<domainstr>example.com</domainstr><count>2</count>",
        )
        .await;
    assert_eq!(values(&body, "email"), [ADMIN, ALICE]);
    for domain in ["unknown.example", ""] {
        let params = accounts_params(domain, "", "", 0, 10);
        let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
        assert_eq!(body, error_iq("domain_invalid"));
    }
    assert!(api.fake.accounts_of("unknown.example").is_empty());
    let held: Vec<String> = api
        .fake
        .accounts_of("example.com")
        .into_iter()
        .map(|a| a.email)
        .collect();
    assert_eq!(held.len(), 8);
    api.call(Some(&sid), "logout", "").await;
}

#[tokio::test]
async fn typemask_and_namemask_filter() {
    let api = start().await;
    let mut resource = Account::user("room@example.com", "Board Room", "");
    resource.kind = AccountKind::Resource;
    api.fake.upsert_account(resource);
    api.fake
        .upsert_account(Account::group("staff@example.com", "Staff", &[ALICE]));
    api.fake
        .upsert_account(Account::list("news@example.com", "Newsletter", &[ALICE]));
    api.fake.add_domain("other.org");
    let sid = api.admin_sid().await;
    let list = |mask: &'static str, types: &'static str| {
        let (api, sid) = (&api, sid.clone());
        async move {
            let params = accounts_params("example.com", mask, types, 0, 100);
            let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
            let emails = values(&body, "email");
            let overall = value(&body, "overallcount").expect("overallcount");
            assert_eq!(overall, emails.len().to_string());
            (emails, values(&body, "accounttype"))
        }
    };
    let (all, types) = list("", "").await;
    assert_eq!(
        all,
        [
            ADMIN,
            ALICE,
            "news@example.com",
            "room@example.com",
            "staff@example.com"
        ]
    );
    assert_eq!(types, ["0", "0", "1", "8", "7"]);
    assert_eq!(list("", "0").await.0, [ADMIN, ALICE]);
    assert_eq!(
        list("", "1,7").await.0,
        ["news@example.com", "staff@example.com"]
    );
    assert_eq!(list("", " 8 ").await.0, ["room@example.com"]);
    assert_eq!(list("", "3").await.0, Vec::<String>::new());
    assert_eq!(list("ALI", "").await.0, [ALICE]);
    assert_eq!(list("liddell", "").await.0, [ALICE], "full names match too");
    assert_eq!(list("*", "").await.0, all);
    assert_eq!(list("*room*", "").await.0, ["room@example.com"]);
    assert_eq!(list("e", "7").await.0, ["staff@example.com"]);
    let params = accounts_params("example.com", "", "user", 0, 10);
    let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
    assert_eq!(body, error_iq("param_invalid"));

    let domains = |mask: &'static str| {
        let (api, sid) = (&api, sid.clone());
        async move {
            let params = domains_params(mask, 0, 10);
            let body = api.call(Some(&sid), "getdomainsinfolist", &params).await;
            values(&body, "name")
        }
    };
    assert_eq!(domains("").await, ["example.com", "other.org"]);
    assert_eq!(domains("*").await, ["example.com", "other.org"]);
    assert_eq!(domains("OTHER").await, ["other.org"]);
    assert_eq!(domains("nowhere").await, Vec::<String>::new());
}

#[tokio::test]
async fn members_of_groups_and_lists_are_addresses_not_expanded() {
    let api = start().await;
    api.fake
        .upsert_account(Account::user("bob@example.com", "Bob", "pw"));
    api.fake.upsert_account(Account::group(
        "staff@example.com",
        "Staff",
        &["bob@example.com", "team@example.com", ALICE],
    ));
    api.fake.upsert_account(Account::group(
        "team@example.com",
        "Team",
        &["carol@other.org"],
    ));
    api.fake.upsert_account(Account::list(
        "news@example.com",
        "News",
        &["outside@elsewhere.net", ALICE],
    ));
    let sid = api.admin_sid().await;

    let body = api
        .call(
            Some(&sid),
            "getaccountmemberinfolist",
            &members_params("Staff@Example.com", 0, 2),
        )
        .await;
    let expected = "<classname>taccountmemberinfolist</classname><offset>0</offset>\
         <overallcount>3</overallcount><items>\
         <item><classname>taccountmemberinfo</classname><val>alice@example.com</val></item>\
         <item><classname>taccountmemberinfo</classname><val>bob@example.com</val></item>\
         </items>";
    assert_eq!(body, result_iq(&sid, expected));
    let body = api
        .call(
            Some(&sid),
            "getaccountmemberinfolist",
            &members_params("staff@example.com", 2, 2),
        )
        .await;
    assert_eq!(
        values(&body, "val"),
        ["team@example.com"],
        "the nested group, not Carol"
    );
    let body = api
        .call(
            Some(&sid),
            "getaccountmemberinfolist",
            &members_params("staff@example.com", 3, 2),
        )
        .await;
    assert!(
        body.contains("<overallcount>3</overallcount><items/>"),
        "{body}"
    );
    let body = api
        .call(
            Some(&sid),
            "getaccountmemberinfolist",
            &members_params("news@example.com", 0, 10),
        )
        .await;
    assert_eq!(values(&body, "val"), [ALICE, "outside@elsewhere.net"]);

    for who in [ALICE, "nobody@example.com", "", "staff"] {
        let body = api
            .call(
                Some(&sid),
                "getaccountmemberinfolist",
                &members_params(who, 0, 10),
            )
            .await;
        assert_eq!(body, error_iq("account_invalid"), "{who}");
    }

    // A rename moves memberships with it; a removal leaves the address.
    assert!(
        api.fake
            .rename_account("bob@example.com", "robert@example.com")
    );
    assert!(!api.fake.rename_account("bob@example.com", "x@example.com"));
    assert!(api.fake.remove_account("TEAM@example.com"));
    assert!(!api.fake.remove_account("team@example.com"));
    let body = api
        .call(
            Some(&sid),
            "getaccountmemberinfolist",
            &members_params("staff@example.com", 0, 10),
        )
        .await;
    assert_eq!(
        values(&body, "val"),
        [ALICE, "robert@example.com", "team@example.com"]
    );
}

#[tokio::test]
async fn names_escape_both_ways_and_unicode_round_trips() {
    let api = start().await;
    let awkward = "Tom & \"Jerry\" <O'Brien>";
    let unicode = "Zoë Ångström 日本語 🎉";
    let password = "p&ss<w>\"o'rd ü";
    let mut tom = Account::user("tom@example.com", awkward, password);
    tom.aliases = vec!["t&j".into(), "tömmy".into()];
    api.fake.upsert_account(tom);
    api.fake
        .upsert_account(Account::user("zoe@example.com", unicode, "pw"));
    api.fake
        .set_domain_description("example.com", "R&D <labs> \"quoted\" 'single' — ü");
    let sid = api.admin_sid().await;

    let params = accounts_params("example.com", "", "", 0, 10);
    let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
    assert!(
        body.contains("<name>Tom &amp; &quot;Jerry&quot; &lt;O&apos;Brien&gt;</name>"),
        "{body}"
    );
    assert!(body.contains("<aliases>t&amp;j;tömmy</aliases>"), "{body}");
    let names = values(&body, "name");
    assert!(names.contains(&awkward.to_owned()) && names.contains(&unicode.to_owned()));
    let body = api
        .call(Some(&sid), "getdomainsinfolist", &domains_params("", 0, 10))
        .await;
    assert_eq!(
        value(&body, "description").as_deref(),
        Some("R&D <labs> \"quoted\" 'single' — ü")
    );

    // Escaped in the request: a mask, a password (also as character references).
    let params = accounts_params("example.com", "& \"jerry\" <o'", "", 0, 10);
    let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
    assert_eq!(values(&body, "email"), ["tom@example.com"]);
    let params = accounts_params("example.com", "ÅNGSTRÖM 日本", "", 0, 10);
    let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
    assert_eq!(values(&body, "email"), ["zoe@example.com"]);
    assert!(api.login("tom@example.com", password).await.is_ok());
    let referenced = auth_params("tom@example.com", "").replace(
        "<password></password>",
        "<password>p&#38;ss&#x3C;w&gt;&quot;o&apos;rd &#252;</password>",
    );
    let body = api.call(None, "authenticate", &referenced).await;
    assert!(sid_of(&body).is_some(), "{body}");
}

#[tokio::test]
async fn every_fault_fires_once_when_due() {
    let api = start().await;
    for i in 0..5 {
        let email = format!("u{i}@example.com");
        api.fake.upsert_account(Account::user(&email, "U", "pw"));
    }
    let sid = api.admin_sid().await;
    let page = accounts_params("example.com", "", "", 0, 3);
    let normal = api.call(Some(&sid), "getaccountsinfolist", &page).await;
    assert_eq!(values(&normal, "email").len(), 3);

    // Stall: no answer within the client's timeout.
    api.fake.fault(Command::Accounts, 0, Fault::Stall);
    let impatient = http_client(
        tls_trusting(&[&api.fake.certificate_pem()]),
        Duration::from_millis(300),
    );
    let error = impatient
        .post(api.fake.url())
        .header("content-type", "text/xml")
        .body(envelope(Some(&sid), "getaccountsinfolist", &page))
        .send()
        .await
        .expect_err("stalled");
    assert!(error.is_timeout(), "{error:?}");

    // CutOff: the status and headers, then half the body.
    api.fake.fault(Command::Accounts, 0, Fault::CutOff);
    let response = api
        .http
        .post(api.fake.url())
        .header("content-type", "text/xml")
        .body(envelope(Some(&sid), "getaccountsinfolist", &page))
        .send()
        .await
        .expect("headers");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.bytes().await.is_err(), "the body is cut off");

    api.fake.fault(Command::Accounts, 0, Fault::Status(500));
    let (status, content_type, body) = api
        .post_typed(
            "text/xml",
            &envelope(Some(&sid), "getaccountsinfolist", &page),
        )
        .await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (
            500,
            "text/plain; charset=utf-8",
            "500 Internal Server Error"
        )
    );

    api.fake.fault(Command::Accounts, 0, Fault::Html);
    let (status, content_type, body) = api
        .post_typed(
            "text/xml",
            &envelope(Some(&sid), "getaccountsinfolist", &page),
        )
        .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert!(body.contains("502 Bad Gateway"), "{body}");

    api.fake.fault(
        Command::Accounts,
        0,
        Fault::ErrorIq("license_expired".into()),
    );
    let body = api.call(Some(&sid), "getaccountsinfolist", &page).await;
    assert_eq!(body, error_iq("license_expired"));

    api.fake.fault(Command::Accounts, 0, Fault::NoOverallCount);
    let body = api.call(Some(&sid), "getaccountsinfolist", &page).await;
    assert!(!body.contains("overallcount"), "{body}");
    assert_eq!(values(&body, "email"), values(&normal, "email"));

    api.fake.fault(Command::Accounts, 0, Fault::ShortPage);
    let body = api.call(Some(&sid), "getaccountsinfolist", &page).await;
    assert_eq!(value(&body, "overallcount").as_deref(), Some("7"));
    assert_eq!(values(&body, "email"), values(&normal, "email")[..2]);

    api.fake.fault(Command::Accounts, 0, Fault::Malformed);
    let body = api.call(Some(&sid), "getaccountsinfolist", &page).await;
    assert!(
        normal.starts_with(&body) && body.len() < normal.len(),
        "{body}"
    );
    assert!(
        body.rfind('<') > body.rfind('>'),
        "ends inside a tag: {body}"
    );

    // Each fired once: the same request is answered normally now.
    assert_eq!(
        api.call(Some(&sid), "getaccountsinfolist", &page).await,
        normal
    );

    // `after` skips matching requests only; Any matches every command.
    api.fake
        .fault(Command::Accounts, 1, Fault::ErrorIq("second".into()));
    let domains = domains_params("", 0, 10);
    assert!(sid_of(&api.call(Some(&sid), "getdomainsinfolist", &domains).await).is_some());
    assert_eq!(
        api.call(Some(&sid), "getaccountsinfolist", &page).await,
        normal
    );
    assert_eq!(
        api.call(Some(&sid), "getaccountsinfolist", &page).await,
        error_iq("second")
    );
    api.fake
        .fault(Command::Any, 0, Fault::ErrorIq("any".into()));
    assert_eq!(
        api.call(Some(&sid), "getdomainsinfolist", &domains).await,
        error_iq("any")
    );
    api.fake.fault(Command::Members, 0, Fault::Status(503));
    api.fake.fault(Command::Domains, 5, Fault::Status(503));
    api.fake.clear_faults();
    assert!(sid_of(&api.call(Some(&sid), "getdomainsinfolist", &domains).await).is_some());

    // A refused login opens no session; one whose answer is damaged does.
    let opened = api.fake.sessions_opened();
    api.fake.fault(Command::Authenticate, 0, Fault::Status(502));
    let login = envelope(None, "authenticate", &auth_params(ADMIN, ADMIN_PASSWORD));
    assert_eq!(api.post_typed("text/xml", &login).await.0, 502);
    assert_eq!(api.fake.sessions_opened(), opened);
    api.fake.fault(Command::Authenticate, 0, Fault::Malformed);
    let body = api
        .call(None, "authenticate", &auth_params(ADMIN, ADMIN_PASSWORD))
        .await;
    assert!(!body.ends_with("</iq>"), "{body}");
    assert_eq!(api.fake.sessions_opened(), opened + 1);
    // List faults leave other commands as they are.
    api.fake.fault(Command::Any, 0, Fault::ShortPage);
    assert!(api.login(ALICE, ALICE_PASSWORD).await.is_ok());

    // Latency before every answer.
    api.fake.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    api.call(Some(&sid), "getdomainsinfolist", &domains).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    api.fake.set_latency(Duration::ZERO);
    assert_eq!(api.fake.request_count(Command::Accounts), 12);
}

#[tokio::test]
async fn a_generated_directory_of_100_000_users_serves_pages_quickly() {
    let api = start().await;
    let started = Instant::now();
    api.fake.generate(10, 10_000, 10, 100);
    eprintln!("generated 100,000 users in {:?}", started.elapsed());
    // `generate` replaces the directory, the administrator with it.
    api.fake.admin(ADMIN, ADMIN_PASSWORD);
    let sid = api.admin_sid().await;

    let domain = IceWarpFake::generated_domain(9);
    let started = Instant::now();
    let params = accounts_params(&domain, "", "0", 9000, 5000);
    let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
    let elapsed = started.elapsed();
    eprintln!("a page of 1000 of 10,000 in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let emails = values(&body, "email");
    assert_eq!(emails.len(), 1000, "count is at most 1000");
    assert_eq!(emails[0], IceWarpFake::generated_email(9, 9000));
    assert_eq!(emails[999], IceWarpFake::generated_email(9, 9999));
    assert_eq!(value(&body, "overallcount").as_deref(), Some("10000"));
    let params = accounts_params(&domain, "", "", 0, 1);
    let body = api.call(Some(&sid), "getaccountsinfolist", &params).await;
    assert_eq!(value(&body, "overallcount").as_deref(), Some("10010"));
    assert_eq!(values(&body, "email"), [IceWarpFake::generated_group(9, 0)]);

    let body = api
        .call(
            Some(&sid),
            "getdomainsinfolist",
            &domains_params("", 0, 100),
        )
        .await;
    assert_eq!(value(&body, "overallcount").as_deref(), Some("11"));
    let group = IceWarpFake::generated_group(3, 5);
    let body = api
        .call(
            Some(&sid),
            "getaccountmemberinfolist",
            &members_params(&group, 0, 1000),
        )
        .await;
    let members = values(&body, "val");
    assert_eq!(members.len(), 100);
    assert_eq!(members[0], IceWarpFake::generated_email(3, 500));
    let user = IceWarpFake::generated_email(4, 1234);
    assert!(api.login(&user, GENERATED_PASSWORD).await.is_ok());
    assert_eq!(api.fake.accounts_of(&domain).len(), 10_010);
}

#[tokio::test]
async fn tls_refuses_a_client_that_does_not_trust_the_certificate() {
    let api = start().await;
    let login = envelope(None, "authenticate", &auth_params(ADMIN, ADMIN_PASSWORD));
    let other = IceWarpFake::start().await;
    assert_ne!(other.certificate_pem(), api.fake.certificate_pem());
    for roots in [vec![], vec![other.certificate_pem()]] {
        let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
        let client = http_client(tls_trusting(&roots), Duration::from_secs(5));
        let error = client
            .post(api.fake.url())
            .header("content-type", "text/xml")
            .body(login.clone())
            .send()
            .await
            .expect_err("untrusted certificate");
        assert!(error.is_connect(), "{error:?}");
    }
    // Plain HTTP gets no answer either.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let url = api.fake.url().replacen("https://", "http://", 1);
    assert!(plain.post(url).body(login.clone()).send().await.is_err());
    assert_eq!(api.fake.request_count(Command::Any), 0);

    // Pasted into a profile's "Trusted certificate (PEM)", it is Roster's own pin.
    let pinned = roster::tls::trusting(&api.fake.certificate_pem()).expect("pin");
    let client = http_client((*pinned).clone(), Duration::from_secs(5));
    let response = client
        .post(api.fake.url())
        .header("content-type", "text/xml")
        .body(login.clone())
        .send()
        .await
        .expect("pinned");
    assert!(sid_of(&response.text().await.expect("body")).is_some());
    let wrong_pin = roster::tls::trusting(&other.certificate_pem()).expect("pin");
    let client = http_client((*wrong_pin).clone(), Duration::from_secs(5));
    let sent = client
        .post(api.fake.url())
        .header("content-type", "text/xml")
        .body(login.clone())
        .send()
        .await;
    assert!(sent.is_err(), "another certificate's pin is refused");

    // The certificate names localhost too.
    let url = api.fake.url().replacen("127.0.0.1", "localhost", 1);
    let response = api
        .http
        .post(url)
        .header("content-type", "text/xml")
        .body(login)
        .send()
        .await
        .expect("localhost");
    assert!(sid_of(&response.text().await.expect("body")).is_some());
    assert!(api.fake.url().starts_with("https://127.0.0.1:"));
    assert!(api.fake.url().ends_with("/icewarpapi/"));
}
