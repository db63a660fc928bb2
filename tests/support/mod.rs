//! Test support: the application on port 0 with a fresh database, and the real external
//! servers (PostgreSQL, slapd, Samba AD DC, the OIDC provider, Chromium), each started once
//! per test run by its `<name>/start` script and shared by the tests that need it.
#![allow(dead_code)]

pub mod app;
pub mod app_integration;
pub mod browser;
pub mod entra;
pub mod google;
pub mod icewarp;
pub mod ldap_proxy;
pub mod servers;

/// Runs a test body once on SQLite and once on PostgreSQL, as `<name>::sqlite` and
/// `<name>::postgres`, so the test output shows both backends.
#[macro_export]
macro_rules! db_test {
    (async fn $name:ident($app:ident) $body:block) => {
        $crate::db_test! { settings(|_| {}); async fn $name($app) $body }
    };
    // `settings(|s| …)` changes the application's settings before it starts.
    (settings($change:expr); async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($app: $crate::support::app::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body($crate::support::app::spawn_app_with($crate::support::app::Backend::Sqlite, $change).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                body($crate::support::app::spawn_app_with($crate::support::app::Backend::Postgres, $change).await).await
            }
        }
    };
}

/// Waits, if need be, until the current 30-second TOTP step has at least `seconds` left, so
/// a code computed now is still within the server's ±1 step when it arrives (a test that
/// sends the previous step's code would otherwise fail when a step boundary falls between).
pub async fn clear_of_totp_step_boundary(seconds: u64) {
    let into_step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64 % 30_000)
        .unwrap_or(0);
    let left = 30_000 - into_step;
    if left < seconds * 1000 {
        tokio::time::sleep(std::time::Duration::from_millis(left + 200)).await;
    }
}
