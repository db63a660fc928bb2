//! Sync benchmark of the HTTP kinds: the Application Integration fake listing 100,000 users
//! in one answer, and the IceWarp fake serving 100,000 users in 10 domains (500 a page, as
//! Roster asks) with 100 groups × 100 members, each with a fixed latency per request. In
//! the same run, for each kind:
//! - the floor: the same requests made one after another by a plain HTTP client;
//! - Roster's first sync and a no-change sync into SQLite and into PostgreSQL (a private
//!   cluster, as `tests/run` installs it), as ratios to the floor, and the RSS the first sync
//!   adds. Best of three each.
//!
//! `cargo bench --bench http_sync` (release build); `-- app` or `-- icewarp` runs one kind. Targets: first sync ≤ 2.0× the floor,
//! no-change sync ≤ 1.3×, RSS the first sync adds ≤ 200 MB (the fakes share the process).

#[path = "../tests/support/app_integration.rs"]
mod app_integration_fake;
mod common;
#[path = "../tests/support/icewarp.rs"]
mod icewarp_fake;
#[path = "../tests/support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use roster::db::DbConnection;
use roster::db::models::directory_profiles::ProfileKind;

const USERS: usize = 100_000;
const DOMAINS: usize = 10;
const LATENCY: Duration = Duration::from_millis(20);
const ADMIN: &str = "admin@d000.example.com";

fn main() -> anyhow::Result<()> {
    roster::install_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("ROSTER_LOG").unwrap_or_else(|_| "roster=warn".into()))
        .with_target(false)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(Duration::from_millis(500))
        .build()?;
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runs = |kind: &str| only.as_deref().is_none_or(|o| o == kind);
    runtime.block_on(async {
        let pg = servers::start("postgres", Duration::from_secs(60)).map_err(anyhow::Error::msg)?;
        let url = pg.fact("DATABASE_URL").to_owned();
        let server = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url).to_owned();
        let mut admin = DbConnection::open_explained(&url)?;
        let work = tempfile::tempdir()?;
        let mut n = 0;
        let mut databases = |postgres: bool| -> anyhow::Result<Vec<String>> {
            (0..3)
                .map(|_| {
                    n += 1;
                    if postgres {
                        admin.batch_execute(&format!("CREATE DATABASE roster_http_bench_{n}"))?;
                        Ok(format!("{server}/roster_http_bench_{n}"))
                    } else {
                        Ok(format!("sqlite://{}", work.path().join(format!("r{n}.db")).display()))
                    }
                })
                .collect()
        };

        if runs("app") {
        let app = app_integration_fake::AppIntegrationFake::start().await;
        app.generate(USERS);
        app.set_latency(LATENCY);
        let floor = app_floor(&app).await?;
        println!(
            "Application Integration fake: {USERS} users, {} ms per request; floor {:.2} s",
            LATENCY.as_millis(),
            floor.as_secs_f64()
        );
        for (backend, postgres) in [("SQLite", false), ("PostgreSQL", true)] {
            let urls = databases(postgres)?;
            bench(ProfileKind::ApplicationIntegration, backend, &urls, &app_form(&app), floor, USERS).await?;
        }

        }

        if runs("icewarp") {
        let ice = icewarp_fake::IceWarpFake::start().await;
        ice.generate(DOMAINS, USERS / DOMAINS, 10, 100);
        ice.admin(ADMIN, "bench password");
        ice.set_latency(LATENCY);
        let floor = ice_floor(&ice).await?;
        println!(
            "IceWarp fake: {USERS} users in {DOMAINS} domains, 100 groups × 100 members, {} ms per request; floor {:.2} s",
            LATENCY.as_millis(),
            floor.as_secs_f64()
        );
        for (backend, postgres) in [("SQLite", false), ("PostgreSQL", true)] {
            let urls = databases(postgres)?;
            bench(ProfileKind::IceWarp, backend, &urls, &ice_form(&ice), floor, USERS + 1).await?;
        }
        }
        Ok(())
    })
}

/// `cmd=list` and `cmd=groups`, best of three.
async fn app_floor(fake: &app_integration_fake::AppIntegrationFake) -> anyhow::Result<Duration> {
    let http = reqwest::Client::new();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let users: serde_json::Value = http
            .post(fake.url())
            .form(&[("cmd", "list")])
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            users.as_array().map_or(0, Vec::len) == USERS,
            "floor read the users"
        );
        http.post(fake.url())
            .form(&[("cmd", "groups")])
            .send()
            .await?
            .bytes()
            .await?;
        best = best.min(t.elapsed());
    }
    Ok(best)
}

