//! Builds the application from settings; shared by `main` and the tests (port 0 works).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{self, DefaultHeaders};
use actix_web::{App, HttpServer, web};
use secrecy::ExposeSecret;

use crate::auth::csrf::CsrfKey;
use crate::auth::password::PasswordHasherPool;
use crate::auth::sessions::SessionPolicy;
use crate::auth::throttle::ThrottlePolicy;
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::Db;

/// Everything a request handler may need, shared through `web::Data`.
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub hasher: PasswordHasherPool,
    pub csrf: CsrfKey,
    pub master_key: MasterKey,
    /// Trust for connections Roster makes to directories (see `crate::tls`).
    pub tls: Arc<rustls::ClientConfig>,
    pub session_policy: SessionPolicy,
    pub throttle_policy: ThrottlePolicy,
    /// Bound LDAP service connections reused by directory sign-ins.
    pub ldap_pool: crate::directory::ldap::ServicePool,
}

impl AppState {
    /// What the sync engine needs of the application.
    pub fn sync_context(&self) -> crate::sync::SyncContext {
        crate::sync::SyncContext {
            db: self.db.clone(),
            master_key: self.master_key.clone(),
            tls: self.tls.clone(),
            lease_seconds: i64::from(self.settings.sync_lease_seconds),
        }
    }

    /// Connects to the database (running migrations) and loads the master key.
    pub fn open(settings: Settings) -> anyhow::Result<AppState> {
        let db = Db::connect(
            settings.database_url.expose_secret(),
            settings.database_pool_size,
        )?;
        let master_key = {
            let mut conn = db.get()?;
            crate::crypto::load_master_key(&settings, &mut conn)?
        };
        let csrf = CsrfKey::new(master_key.derive("roster csrf v1")?);
        let tls = crate::tls::client_config(settings.tls_ca_file.as_deref())?;
        Ok(AppState {
            hasher: PasswordHasherPool::new(settings.password_hash_concurrency),
            session_policy: SessionPolicy {
                idle_seconds: i64::from(settings.session_idle_minutes) * 60,
                absolute_seconds: i64::from(settings.session_absolute_hours) * 3600,
                https: settings.is_https(),
            },
            throttle_policy: ThrottlePolicy {
                account_failures: settings.throttle_account_failures,
                address_failures: settings.throttle_address_failures,
                window_seconds: i64::from(settings.throttle_window_minutes) * 60,
            },
            ldap_pool: Default::default(),
            db,
            csrf,
            master_key,
            tls,
            settings: Arc::new(settings),
        })
    }
}

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub fn build(state: AppState) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&state.settings.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", state.settings.listen))?;
        let port = listener.local_addr()?.port();
        let workers = state.settings.workers;
        let https = state.session_policy.https;
        let state = web::Data::new(state);
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::FormConfig::default().limit(256 * 1024))
                .app_data(web::PayloadConfig::new(
                    crate::auth::csrf::MAX_UPLOAD_FORM_BODY,
                ))
                .wrap(middleware::from_fn(crate::auth::csrf::guard))
                .wrap(middleware::from_fn(crate::web::render::error_pages))
                .wrap(security_headers(https))
                .wrap(middleware::Compress::default())
                .wrap(request_log())
                .configure(crate::web::routes)
        })
        .listen(listener)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Application {
            port,
            server: server.run(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// A strict CSP (no inline script or style anywhere), no framing, no sniffing.
fn security_headers(https: bool) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"));
    if https {
        headers = headers.add(("Strict-Transport-Security", "max-age=31536000"));
    }
    headers
}

/// Request log lines without query strings (a setup token must not reach the log).
fn request_log() -> middleware::Logger {
    // actix has no method token (`%m` printed a literal `m`): a custom one.
    middleware::Logger::new("%{r}a \"%{method}xi %U\" %s %b %Dms")
        .custom_request_replace("method", |req| req.method().to_string())
}
