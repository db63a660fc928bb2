//! `spawn_app`: Roster on port 0 with a fresh database, and a cookie-jar HTTP client.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use roster::config::Settings;
use roster::db::{Db, DbConnection};
use roster::startup::Application;
use roster::state::AppState;
use secrecy::SecretString;

pub const ADMIN_PASSWORD: &str = "admin password for tests";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub db: Db,
    pub backend: Backend,
    pub database_url: String,
    pub dir: std::sync::Arc<tempfile::TempDir>,
    /// The one-time setup path printed at first start when no admin password was given.
    pub setup_link: Option<String>,
    pub master_key: roster::crypto::MasterKey,
}

/// A fresh PostgreSQL database, cloned from a migrated template (much faster than migrating).
pub fn postgres_database() -> String {
    static TEMPLATE: OnceLock<Mutex<String>> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let server_url = crate::support::servers::postgres()
        .fact("DATABASE_URL")
        .to_owned();
    let base = server_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or_default();
    let lock = TEMPLATE.get_or_init(|| {
        let mut admin =
            diesel::PgConnection::establish(&server_url).expect("connect to the test cluster");
        // Separate statements: a multi-statement batch runs in one transaction, which
        // CREATE/DROP DATABASE refuse.
        admin
            .batch_execute("DROP DATABASE IF EXISTS roster_template")
            .expect("drop the template");
        admin
            .batch_execute("CREATE DATABASE roster_template")
            .expect("create the template database");
        let mut template =
            DbConnection::open(&format!("{base}/roster_template")).expect("open the template");
        template.run_migrations().expect("migrate the template");
        Mutex::new(server_url.clone())
    });
    // CREATE DATABASE … TEMPLATE refuses to run while another copy is being made.
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!(
        "roster_t{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = diesel::PgConnection::establish(&guard).expect("connect to the test cluster");
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE roster_template"))
        .expect("create a test database");
    drop(guard);
    format!("{base}/{name}")
}

pub fn test_settings(backend: Backend, dir: &std::path::Path) -> Settings {
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("roster.db").display()),
        Backend::Postgres => postgres_database(),
    };
    Settings {
        listen: "127.0.0.1:0".into(),
        database_url: SecretString::from(database_url),
        master_key: Some(roster::crypto::MasterKey::generate().to_base64()),
        admin_password: Some(SecretString::from(ADMIN_PASSWORD)),
        workers: 1,
        database_pool_size: 4,
        password_hash_concurrency: 2,
        ..Settings::default()
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like `spawn_app`, with a chance to change the settings first.
pub async fn spawn_app_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> TestApp {
    roster::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = {
        let dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || test_settings(backend, &dir))
            .await
            .expect("settings")
    };
    let mut settings = settings;
    change(&mut settings);
    start(backend, settings, dir).await
}

pub async fn start(backend: Backend, settings: Settings, dir: tempfile::TempDir) -> TestApp {
    use secrecy::ExposeSecret;
    let database_url = settings.database_url.expose_secret().to_owned();
    let state = tokio::task::spawn_blocking(move || AppState::open(settings))
        .await
        .expect("join")
        .expect("open the application state");
    let first = roster::accounts::ensure_first_admin(&state)
        .await
        .expect("first admin");
    let setup_link = match first {
        roster::accounts::FirstAdmin::SetupLink(path) => Some(path),
        _ => None,
    };
    let db = state.db.clone();
    let master_key = state.master_key.clone();
    let app = Application::build(state).expect("build the app");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: client(),
        db,
        backend,
        database_url,
        dir: std::sync::Arc::new(dir),
        setup_link,
        master_key,
    }
}

/// Where a redirect points ("" when it is none).
pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A cookie-jar client that does not follow redirects (tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// The `csrf_token` of the first form on a page.
pub fn csrf_token_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("page has a csrf_token field");
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl TestApp {
    /// The same server seen from another browser: a fresh cookie jar.
    pub fn new_client(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            port: self.port,
            client: client(),
            db: self.db.clone(),
            backend: self.backend,
            database_url: self.database_url.clone(),
            dir: self.dir.clone(),
            setup_link: self.setup_link.clone(),
            master_key: self.master_key.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("body")
    }

    /// Posts a form with the CSRF token taken from `form_page` first.
    pub async fn post_form(
        &self,
        form_page: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = csrf_token_in(&self.get_html(form_page).await);
        let mut body: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        body.extend_from_slice(fields);
        self.client
            .post(self.url(path))
            .form(&body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn sign_in(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_form(
            "/login",
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    pub async fn sign_in_as_admin(&self) {
        let res = self.sign_in("admin", ADMIN_PASSWORD).await;
        assert_eq!(res.status().as_u16(), 303, "admin sign-in should redirect");
    }

    /// Creates a local user through the admin form (the caller is signed in as admin).
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        privileges: &[&str],
    ) -> reqwest::Response {
        let mut fields = vec![
            ("username", username),
            ("full_name", "Test User"),
            ("password", password),
            ("password_confirm", password),
        ];
        for p in privileges {
            fields.push(("privilege", p));
        }
        self.post_form("/admin/users/new", "/admin/users", &fields)
            .await
    }

    pub async fn conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> T + Send + 'static,
    ) -> T {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = db.get().expect("db connection");
            f(&mut c)
        })
        .await
        .expect("join")
    }
}
