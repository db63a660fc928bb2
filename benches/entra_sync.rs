//! Entra ID sync benchmark: the Graph fake (`tests/support/entra/`) serving 100,000 users
//! (999 per page) and 1,000 groups × 100 members, with a fixed latency per request. In the
//! same run:
//! - the floor: the same user pages fetched one after another with a plain HTTP client, plus
//!   the groups' pages and their member pages fetched as concurrently as Roster does;
//! - Roster's first sync into SQLite and a no-change sync, each as a ratio to the floor, and
//!   the peak RSS of the first sync. Best of three each.
//!
//! `cargo bench --bench entra_sync` (release build). Targets: first sync ≤ 1.5× the floor,
//! no-change sync ≤ 1.3×, peak RSS ≤ 200 MB.

mod common;
#[path = "../tests/support/entra.rs"]
mod entra_fake;
#[path = "../tests/support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::time::{Duration, Instant};

use roster::config::Settings;
use roster::db::models::directory_profiles::ProfileKind;
use roster::state::AppState;
use roster::sync::plan::Action;
use secrecy::SecretString;

const USERS: usize = 100_000;
const GROUPS: usize = 1_000;
const MEMBERS: usize = 100;
const LATENCY: Duration = Duration::from_millis(20);
const TENANT: &str = "7d3c1f0e-5b2a-4c9d-8e6f-0a1b2c3d4e5f";
const CLIENT_ID: &str = "0d7c2a4e-1b2c-4d5e-8f90-123456789abc";

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
        let fake = entra_fake::EntraFake::start().await;
        fake.generate(USERS, GROUPS, MEMBERS);
        fake.set_latency(LATENCY);
        let credential = roster::profiles::certificate::generate("bench")?;
        fake.register_app(TENANT, CLIENT_ID, &credential.certificate_pem);
        println!(
            "Graph fake: {USERS} users, {GROUPS} groups × {MEMBERS} members, {} ms per request",
            LATENCY.as_millis()
        );
        let floor = floor(&fake, &credential).await?;
        println!(
            "floor (plain HTTP client, same pages): {:.2} s",
            floor.as_secs_f64()
        );
        bench(&fake, &credential, floor).await
    })
}

