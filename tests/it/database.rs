//! The database layer itself: PostgreSQL over TLS, the same schema on both backends.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use secrecy::ExposeSecret;

use crate::support::app::{Backend, spawn_app_with};

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
    #[diesel(sql_type = Text)]
    version: String,
}

/// Managed PostgreSQL needs TLS: Roster links the system libpq, so `sslmode` works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_can_use_tls() {
    let app = spawn_app_with(Backend::Postgres, |s| {
        let url = format!("{}?sslmode=require", s.database_url.expose_secret());
        s.database_url = secrecy::SecretString::from(url);
    })
    .await;
    let ssl = app
        .conn(|c| {
            let roster::db::DbConnection::Pg(pg) = c else { panic!("PostgreSQL expected") };
            diesel::sql_query(
                "SELECT ssl, coalesce(version, '') AS version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .get_result::<Ssl>(pg)
            .expect("pg_stat_ssl")
        })
        .await;
    assert!(ssl.ssl, "the pooled connection is encrypted");
    assert!(ssl.version.starts_with("TLS"), "{}", ssl.version);
    app.sign_in_as_admin().await;
    assert_eq!(app.get("/admin/users").await.status().as_u16(), 200);
}
