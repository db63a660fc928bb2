//! Configuration layering and its error messages.
// figment::Jail closures return figment::Error, which is large by figment's design.
#![allow(clippy::result_large_err)]

use std::path::Path;

use roster::config::Settings;

#[test]
fn malformed_toml_names_file_key_and_problem() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("roster.toml", "listen = 8080\n")?;
        let err = Settings::load(Path::new("roster.toml"), true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("roster.toml"), "{err}");
        assert!(err.contains("listen"), "{err}");
        Ok(())
    });
}

#[test]
fn environment_overrides_file() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("roster.toml", "listen = \"127.0.0.1:9000\"\n")?;
        jail.set_env("ROSTER_LISTEN", "127.0.0.1:9001");
        jail.set_env("DATABASE_URL", "postgres://u:p@localhost/db");
        let s = Settings::load(Path::new("roster.toml"), true).map_err(|e| e.to_string())?;
        assert_eq!(s.listen, "127.0.0.1:9001");
        assert_eq!(s.database_url_masked(), "postgres://u:****@localhost/db");
        Ok(())
    });
}

#[test]
fn unknown_key_is_refused() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("roster.toml", "lisen = \"127.0.0.1:9000\"\n")?;
        let err = Settings::load(Path::new("roster.toml"), true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("lisen"), "{err}");
        Ok(())
    });
}

#[test]
fn database_url_with_an_unknown_scheme_is_refused() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("DATABASE_URL", "mysql://u:hunter2@localhost/db");
        let err = Settings::load(Path::new("roster.toml"), false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("database_url") && err.contains("****"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        Ok(())
    });
}

#[test]
fn defaults_are_the_embedded_sqlite_on_localhost() {
    figment::Jail::expect_with(|_| {
        let s = Settings::load(Path::new("roster.toml"), false).map_err(|e| e.to_string())?;
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.database_url_masked(), "sqlite://roster.db");
        assert!(!s.is_https());
        Ok(())
    });
}

#[test]
fn database_url_file_from_the_environment_sets_the_database_url() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("db-url", "  postgres://u:p@localhost/db \n")?;
        jail.set_env("ROSTER_DATABASE_URL_FILE", "db-url");
        let s = Settings::load(Path::new("roster.toml"), false).map_err(|e| e.to_string())?;
        assert_eq!(s.database_url_masked(), "postgres://u:****@localhost/db");
        Ok(())
    });
}

#[test]
fn database_url_file_in_roster_toml_sets_the_database_url() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("db-url", "postgres://u:p@localhost/db\n")?;
        jail.create_file("roster.toml", "database_url_file = \"db-url\"\n")?;
        let s = Settings::load(Path::new("roster.toml"), true).map_err(|e| e.to_string())?;
        assert_eq!(s.database_url_masked(), "postgres://u:****@localhost/db");
        Ok(())
    });
}

#[test]
fn database_url_file_with_database_url_from_the_environment_is_refused() {
    for variable in ["DATABASE_URL", "ROSTER_DATABASE_URL"] {
        figment::Jail::expect_with(|jail| {
            jail.create_file("db-url", "postgres://u:p@localhost/db\n")?;
            jail.set_env("ROSTER_DATABASE_URL_FILE", "db-url");
            jail.set_env(variable, "postgres://u:hunter2@localhost/other");
            let err = Settings::load(Path::new("roster.toml"), false)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert_eq!(
                err,
                format!(
                    "database_url_file: both database_url_file (ROSTER_DATABASE_URL_FILE) and \
                     database_url ({variable}) are set; set only one of them"
                )
            );
            Ok(())
        });
    }
}

