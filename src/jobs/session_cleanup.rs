//! Removes expired sessions (they are refused when presented anyway) and sign-in throttle
//! counters whose window has ended, every ten minutes, so neither table grows without bound.

use std::time::Duration;

use crate::db::Db;
use crate::db::models::{sessions, sign_in_throttle};

pub async fn run_once(
    db: &Db,
    now: i64,
    idle_seconds: i64,
    throttle_window_seconds: i64,
) -> Result<(), crate::db::DbError> {
    db.run(move |c| {
        sessions::delete_expired(c, now, idle_seconds)?;
        crate::db::models::oidc_logins::delete_expired(c, now)?;
        sign_in_throttle::prune(c, now - throttle_window_seconds).map_err(crate::db::DbError::from)
    })
    .await
    .map(drop)
}

pub fn spawn(
    db: Db,
    idle_seconds: i64,
    throttle_window_seconds: i64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            let now = crate::db::now();
            if let Err(e) = run_once(&db, now, idle_seconds, throttle_window_seconds).await {
                tracing::warn!(error = %e, "could not remove expired sessions and throttle counters");
            }
        }
    })
}