fn iq(sid: &str, command: &str, params: &str) -> String {
    format!(
        "<iq sid=\"{sid}\"><query xmlns=\"admin:iq:rpc\"><commandname>{command}</commandname><commandparams>{params}</commandparams></query></iq>"
    )
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    text.split(open).nth(1)?.split(close).next()
}

/// The session, the domains, each domain's account pages and each group's members, then
/// logout — what Roster asks, one request after another. Best of three.
async fn ice_floor(fake: &icewarp_fake::IceWarpFake) -> anyhow::Result<Duration> {
    let tls = roster::tls::trusting(&fake.certificate_pem())?;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .build()?;
    let post = |body: String| {
        let http = http.clone();
        let url = fake.url();
        async move {
            let text = http
                .post(url)
                .header("content-type", "text/xml")
                .body(body)
                .send()
                .await?
                .text()
                .await?;
            Ok::<_, anyhow::Error>(text)
        }
    };
    let pages = |sid: String, command: &'static str, params: String| {
        let post = &post;
        async move {
            let mut offset = 0usize;
            let mut texts = Vec::new();
            loop {
                let text = post(iq(
                    &sid,
                    command,
                    &format!("{params}<offset>{offset}</offset><count>500</count>"),
                ))
                .await?;
                let overall: usize = between(&text, "<overallcount>", "</overallcount>")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                offset += 500;
                texts.push(text);
                if offset >= overall {
                    return Ok::<_, anyhow::Error>(texts);
                }
            }
        }
    };
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let login = post(format!(
            "<iq><query xmlns=\"admin:iq:rpc\"><commandname>authenticate</commandname><commandparams><authtype>0</authtype><email>{ADMIN}</email><password>bench password</password><digest></digest><persistentlogin>0</persistentlogin></commandparams></query></iq>"
        ))
        .await?;
        let sid = between(&login, "sid=\"", "\"")
            .unwrap_or_default()
            .to_owned();
        let filter = "<filter><namemask></namemask><typemask></typemask></filter>";
        pages(sid.clone(), "getdomainsinfolist", filter.to_owned()).await?;
        for d in 0..DOMAINS {
            let domain = icewarp_fake::IceWarpFake::generated_domain(d);
            pages(
                sid.clone(),
                "getaccountsinfolist",
                format!("<domainstr>{domain}</domainstr>{filter}"),
            )
            .await?;
            for g in 0..10 {
                let group = icewarp_fake::IceWarpFake::generated_group(d, g);
                pages(
                    sid.clone(),
                    "getaccountmemberinfolist",
                    format!("<who>{group}</who><filter><namemask></namemask></filter>"),
                )
                .await?;
            }
        }
        post(iq(&sid, "logout", "")).await?;
        best = best.min(t.elapsed());
    }
    Ok(best)
}

fn app_form(fake: &app_integration_fake::AppIntegrationFake) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("name", "Bench"),
            ("url", fake.url().as_str()),
            ("timeout_seconds", "120"),
        ])
        .extend_pairs(COMMON)
        .finish()
}

fn ice_form(fake: &icewarp_fake::IceWarpFake) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("name", "Bench"),
            ("server", fake.server().as_str()),
            ("trusted_certificate_pem", fake.certificate_pem().as_str()),
            ("admin_user", ADMIN),
            ("password", "bench password"),
            ("timeout_seconds", "120"),
        ])
        .extend_pairs(COMMON)
        .finish()
}

const COMMON: [(&str, &str); 4] = [
    ("delete_users", "on"),
    ("privilege", "log_on"),
    ("delete_threshold_count", "500"),
    ("delete_threshold_percent", "20"),
];

/// First syncs into fresh databases and no-change syncs, against the floor.
async fn bench(
    kind: ProfileKind,
    backend: &str,
    database_urls: &[String],
    form: &str,
    floor: Duration,
    users: usize,
) -> anyhow::Result<()> {
    println!("{} on {backend}:", kind.label());
    let (figures, _state) = common::first_and_no_change(database_urls, kind, form, users).await?;
    common::report(&figures, floor, 2.0, 1.3);
    Ok(())
}
