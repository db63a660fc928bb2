//! Typed settings: defaults → `roster.toml` → environment (`ROSTER_<KEY>` for every key,
//! plus `DATABASE_URL`). Secrets are `SecretString` so they cannot be logged by accident;
//! `*_file` variants read a secret from a file (for container secrets).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Every field is a `roster.toml` key and a `ROSTER_<KEY>` environment variable, and its
/// default is in `Default` below: `#[serde(default)]` takes what no source sets from there.
/// Serialising masks the secrets (`roster check-config` prints it); nothing reads the
/// serialised values back, so the masking loses nothing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the web server listens on (`ROSTER_LISTEN`).
    pub listen: String,
    /// `sqlite://FILE` (embedded default) or `postgres://…` (`DATABASE_URL` or
    /// `ROSTER_DATABASE_URL`); or use `database_url_file`.
    #[serde(serialize_with = "serialize_database_url")]
    pub database_url: SecretString,
    /// File holding the database URL (it may carry the password); replaces `database_url`,
    /// so setting both is refused.
    pub database_url_file: Option<PathBuf>,
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
            database_url_file: None,
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
        let keys = setting_keys()?;
        let figment = Figment::new()
            .merge(Toml::file(config_file))
            // Only the settings' keys: other `ROSTER_*` variables (`ROSTER_CONFIG` names the
            // file, tests have their own) are not settings and would be refused as unknown.
            .merge(
                Env::prefixed("ROSTER_").filter(move |key| keys.iter().any(|k| k.as_str() == key)),
            )
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            );
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe_figment_error(config_file, e)))?;
        if let Some(path) = &settings.database_url_file {
            // The defaults are not in the figment, so this is only a URL someone set.
            if figment.contains("database_url") {
                return Err(ConfigError::Invalid(format!(
                    "database_url_file: both database_url_file ({}) and database_url ({}) are \
                     set; set only one of them",
                    origin(&figment, "database_url_file"),
                    origin(&figment, "database_url"),
                )));
            }
            let url = read_secret_file(path, "database_url_file")?;
            // A URL never starts or ends with whitespace; an editor's stray space is not
            // part of it.
            settings.database_url = SecretString::from(url.expose_secret().trim().to_owned());
        }
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

/// The keys `ROSTER_<KEY>` may set: every field of `Settings`, read from its serialised form
/// so that a new field needs no list of its own (the values, masked, are not used).
fn setting_keys() -> Result<Vec<String>, ConfigError> {
    figment::value::Value::serialize(Settings::default())
        .ok()
        .and_then(|value| value.into_dict())
        .map(|dict| dict.into_keys().collect())
        .ok_or_else(|| ConfigError::Invalid("settings: cannot list their keys".into()))
}

/// Where a key's value was set, as a person would look for it: the file, or the environment
/// variable (figment's interpolation gives the key without the `ROSTER_` prefix).
fn origin(figment: &Figment, key: &str) -> String {
    let Some(metadata) = figment.find_metadata(key) else {
        return key.to_owned();
    };
    if let Some(path) = metadata.source.as_ref().and_then(|s| s.file_path()) {
        return path.display().to_string();
    }
    let variable = metadata.interpolate(figment.profile(), &[key]);
    if metadata.name.contains("`ROSTER_`") {
        format!("ROSTER_{variable}")
    } else {
        variable
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
