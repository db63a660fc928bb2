//! Google Workspace sync benchmark: the Directory API fake (`tests/support/google/`)
//! serving 100,000 users (500 per page) and 1,000 groups × 100 members, with a fixed
//! latency per request. In the same run:
//! - the floor: the same user pages fetched one after another with a plain HTTP client, plus
//!   the groups' pages and their member pages fetched as concurrently as Roster does;
//! - Roster's first sync into SQLite and a no-change sync, each as a ratio to the floor, and
//!   the RSS the first sync adds. Best of three each.
//!
//! `cargo bench --bench google_sync` (release build). Targets: first sync ≤ 1.5× the floor,
//! no-change sync ≤ 1.3×, RSS the first sync adds ≤ 200 MB (the fake shares the process).

mod common;
#[path = "../tests/support/google.rs"]
mod google_fake;
#[path = "../tests/support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::time::{Duration, Instant};

use roster::db::models::directory_profiles::ProfileKind;
use secrecy::SecretString;

const USERS: usize = 100_000;
const GROUPS: usize = 1_000;
const MEMBERS: usize = 100;
const LATENCY: Duration = Duration::from_millis(20);
const ADMIN: &str = "user0@example.com";

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
    runtime.block_on(async {
        let fake = google_fake::GoogleFake::start().await;
        // user0@example.com is an administrator: the one the service account acts as.
        fake.generate(USERS, GROUPS, MEMBERS);
        fake.set_latency(LATENCY);
        let account = fake.new_service_account("bench@bench-project.iam.gserviceaccount.com");
        println!(
            "Directory API fake: {USERS} users, {GROUPS} groups × {MEMBERS} members, {} ms per request",
            LATENCY.as_millis()
        );
        let floor = floor(&fake, &account).await?;
        println!(
            "floor (plain HTTP client, same pages): {:.2} s",
            floor.as_secs_f64()
        );
        let dir = tempfile::tempdir()?;
        let urls: Vec<String> = (1..=3)
            .map(|i| format!("sqlite://{}/roster-{i}.db", dir.path().display()))
            .collect();
        let (figures, _state) = common::first_and_no_change(
            &urls,
            ProfileKind::GoogleWorkspace,
            &form(&fake, &account),
            USERS,
        )
        .await?;
        common::report(&figures, floor, 1.5, 1.3);
        Ok(())
    })
}

/// The same pages Roster reads: users one page after another, groups likewise, then every
/// group's member pages with Roster's concurrency. Best of three.
async fn floor(
    fake: &google_fake::GoogleFake,
    account: &google_fake::ServiceAccount,
) -> anyhow::Result<Duration> {
    let http = reqwest::Client::new();
    let key = roster::directory::google::ServiceAccountKey::from_json(&SecretString::from(
        account.key_json.clone(),
    ))?;
    let token_url = fake.token_url();
    let assertion = roster::directory::google::assertion(&key, ADMIN, &token_url)?;
    let token: serde_json::Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", roster::directory::google::GRANT_TYPE),
            ("assertion", assertion.as_str()),
        ])
        .send()
        .await?
        .json()
        .await?;
    let bearer = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pages = |first: String, list: &'static str| {
        let (http, bearer) = (http.clone(), bearer.clone());
        async move {
            let mut ids = Vec::new();
            let mut url = first.clone();
            loop {
                let page: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(&bearer)
                    .send()
                    .await?
                    .json()
                    .await?;
                if let Some(values) = page[list].as_array() {
                    ids.extend(
                        values
                            .iter()
                            .filter_map(|v| v["id"].as_str().map(str::to_owned)),
                    );
                }
                match page["nextPageToken"].as_str() {
                    Some(t) => url = format!("{first}&pageToken={t}"),
                    None => break,
                }
            }
            Ok::<_, anyhow::Error>(ids)
        }
    };
    let base = fake.base_url();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let users = pages(
            format!("{base}/admin/directory/v1/users?customer=my_customer&maxResults=500&projection=basic&fields=nextPageToken,users(id,primaryEmail,name/fullName,suspended,archived,aliases)"),
            "users",
        )
        .await?;
        anyhow::ensure!(users.len() == USERS, "floor read {} users", users.len());
        let groups = pages(
            format!("{base}/admin/directory/v1/groups?customer=my_customer&maxResults=200&fields=nextPageToken,groups(id,email,name,description)"),
            "groups",
        )
        .await?;
        let permits = tokio::sync::Semaphore::new(roster::directory::google::MEMBER_CONCURRENCY);
        let reads: Vec<_> = groups
            .iter()
            .map(|g| {
                let (permits, url) = (
                    &permits,
                    format!("{base}/admin/directory/v1/groups/{g}/members?includeDerivedMembership=true&maxResults=200&fields=nextPageToken,members(id,type)"),
                );
                let pages = &pages;
                async move {
                    let _permit = permits.acquire().await;
                    pages(url, "members").await
                }
            })
            .collect();
        for read in futures_util::future::join_all(reads).await {
            read?;
        }
        best = best.min(t.elapsed());
    }
    Ok(best)
}

/// The Google profile's form, pointed at the fake, with the bench's key.
fn form(fake: &google_fake::GoogleFake, account: &google_fake::ServiceAccount) -> String {
    let token_url = fake.token_url();
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("name", "Bench"),
            ("domain", "example.com"),
            ("admin_user", ADMIN),
            ("service_account_key", account.key_json.as_str()),
            ("oidc_client_id", "bench.apps.googleusercontent.com"),
            ("oidc_client_secret", "bench-secret"),
            ("token_url", token_url.as_str()),
            ("api_url", fake.base_url()),
            ("oidc_issuer", fake.base_url()),
            ("timeout_seconds", "60"),
            ("delete_users", "on"),
            ("privilege", "log_on"),
            ("delete_threshold_count", "500"),
            ("delete_threshold_percent", "20"),
        ])
        .finish()
}
