//! Typed settings: defaults → `roster.toml` → environment (`ROSTER_*`, plus `DATABASE_URL`).
//! Secrets are `SecretString` so they cannot be logged by accident; `*_FILE` variants read
//! a secret from a file (for container secrets).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Keys that may come from `ROSTER_<KEY>` environment variables.
const ENV_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "master_key",
    "master_key_file",
    "admin_password",
    "admin_password_file",
    "session_idle_minutes",
    "session_absolute_hours",
    "trusted_proxies",
    "tls_ca_file",
    "database_pool_size",
    "password_hash_concurrency",
    "throttle_account_failures",
    "throttle_address_failures",
    "throttle_window_minutes",
    "workers",
    "log",
    "scheduler_interval_seconds",
    "sync_lease_seconds",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the web server listens on (`ROSTER_LISTEN`).
    pub listen: String,
    /// `sqlite://FILE` (embedded default) or `postgres://…` (`DATABASE_URL`).
    #[serde(serialize_with = "serialize_database_url")]
    pub database_url: SecretString,
    /// The URL people use to reach Roster; decides cookie security and the origin check.
    pub public_url: Option<String>,
    /// Base64 of 32 random bytes (`ROSTER_MASTER_KEY`); or use `master_key_file`.
    #[serde(serialize_with = "serialize_opt_secret")]
    pub master_key: Option<SecretString>,
    /// File holding the master key. Default for SQLite: `roster.key` beside the database,
    /// created with mode 0600 on first start.
    pub master_key_file: Option<PathBuf>,
    /// Creates the first admin (`admin`) when there is none yet.
    #[serde(serialize_with = "serialize_opt_secret")]
    pub admin_password: Option<SecretString>,
    pub admin_password_file: Option<PathBuf>,
    pub session_idle_minutes: u32,
    pub session_absolute_hours: u32,
    /// Proxies whose `X-Forwarded-For` is believed; otherwise the peer address counts.
    pub trusted_proxies: Vec<IpAddr>,
    /// Extra CA certificates (PEM) trusted for LDAPS/StartTLS and directory HTTPS, besides
    /// the system's.
    pub tls_ca_file: Option<PathBuf>,
    pub database_pool_size: u32,
    /// How many argon2 hashes may run at once (each takes about 19 MiB).
    pub password_hash_concurrency: usize,
    pub throttle_account_failures: u32,
    pub throttle_address_failures: u32,
    pub throttle_window_minutes: u32,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Log filter, e.g. `info` or `roster=debug,info`.
    pub log: String,
    /// How often the scheduler looks for due schedules and abandoned runs.
    pub scheduler_interval_seconds: u32,
    /// How long a synchronisation's lease lives without renewal: after an instance dies,
    /// its run is marked failed and the profile can run again after at most this long.
    pub sync_lease_seconds: u32,
}

fn serialize_database_url<S: serde::Serializer>(
    url: &SecretString,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::db::mask_url(url.expose_secret()))
}