#[test]
fn database_url_file_with_database_url_in_roster_toml_is_refused() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("db-url", "postgres://u:p@localhost/db\n")?;
        jail.create_file(
            "roster.toml",
            "database_url = \"sqlite://roster.db\"\ndatabase_url_file = \"db-url\"\n",
        )?;
        let err = Settings::load(Path::new("roster.toml"), true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("database_url_file: both database_url_file (")
                && err.contains("roster.toml) and database_url (")
                && err.ends_with("roster.toml) are set; set only one of them"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn missing_database_url_file_names_the_file() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("ROSTER_DATABASE_URL_FILE", "no-such-db-url");
        let err = Settings::load(Path::new("roster.toml"), false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("database_url_file: cannot read no-such-db-url: "),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn other_roster_variables_are_not_settings() {
    figment::Jail::expect_with(|jail| {
        // `ROSTER_CONFIG` names the configuration file; it is not a key of it.
        jail.set_env("ROSTER_CONFIG", "elsewhere.toml");
        jail.set_env("ROSTER_NOT_A_SETTING", "1");
        Settings::load(Path::new("roster.toml"), false).map_err(|e| e.to_string())?;
        Ok(())
    });
}

/// One `ROSTER_<KEY>` value per setting and what the setting then shows (serialised, so
/// secrets masked). A setting added without a line here fails the test.
const FROM_ENVIRONMENT: &[(&str, &str, &str)] = &[
    ("listen", "127.0.0.1:9999", r#""127.0.0.1:9999""#),
    (
        "database_url",
        "postgres://u:p@localhost/db",
        r#""postgres://u:****@localhost/db""#,
    ),
    ("database_url_file", "db-url", r#""db-url""#),
    (
        "public_url",
        "https://roster.example",
        r#""https://roster.example""#,
    ),
    ("master_key", "a2V5", r#""********""#),
    ("master_key_file", "other.key", r#""other.key""#),
    ("admin_password", "hunter2", r#""********""#),
    (
        "admin_password_file",
        "admin-password",
        r#""admin-password""#,
    ),
    ("session_idle_minutes", "5", "5"),
    ("session_absolute_hours", "2", "2"),
    ("trusted_proxies", r#"["10.0.0.2"]"#, r#"["10.0.0.2"]"#),
    ("tls_ca_file", "ca.pem", r#""ca.pem""#),
    ("database_pool_size", "3", "3"),
    ("password_hash_concurrency", "977", "977"),
    ("throttle_account_failures", "3", "3"),
    ("throttle_address_failures", "4", "4"),
    ("throttle_window_minutes", "6", "6"),
    ("workers", "3", "3"),
    ("log", "debug", r#""debug""#),
    ("scheduler_interval_seconds", "30", "30"),
    ("sync_lease_seconds", "600", "600"),
];

#[test]
fn every_setting_can_come_from_a_roster_environment_variable() {
    let defaults = serde_json::to_value(Settings::default()).unwrap_or_default();
    let mut keys: Vec<&str> = defaults
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut listed: Vec<&str> = FROM_ENVIRONMENT.iter().map(|(key, _, _)| *key).collect();
    keys.sort_unstable();
    listed.sort_unstable();
    assert_eq!(listed, keys, "FROM_ENVIRONMENT needs one line per setting");
    for (key, value, shown) in FROM_ENVIRONMENT {
        let shown: serde_json::Value = serde_json::from_str(shown).unwrap_or_default();
        assert_ne!(
            defaults[key], shown,
            "{key}: pick a value that is not the default"
        );
        figment::Jail::expect_with(|jail| {
            jail.create_file("db-url", "postgres://u:p@localhost/db\n")?;
            jail.create_file("admin-password", "hunter2\n")?;
            jail.set_env(format!("ROSTER_{}", key.to_ascii_uppercase()), value);
            let s = Settings::load(Path::new("roster.toml"), false)
                .map_err(|e| format!("ROSTER_{}: {e}", key.to_ascii_uppercase()))?;
            let got = serde_json::to_value(&s).unwrap_or_default();
            assert_eq!(got[key], shown, "ROSTER_{}", key.to_ascii_uppercase());
            Ok(())
        });
    }
}
