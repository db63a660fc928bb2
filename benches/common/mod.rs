//! What the benchmarks share: saving a profile as the form would (the test slapd's, or any
//! kind's), the first-and-no-change sync measurement, the peak resident set size, the CSRF
//! token of a page.

#![allow(dead_code)]

use roster::db::models::directory_profiles::ProfileKind;
use roster::state::AppState;

/// A generic LDAP profile of the test slapd, saved as the profile form would.
pub async fn create_profile(
    state: &AppState,
    slapd: &crate::servers::ExternalServer,
    mfa_by_default: bool,
) -> anyhow::Result<roster::db::ids::ProfileId> {
    create_profile_in(state, slapd, mfa_by_default, "Bench", "example.test").await
}

/// `create_profile` under another name, its users in `domain`.
pub async fn create_profile_in(
    state: &AppState,
    slapd: &crate::servers::ExternalServer,
    mfa_by_default: bool,
    name: &str,
    domain: &str,
) -> anyhow::Result<roster::db::ids::ProfileId> {
    let server = slapd
        .fact("LDAP_URL")
        .trim_start_matches("ldap://")
        .trim_end_matches('/');
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("name", name),
            ("server", server),
            ("domain", domain),
            ("protocol", "starttls"),
            ("bind_dn", slapd.fact("BIND_DN")),
            ("bind_password", slapd.fact("BIND_PASSWORD")),
            ("base_dn", slapd.fact("BASE_DN")),
            ("timeout_seconds", "60"),
            ("user_filter", "(objectClass=inetOrgPerson)"),
            ("username_attribute", "uid"),
            ("full_name_attribute", "cn"),
            ("email_attribute", "mail"),
            ("group_filter", "(objectClass=groupOfNames)"),
            ("group_name_attribute", "cn"),
            ("group_description_attribute", "description"),
            ("group_members_attribute", "member"),
            ("delete_users", "on"),
            ("mfa_by_default", if mfa_by_default { "on" } else { "" }),
            ("privilege", "log_on"),
            ("privilege", "read_own_archive"),
            ("delete_threshold_count", "500"),
            ("delete_threshold_percent", "20"),
        ])
        .finish();
    save_profile(state, ProfileKind::GenericLdap, &body).await
}

/// A profile of `kind` saved from a form body, as the admin page would save it.
pub async fn save_profile(
    state: &AppState,
    kind: ProfileKind,
    form_body: &str,
) -> anyhow::Result<roster::db::ids::ProfileId> {
    let posted = roster::profiles::form::Posted::parse(form_body.as_bytes());
    let checked = roster::profiles::form::check(kind, &posted, None)
        .map_err(|e| anyhow::anyhow!("profile form: {e:?}"))?;
    let key = state.master_key.clone();
    let saved = state
        .db
        .run(move |c| {
            roster::profiles::store::create(c, &key, kind, checked).map_err(anyhow::Error::from)
        })
        .await?;
    Ok(saved.id)
}

/// Best first sync (each into a fresh database), best no-change sync (three on the last
/// database), and the most RSS a first sync added.
pub struct SyncFigures {
    pub first: std::time::Duration,
    pub no_change: std::time::Duration,
    pub peak_mb: f64,
}

