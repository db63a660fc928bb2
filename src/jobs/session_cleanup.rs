//! Removes expired sessions every ten minutes (they are refused when presented anyway; this
//! only keeps the table small).

use std::time::Duration;

use crate::db::Db;
use crate::db::models::sessions;

pub async fn run_once(db: &Db, now: i64, idle_seconds: i64) -> Result<(), crate::db::DbError> {
    db.run(move |c| {
        sessions::delete_expired(c, now, idle_seconds).map_err(crate::db::DbError::from)
    })
    .await
    .map(drop)
}

pub fn spawn(db: Db, idle_seconds: i64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = run_once(&db, crate::db::now(), idle_seconds).await {
                tracing::warn!(error = %e, "could not remove expired sessions");
            }
        }
    })
}
