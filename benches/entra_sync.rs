//! Entra ID sync benchmark: the Graph fake (`tests/support/entra/`) serving 100,000 users
//! (999 per page) and 1,000 groups × 100 members, with a fixed latency per request. In the
//! same run:
//! - the floor: the same user pages fetched one after another with a plain HTTP client, plus
//!   the groups' pages and their member pages fetched as concurrently as Roster does;
//! - Roster's first sync into SQLite and a no-change sync, each as a ratio to the floor, and
//!   the peak RSS of the first sync. Best of three each;
//! - "Sign in with Microsoft": Roster's callback (from the provider's redirect to Roster's
//!   answer: code exchange, ID token checks, user lookup, session) against the token
//!   request's own round trip made by a plain client, both over the fake without latency.
//!
//! - a no-change run that reads only the delta rounds (the profile's cursor from the run
//!   before): its time and its requests, token included.
//!
//! `cargo bench --bench entra_sync` (release build). Targets: first sync ≤ 1.5× the floor,
//! no-change sync reading everything ≤ 1.3×, delta no-change ≤ 0.1 s in ≤ 3 requests, RSS the first sync adds ≤ 200 MB (the fake shares the process); callback p50 ≤ token round trip p50 + 5 ms.

mod common;
#[path = "../tests/support/entra.rs"]
mod entra_fake;
#[path = "../tests/support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::time::{Duration, Instant};

use roster::db::models::directory_profiles::ProfileKind;
use roster::state::AppState;

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
        let dir = tempfile::tempdir()?;
        let urls: Vec<String> = (1..=3)
            .map(|i| format!("sqlite://{}/roster-{i}.db", dir.path().display()))
            .collect();
        let (mut figures, state) = common::first_and_no_change(
            &urls,
            ProfileKind::EntraId,
            &form(&fake, &credential),
            USERS,
        )
        .await?;
        // Those no-change runs read the delta rounds; the complete read is measured here.
        let (complete, delta, requests) = no_change_reads(&state, &fake).await?;
        let (small, small_requests) = small_change(&state, &fake).await?;
        figures.no_change = complete;
        common::report(&figures, floor, 1.5, 1.3);
        let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
        println!(
            "delta no-change sync {:.3} s (target ≤ 0.1 s: {}), {requests} requests (target ≤ 3: {})",
            delta.as_secs_f64(),
            verdict(delta.as_secs_f64() <= 0.1),
            verdict(requests <= 3)
        );
        println!(
            "delta sync of one renamed user and one group with a new member: {:.3} s, {small_requests} requests",
            small.as_secs_f64()
        );
        fake.set_latency(Duration::ZERO);
        callback((state, dir), &fake, &credential).await
    })
}

/// The benchmark's Entra ID profile.
async fn entra_profile(state: &AppState) -> anyhow::Result<roster::db::ids::ProfileId> {
    use roster::db::models::directory_profiles;
    let profiles = state
        .db
        .run(|c| {
            directory_profiles::of_kinds(c, &[ProfileKind::EntraId]).map_err(anyhow::Error::from)
        })
        .await?;
    profiles
        .first()
        .map(|p| p.id)
        .ok_or_else(|| anyhow::anyhow!("no profile"))
}

/// A no-change run that reads everything (the cursor dropped first) and one that reads the
/// delta rounds, best of three each, with the requests the delta run made (token included).
async fn no_change_reads(
    state: &AppState,
    fake: &entra_fake::EntraFake,
) -> anyhow::Result<(Duration, Duration, usize)> {
    use roster::db::models::change_cursors;
    let profile = entra_profile(state).await?;
    let ctx = state.sync_context();
    let run = || roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "bench", false);
    let (mut complete, mut delta, mut requests) = (Duration::MAX, Duration::MAX, usize::MAX);
    for _ in 0..3 {
        state
            .db
            .run(move |c| change_cursors::clear(c, profile).map_err(anyhow::Error::from))
            .await?;
        let t = Instant::now();
        let outcome = run().await?;
        complete = complete.min(t.elapsed());
        anyhow::ensure!(outcome.status == "succeeded", "{:?}", outcome.error);

        let before = fake.request_count(entra_fake::Route::Any);
        let t = Instant::now();
        let outcome = run().await?;
        delta = delta.min(t.elapsed());
        requests = requests.min(fake.request_count(entra_fake::Route::Any) - before);
        let plan = outcome.plan.unwrap_or_default();
        anyhow::ensure!(
            outcome.status == "succeeded" && plan.users.is_empty() && plan.users_unchanged == USERS,
            "a delta no-change run: {:?}",
            outcome.error
        );
    }
    Ok((complete, delta, requests))
}

