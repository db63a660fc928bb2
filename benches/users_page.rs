//! Users-page benchmark: seeds 100,000 users, then loads the searched users page from 16
//! concurrent clients and reports p50/p99 and throughput next to `/healthz` on the same
//! server in the same run (the floor). Runs on SQLite and on a private PostgreSQL cluster.
//!
//! `cargo bench --bench users_page` (release build). Target: p99 ≤ 20 ms on SQLite.

mod common;
#[path = "../tests/support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use roster::config::Settings;
use roster::db::DbConnection;
use roster::startup::Application;
use roster::state::AppState;
use secrecy::SecretString;

const USERS: usize = 100_000;
const CLIENTS: usize = 16;
const REQUESTS_PER_CLIENT: usize = 250;
const ADMIN_PASSWORD: &str = "benchmark admin password";

const FIRST: [&str; 20] = [
    "Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Karla",
    "Lukas", "Mia", "Noah", "Olga", "Paul", "Rosa", "Simon", "Tara", "Vera",
];
const LAST: [&str; 50] = [
    "Miller", "Schmidt", "Novak", "Garcia", "Rossi", "Dubois", "Jensen", "Kowalski", "Silva",
    "Horvat", "Nagy", "Popescu", "Ivanova", "Murphy", "Smith", "Jones", "Brown", "Wilson",
    "Taylor", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green",
    "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips",
    "Evans", "Turner", "Torres", "Parker", "Collins", "Edwards", "Stewart", "Morris", "Murray",
    "Ward", "Cook", "Rogers", "Morgan",
];

fn main() -> anyhow::Result<()> {
    roster::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        bench("SQLite", None).await?;
        let pg = servers::start("postgres", Duration::from_secs(60)).map_err(anyhow::Error::msg)?;
        let url = pg.fact("DATABASE_URL").to_owned();
        let mut admin = DbConnection::open_explained(&url)?;
        admin.batch_execute("CREATE DATABASE roster_bench")?;
        let bench_url = format!(
            "{}/roster_bench",
            url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url)
        );
        bench("PostgreSQL", Some(bench_url)).await
    })
}

async fn bench(backend: &str, database_url: Option<String>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database_url = database_url
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("roster.db").display()));
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        database_url: SecretString::from(database_url.clone()),
        master_key: Some(roster::crypto::MasterKey::generate().to_base64()),
        admin_password: Some(SecretString::from(ADMIN_PASSWORD)),
        log: "warn".into(),
        ..Settings::default()
    };
    let state = tokio::task::spawn_blocking(move || AppState::open(settings)).await??;
    roster::accounts::ensure_first_admin(&state).await?;
    let seeded = Instant::now();
    seed(&mut DbConnection::open_explained(&database_url)?)?;
    println!(
        "{backend}: seeded {USERS} users in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    query_costs(backend, &database_url)?;
    let app = Application::build(state)?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let client = common::signed_in_admin(&base, ADMIN_PASSWORD, CLIENTS).await?;
    let cases = [
        ("/healthz", "floor: /healthz"),
        ("/admin/users", "users page, no search"),
        ("/admin/users?q=miller", "search \"miller\" (2,000 matches)"),
        ("/admin/users?q=example", "search \"example\" (all match)"),
        ("/admin/users?q=user04242", "search \"user04242\" (1 match)"),
        ("page 20", "search \"miller\", page 20 (Next ×19)"),
    ];
    let mut floor_p99 = 0.0;
    for (path, label) in cases {
        let url = if path == "page 20" {
            twentieth_page(&client, &format!("{base}/admin/users?q=miller")).await?
        } else {
            format!("{base}{path}")
        };
        let stats = load(&client, &url).await?;
        if path == "/healthz" {
            floor_p99 = stats.p99;
        }
        let verdict = if path != "/healthz" && path != "/admin/users" {
            if stats.p99 <= 20.0 {
                "  (target p99 ≤ 20 ms: met)"
            } else {
                "  (target p99 ≤ 20 ms: MISSED)"
            }
        } else {
            ""
        };
        println!(
            "{backend}: {label:<38} p50 {:>6.2} ms  p99 {:>6.2} ms  {:>7.0} req/s  p99 ratio to floor {:>5.1}×{verdict}",
            stats.p50,
            stats.p99,
            stats.throughput,
            stats.p99 / floor_p99.max(0.001)
        );
    }
    Ok(())
}