fn serialize_opt_secret<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("********"),
        None => s.serialize_none(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            database_url: SecretString::from("sqlite://roster.db"),
            public_url: None,
            master_key: None,
            master_key_file: None,
            admin_password: None,
            admin_password_file: None,
            session_idle_minutes: 60,
            session_absolute_hours: 12,
            trusted_proxies: Vec::new(),
            tls_ca_file: None,
            database_pool_size: 8,
            password_hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            throttle_account_failures: 10,
            throttle_address_failures: 50,
            throttle_window_minutes: 15,
            workers: 0,
            log: "info".into(),
            scheduler_interval_seconds: 10,
            sync_lease_seconds: 120,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults, then `config_file` if it exists (an explicitly named file must exist),
    /// then the environment.
    pub fn load(config_file: &Path, explicit: bool) -> Result<Settings, ConfigError> {
        if explicit && !config_file.exists() {
            return Err(ConfigError::Invalid(format!(
                "{}: configuration file not found",
                config_file.display()
            )));
        }
        let figment = Figment::from(Serialized::defaults(DefaultsForFigment::default()))
            .merge(Toml::file(config_file))
            .merge(Env::prefixed("ROSTER_").only(ENV_KEYS))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            );
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe_figment_error(config_file, e)))?;
        if settings.admin_password.is_none()
            && let Some(path) = &settings.admin_password_file
        {
            settings.admin_password = Some(read_secret_file(path, "admin_password_file")?);
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: String| Err(ConfigError::Invalid(format!("{key}: {why}")));
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(
                "listen",
                format!("`{}` is not an address such as 127.0.0.1:8080", self.listen),
            );
        }
        if let Some(url) = &self.public_url {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return bad("public_url", format!("`{url}` is not an http(s) URL")),
            }
        }
        crate::db::Backend::from_url(self.database_url.expose_secret())
            .map_err(|e| ConfigError::Invalid(format!("database_url: {e}")))?;
        if self.session_idle_minutes == 0 || self.session_absolute_hours == 0 {
            return bad(
                "session_idle_minutes",
                "session lifetimes must be above 0".into(),
            );
        }
        if self.database_pool_size == 0 || self.password_hash_concurrency == 0 {
            return bad("database_pool_size", "pool sizes must be above 0".into());
        }
        if self.throttle_account_failures == 0 || self.throttle_window_minutes == 0 {
            return bad(
                "throttle_account_failures",
                "throttle limits must be above 0".into(),
            );
        }
        if !(1..=3600).contains(&self.scheduler_interval_seconds) {
            return bad(
                "scheduler_interval_seconds",
                "must be between 1 and 3600 seconds".into(),
            );
        }
        if !(3..=86_400).contains(&self.sync_lease_seconds) {
            return bad(
                "sync_lease_seconds",
                "must be between 3 and 86400 seconds".into(),
            );
        }
        Ok(())
    }

    /// True when people reach Roster over HTTPS: cookies get `Secure` and the `__Host-` prefix.
    pub fn is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The database URL with any password masked, for messages.
    pub fn database_url_masked(&self) -> String {
        crate::db::mask_url(self.database_url.expose_secret())
    }
}

/// figment needs the defaults in serialisable form without the masking serialisers.
#[derive(Serialize)]
struct DefaultsForFigment {
    listen: String,
    database_url: String,
    session_idle_minutes: u32,
    session_absolute_hours: u32,
    trusted_proxies: Vec<IpAddr>,
    database_pool_size: u32,
    password_hash_concurrency: usize,
    throttle_account_failures: u32,
    throttle_address_failures: u32,
    throttle_window_minutes: u32,
    workers: usize,
    log: String,
    scheduler_interval_seconds: u32,
    sync_lease_seconds: u32,
}

impl Default for DefaultsForFigment {
    fn default() -> Self {
        let d = Settings::default();
        DefaultsForFigment {
            listen: d.listen,
            database_url: d.database_url.expose_secret().to_owned(),
            session_idle_minutes: d.session_idle_minutes,
            session_absolute_hours: d.session_absolute_hours,
            trusted_proxies: d.trusted_proxies,
            database_pool_size: d.database_pool_size,
            password_hash_concurrency: d.password_hash_concurrency,
            throttle_account_failures: d.throttle_account_failures,
            throttle_address_failures: d.throttle_address_failures,
            throttle_window_minutes: d.throttle_window_minutes,
            workers: d.workers,
            log: d.log,
            scheduler_interval_seconds: d.scheduler_interval_seconds,
            sync_lease_seconds: d.sync_lease_seconds,
        }
    }
}

fn describe_figment_error(config_file: &Path, error: figment::Error) -> String {
    let source = error
        .metadata
        .as_ref()
        .and_then(|m| m.source.as_ref())
        .map(|s| s.to_string())
        .unwrap_or_else(|| config_file.display().to_string());
    let key = if error.path.is_empty() {
        String::new()
    } else {
        format!(" key `{}`:", error.path.join("."))
    };
    format!("{source}:{key} {}", error.kind)
}

pub fn read_secret_file(path: &Path, key: &str) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Invalid(format!("{key}: cannot read {}: {e}", path.display())))?;
    Ok(SecretString::from(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}
