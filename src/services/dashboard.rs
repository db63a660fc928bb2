//! The admin dashboard's counts and latest events.

use crate::db::models::audit_events;
use crate::db::models::{directory_groups, directory_profiles, sessions, users};
use crate::error::AppError;
use crate::services::audit::{Event, in_words};
use crate::state::AppState;

pub struct Summary {
    pub users: i64,
    pub groups: i64,
    pub profiles: i64,
    pub sessions: i64,
    /// The latest events, in words and linked to their subjects.
    pub events: Vec<Event>,
}

pub async fn summary(state: &AppState, events: i64) -> Result<Summary, AppError> {
    let idle = state.session_policy.idle_seconds;
    state
        .db
        .run(move |c| -> Result<Summary, AppError> {
            let now = crate::db::now();
            let recent = audit_events::recent(c, events)?;
            Ok(Summary {
                users: users::count(c)?,
                groups: directory_groups::count(c)?,
                profiles: directory_profiles::count(c)?,
                sessions: sessions::count_live(c, now, idle)?,
                events: in_words(c, recent)?,
            })
        })
        .await
}