/// The same pages Roster reads: users one page after another, groups likewise, then every
/// group's member pages with Roster's concurrency. Best of three.
async fn floor(
    fake: &entra_fake::EntraFake,
    credential: &roster::profiles::certificate::Credential,
) -> anyhow::Result<Duration> {
    let http = reqwest::Client::new();
    let token_url = roster::directory::entra::token_url(fake.base_url(), TENANT);
    let assertion = roster::directory::entra::client_assertion(
        &credential.private_key_pem,
        &credential.certificate_pem,
        CLIENT_ID,
        &token_url,
    )?;
    let token: serde_json::Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("scope", "https://graph.microsoft.com/.default"),
            (
                "client_assertion_type",
                roster::directory::entra::ASSERTION_TYPE,
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await?
        .json()
        .await?;
    let bearer = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pages = |first: String| {
        let (http, bearer) = (http.clone(), bearer.clone());
        async move {
            let mut ids = Vec::new();
            let mut next = Some(first);
            while let Some(url) = next.take() {
                let page: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(&bearer)
                    .send()
                    .await?
                    .json()
                    .await?;
                if let Some(values) = page["value"].as_array() {
                    ids.extend(
                        values
                            .iter()
                            .filter_map(|v| v["id"].as_str().map(str::to_owned)),
                    );
                }
                next = page["@odata.nextLink"].as_str().map(str::to_owned);
            }
            Ok::<_, anyhow::Error>(ids)
        }
    };
    let base = fake.base_url();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let users = pages(format!(
            "{base}/v1.0/users?$select=id,accountEnabled,mail,userPrincipalName,proxyAddresses,displayName,assignedPlans,userType&$top=999"
        ))
        .await?;
        anyhow::ensure!(users.len() == USERS, "floor read {} users", users.len());
        let groups = pages(format!(
            "{base}/v1.0/groups?$select=id,displayName,description&$top=999"
        ))
        .await?;
        let permits = tokio::sync::Semaphore::new(roster::directory::entra::MEMBER_CONCURRENCY);
        let reads: Vec<_> = groups
            .iter()
            .map(|g| {
                let (permits, url) = (
                    &permits,
                    format!("{base}/v1.0/groups/{g}/transitiveMembers?$select=id&$top=999"),
                );
                let pages = &pages;
                async move {
                    let _permit = permits.acquire().await;
                    pages(url).await
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

async fn bench(
    fake: &entra_fake::EntraFake,
    credential: &roster::profiles::certificate::Credential,
    floor: Duration,
) -> anyhow::Result<()> {
    let mut first_time = Duration::MAX;
    let mut peak = 0.0f64;
    let mut last = None;
    for _ in 0..3 {
        if last.take().is_some() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let dir = tempfile::tempdir()?;
        let settings = Settings {
            database_url: SecretString::from(format!(
                "sqlite://{}/roster.db",
                dir.path().display()
            )),
            master_key: Some(roster::crypto::MasterKey::generate().to_base64()),
            log: "warn".into(),
            ..Settings::default()
        };
        let state = tokio::task::spawn_blocking(move || AppState::open(settings)).await??;
        let profile = create_profile(&state, fake, credential).await?;
        let ctx = state.sync_context();
        common::reset_peak_rss();
        let t = Instant::now();
        let first =
            roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "bench", false).await?;
        let took = t.elapsed();
        first_time = first_time.min(took);
        let run_peak = common::peak_rss_mb();
        peak = peak.max(run_peak);
        println!(
            "  first sync into a fresh database: {:.2} s, peak RSS {run_peak:.0} MB",
            took.as_secs_f64()
        );
        anyhow::ensure!(first.status == "succeeded", "first sync: {:?}", first.error);
        let created = first
            .plan
            .as_ref()
            .map(|p| p.count(Action::Create))
            .unwrap_or(0);
        anyhow::ensure!(created == USERS, "created {created} users");
        last = Some((state, ctx, profile, dir));
    }
    let (_state, ctx, profile, _dir) = last.ok_or_else(|| anyhow::anyhow!("no run"))?;
    let mut second_time = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let second =
            roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "bench", false).await?;
        second_time = second_time.min(t.elapsed());
        let plan = second.plan.unwrap_or_default();
        anyhow::ensure!(
            plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty(),
            "a no-change sync changed something"
        );
    }
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let ratio1 = first_time.as_secs_f64() / floor.as_secs_f64();
    let ratio2 = second_time.as_secs_f64() / floor.as_secs_f64();
    println!(
        "first sync {:.2} s = {ratio1:.2}× floor (target ≤ 1.5×: {})",
        first_time.as_secs_f64(),
        verdict(ratio1 <= 1.5)
    );
    println!(
        "no-change sync {:.2} s = {ratio2:.2}× floor (target ≤ 1.3×: {})",
        second_time.as_secs_f64(),
        verdict(ratio2 <= 1.3)
    );
    println!(
        "peak RSS during the first sync {peak:.0} MB (target ≤ 200 MB: {})",
        verdict(peak <= 200.0)
    );
    Ok(())
}

/// An Entra ID profile pointed at the fake, saved as the form would, with the bench's
/// certificate imported.
async fn create_profile(
    state: &AppState,
    fake: &entra_fake::EntraFake,
    credential: &roster::profiles::certificate::Credential,
) -> anyhow::Result<roster::db::ids::ProfileId> {
    use secrecy::ExposeSecret;
    let base = fake.base_url();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("name", "Bench"),
            ("client_id", CLIENT_ID),
            ("tenant_id", TENANT),
            ("enabled_users_only", "on"),
            ("certificate_mode", "import"),
            ("certificate_import", credential.certificate_pem.as_str()),
            (
                "private_key_import",
                credential.private_key_pem.expose_secret(),
            ),
            ("authority", base),
            ("graph_url", base),
            ("timeout_seconds", "60"),
            ("delete_users", "on"),
            ("privilege", "log_on"),
            ("delete_threshold_count", "500"),
            ("delete_threshold_percent", "20"),
        ])
        .finish();
    let posted = roster::profiles::form::Posted::parse(body.as_bytes());
    let checked = roster::profiles::form::check(ProfileKind::EntraId, &posted, None)
        .map_err(|e| anyhow::anyhow!("profile form: {e:?}"))?;
    let key = state.master_key.clone();
    let saved = state
        .db
        .run(move |c| {
            roster::profiles::store::create(c, &key, ProfileKind::EntraId, checked)
                .map_err(anyhow::Error::from)
        })
        .await?;
    Ok(saved.id)
}
