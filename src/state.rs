//! The application's shared state: what request handlers, services and jobs are given.

use std::sync::Arc;

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
    /// OpenID providers' discovery documents and keys (Entra ID sign-in).
    pub oidc: crate::auth::oidc::Providers,
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

    /// What building a profile's connector needs (see `profiles::connector`).
    pub fn connectors(&self) -> crate::profiles::connector::Connectors {
        crate::profiles::connector::Connectors {
            db: self.db.clone(),
            master_key: self.master_key.clone(),
            tls: self.tls.clone(),
            pool: self.ldap_pool.clone(),
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
        let oidc = crate::auth::oidc::Providers::new(tls.clone())?;
        Ok(AppState {
            oidc,
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