/// A delta run after one user is renamed and one group gains a member: time and requests.
async fn small_change(
    state: &AppState,
    fake: &entra_fake::EntraFake,
) -> anyhow::Result<(Duration, usize)> {
    let profile = entra_profile(state).await?;
    let user = entra_fake::EntraFake::generated_user_id(7);
    fake.upsert_user(entra_fake::GraphUser::member(
        &user,
        "renamed7@example.test",
        "Renamed Seven",
    ));
    let group = entra_fake::EntraFake::generated_group_id(3);
    let members = (0..=MEMBERS)
        .map(|k| {
            entra_fake::Member::User(entra_fake::EntraFake::generated_user_id(3 * MEMBERS + k))
        })
        .collect();
    fake.upsert_group(entra_fake::GraphGroup::new(&group, "Group 3", members));
    let ctx = state.sync_context();
    let before = fake.request_count(entra_fake::Route::Any);
    let t = Instant::now();
    let outcome =
        roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "bench", false).await?;
    let took = t.elapsed();
    let plan = outcome.plan.unwrap_or_default();
    anyhow::ensure!(
        outcome.status == "succeeded" && plan.users.len() == 1 && plan.memberships_added.len() == 1,
        "a small delta: {:?}, {} user changes, {} memberships added",
        outcome.error,
        plan.users.len(),
        plan.memberships_added.len()
    );
    Ok((took, fake.request_count(entra_fake::Route::Any) - before))
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

/// An Entra ID profile's form, pointed at the fake, with the bench's certificate imported.
fn form(
    fake: &entra_fake::EntraFake,
    credential: &roster::profiles::certificate::Credential,
) -> String {
    use secrecy::ExposeSecret;
    let base = fake.base_url();
    url::form_urlencoded::Serializer::new(String::new())
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
        .finish()
}

const SIGN_INS: usize = 200;

/// Roster's OpenID callback against the token request's own round trip (p50 of each).
async fn callback(
    state: (AppState, tempfile::TempDir),
    fake: &entra_fake::EntraFake,
    credential: &roster::profiles::certificate::Credential,
) -> anyhow::Result<()> {
    let (state, _dir) = state;
    let profile = state
        .db
        .run(|c| {
            roster::db::models::directory_profiles::list(c, "", false).map_err(anyhow::Error::from)
        })
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;
    let slug = roster::profiles::KindSettings::of(&profile)?
        .redirect_slug()
        .map(str::to_owned)
        .unwrap_or_default();
    let mut settings = (*state.settings).clone();
    settings.listen = "127.0.0.1:0".into();
    let state = AppState {
        settings: std::sync::Arc::new(settings),
        ..state
    };
    let app = roster::startup::Application::build(state)?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let user = entra_fake::EntraFake::generated_user_id(0);
    fake.sign_in_as(entra_fake::IdClaims::new(&user, "bench user", "Bench User"));

    let no_redirects = || {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
    };
    let mut roster_ms = Vec::new();
    for _ in 0..SIGN_INS {
        let client = no_redirects()?;
        let page = client
            .get(format!("{base}/login"))
            .send()
            .await?
            .text()
            .await?;
        let token = common::csrf_token_in(&page);
        let started = client
            .post(format!("{base}/login/oidc/{slug}"))
            .form(&[("csrf_token", token.as_str()), ("next", "")])
            .send()
            .await?;
        let authorize = started
            .headers()
            .get("refresh")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once("url="))
            .map(|(_, u)| u.to_owned())
            .ok_or_else(|| anyhow::anyhow!("no provider URL"))?;
        let answer = client.get(&authorize).send().await?;
        let back = answer
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow::anyhow!("no callback"))?
            .to_owned();
        let t = Instant::now();
        let res = client.get(&back).send().await?;
        roster_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            res.status().as_u16() == 303,
            "callback answered {}",
            res.status()
        );
    }

    // The same token request by a plain client: a code of its own, the assertion signed
    // before the clock starts.
    let token_url = roster::directory::entra::token_url(fake.base_url(), TENANT);
    let redirect = format!("{base}/login/oidc/{slug}/callback");
    let mut token_ms = Vec::new();
    for _ in 0..SIGN_INS {
        let client = no_redirects()?;
        let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
        let authorize = url::Url::parse_with_params(
            &format!("{}/{TENANT}/oauth2/v2.0/authorize", fake.base_url()),
            &[
                ("client_id", CLIENT_ID),
                ("response_type", "code"),
                ("redirect_uri", redirect.as_str()),
                ("scope", "openid profile email"),
                ("state", "s"),
                ("nonce", "n"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )?;
        let answer = client.get(authorize).send().await?;
        let back = answer
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let code = url::Url::parse(back)?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| anyhow::anyhow!("no code"))?;
        let assertion = roster::directory::entra::client_assertion(
            &credential.private_key_pem,
            &credential.certificate_pem,
            CLIENT_ID,
            &token_url,
        )?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.secret().as_str()),
            ("client_id", CLIENT_ID),
            (
                "client_assertion_type",
                roster::directory::entra::ASSERTION_TYPE,
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let t = Instant::now();
        let res = client.post(&token_url).form(&form).send().await?;
        let body = res.bytes().await?;
        token_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(body.windows(8).any(|w| w == b"id_token"), "no id_token");
    }
    let p50 = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (callback_p50, token_p50) = (p50(&mut roster_ms), p50(&mut token_ms));
    let extra = callback_p50 - token_p50;
    println!(
        "OpenID callback p50 {callback_p50:.2} ms, token request p50 {token_p50:.2} ms: {extra:.2} ms more (target ≤ 5 ms: {})",
        if extra <= 5.0 { "ok" } else { "MISSED" }
    );
    Ok(())
}
