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