/// Saves the profile `form` describes into each database in turn and synchronises it
/// there (expecting `users` created), then runs three no-change syncs on the last. Returns
/// the figures and the last database's state.
pub async fn first_and_no_change(
    database_urls: &[String],
    kind: ProfileKind,
    form: &str,
    users: usize,
) -> anyhow::Result<(SyncFigures, AppState)> {
    use roster::sync::plan::Action;
    use std::time::{Duration, Instant};
    let mut figures = SyncFigures {
        first: Duration::MAX,
        no_change: Duration::MAX,
        peak_mb: 0.0,
    };
    let mut last = None;
    for database_url in database_urls {
        // The previous database's pool goes, and the runtime's idle blocking threads with
        // the memory their allocator heaps hold, before the next first sync is measured.
        if last.take().is_some() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let settings = roster::config::Settings {
            database_url: secrecy::SecretString::from(database_url.clone()),
            master_key: Some(roster::crypto::MasterKey::generate().to_base64()),
            log: "warn".into(),
            ..roster::config::Settings::default()
        };
        let state = tokio::task::spawn_blocking(move || AppState::open(settings)).await??;
        let profile = save_profile(&state, kind, form).await?;
        let ctx = state.sync_context();
        reset_peak_rss();
        // The fake's directory lives in this process too: Roster's share is the growth.
        let before = peak_rss_mb();
        let t = Instant::now();
        let run =
            roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "bench", false).await?;
        let took = t.elapsed();
        figures.first = figures.first.min(took);
        let run_peak = peak_rss_mb();
        figures.peak_mb = figures.peak_mb.max(run_peak - before);
        println!(
            "  first sync into a fresh database: {:.2} s, RSS {before:.0} MB (the fake's directory included) → peak {run_peak:.0} MB",
            took.as_secs_f64()
        );
        anyhow::ensure!(run.status == "succeeded", "first sync: {:?}", run.error);
        let created = run
            .plan
            .as_ref()
            .map(|p| p.count(Action::Create))
            .unwrap_or(0);
        anyhow::ensure!(created == users, "created {created} users");
        last = Some((state, ctx, profile));
    }
    let (state, ctx, profile) = last.ok_or_else(|| anyhow::anyhow!("no database"))?;
    for _ in 0..3 {
        let t = Instant::now();
        let run =
            roster::sync::run(&ctx, profile, roster::sync::Trigger::Cli, "bench", false).await?;
        figures.no_change = figures.no_change.min(t.elapsed());
        let plan = run.plan.unwrap_or_default();
        anyhow::ensure!(
            plan.users.is_empty() && plan.groups.is_empty() && plan.memberships_added.is_empty(),
            "a no-change sync changed something"
        );
    }
    Ok((figures, state))
}

/// Prints the figures as ratios to the floor, each against its target.
pub fn report(
    figures: &SyncFigures,
    floor: std::time::Duration,
    first_target: f64,
    no_change_target: f64,
) {
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let first = figures.first.as_secs_f64() / floor.as_secs_f64();
    let no_change = figures.no_change.as_secs_f64() / floor.as_secs_f64();
    println!(
        "first sync {:.2} s = {first:.2}× floor (target ≤ {first_target}×: {})",
        figures.first.as_secs_f64(),
        verdict(first <= first_target)
    );
    println!(
        "no-change sync {:.2} s = {no_change:.2}× floor (target ≤ {no_change_target}×: {})",
        figures.no_change.as_secs_f64(),
        verdict(no_change <= no_change_target)
    );
    println!(
        "RSS the first sync adds {:.0} MB (target ≤ 200 MB: {})",
        figures.peak_mb,
        verdict(figures.peak_mb <= 200.0)
    );
}

/// Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The `csrf_token` of the first form on a page (empty if there is none).
pub fn csrf_token_in(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).map(|i| i + marker.len()).unwrap_or(0);
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU seconds this process has used so far (user + system), from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after ") ".
            let rest = s.rsplit_once(") ")?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks_per_second)
        })
        .unwrap_or(0.0)
}

/// A client signed in as the admin `ensure_first_admin` made with `password`, keeping
/// `clients` idle connections.
pub async fn signed_in_admin(
    base: &str,
    password: &str,
    clients: usize,
) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(clients)
        .build()?;
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let token = csrf_token_in(&page);
    let res = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "admin"),
            ("password", password),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        res.status().as_u16() == 303,
        "admin sign-in failed: {}",
        res.status()
    );
    Ok(client)
}

/// One GET with its whole body read, in milliseconds; anything but success is an error.
pub async fn timed_get(client: &reqwest::Client, url: &str) -> anyhow::Result<f64> {
    let t = std::time::Instant::now();
    let res = client.get(url).send().await?;
    anyhow::ensure!(res.status().is_success(), "{url}: {}", res.status());
    res.bytes().await?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}