/// The page an admin reaches by pressing Next 19 times from `url`.
async fn twentieth_page(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let base = url.split("/admin").next().unwrap_or_default().to_owned();
    let mut url = url.to_owned();
    for _ in 0..19 {
        let page = client.get(&url).send().await?.text().await?;
        let href = page
            .split("\" rel=\"next\"")
            .next()
            .and_then(|a| a.rsplit("href=\"").next())
            .filter(|_| page.contains("rel=\"next\""))
            .ok_or_else(|| anyhow::anyhow!("no next link on {url}"))?;
        url = format!("{base}{}", href.replace("&#38;", "&"));
    }
    Ok(url)
}

/// The database part alone: one search after another on one connection.
fn query_costs(backend: &str, database_url: &str) -> anyhow::Result<()> {
    let mut conn = DbConnection::open_explained(database_url)?;
    for (query, page) in [
        ("", 1),
        ("miller", 1),
        ("example", 1),
        ("user04242", 1),
        ("miller", 20),
    ] {
        let cap = roster::db::models::users::SEARCH_COUNT_CAP;
        let started = Instant::now();
        for _ in 0..100 {
            roster::db::models::users::search(
                &mut conn,
                query,
                roster::db::models::users::Start::Offset((page - 1) * 50),
                50,
                cap,
            )?;
        }
        println!(
            "{backend}: users::search({query:?}, page {page}) alone: {:.2} ms per call",
            started.elapsed().as_secs_f64() * 10.0
        );
    }
    Ok(())
}

/// Bulk-loads users with their e-mail address and the log-on privilege, 1,000 per statement.
fn seed(conn: &mut DbConnection) -> anyhow::Result<()> {
    let now = roster::db::now();
    conn.batch_execute("BEGIN")?;
    for chunk_start in (0..USERS).step_by(1000) {
        let mut users = String::from(
            "INSERT INTO users (username, username_key, domain, full_name, auth_method, search_text, emails, privileges, created_at, updated_at) VALUES ",
        );
        for i in chunk_start..chunk_start + 1000 {
            let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
            let name = format!("user{i:05}");
            let email = format!(
                "{}.{}{i}@example.test",
                first.to_lowercase(),
                last.to_lowercase()
            );
            let emails = [email];
            let search =
                roster::db::models::users::search_text(&name, &format!("{first} {last}"), &emails);
            let emails = roster::db::models::users::emails_column(&emails);
            if i > chunk_start {
                users.push(',');
            }
            users.push_str(&format!(
                "('{name}', '{name}', '', '{first} {last}', 'local', '{search}', '{emails}', 'log_on', {now}, {now})"
            ));
        }
        conn.batch_execute(&users)?;
    }
    // New users enter SQLite's search index from code (see users::index_search).
    roster::db::models::users::index_search(conn, 0)?;
    conn.batch_execute("COMMIT")?;
    if matches!(conn, DbConnection::Pg(_)) {
        // Measure the steady state, not autovacuum catching up with a bulk load.
        conn.batch_execute("VACUUM ANALYZE")?;
    }
    Ok(())
}

struct Stats {
    p50: f64,
    p99: f64,
    throughput: f64,
}

/// 16 clients, each sending its requests one after another; a short warm-up first.
async fn load(client: &reqwest::Client, url: &str) -> anyhow::Result<Stats> {
    for _ in 0..50 {
        client.get(url).send().await?.bytes().await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(REQUESTS_PER_CLIENT);
            for _ in 0..REQUESTS_PER_CLIENT {
                times.push(common::timed_get(&client, &url).await?);
            }
            Ok::<_, anyhow::Error>(times)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok(Stats {
        p50: pick(0.50),
        p99: pick(0.99),
        throughput: all.len() as f64 / elapsed,
    })
}
