//! My account: what a signed-in person sees of themselves, and what they may change.

use secrecy::SecretString;

use crate::audit::{self, Action, Actor};
use crate::auth::sign_in::{Confirmation, confirm_password};
use crate::db::ids::UserId;
use crate::db::models::directory_groups;
use crate::db::models::sessions::{self as session_rows, LiveSession};
use crate::db::models::users::{self, User};
use crate::db::now;
use crate::error::AppError;
use crate::services::sessions::SignedIn;
use crate::state::AppState;

/// The groups and live sessions of the page.
pub struct Overview {
    pub groups: Vec<String>,
    pub sessions: Vec<LiveSession>,
}

pub async fn overview(state: &AppState, user_id: UserId) -> Result<Overview, AppError> {
    let idle = state.session_policy.idle_seconds;
    state
        .db
        .run(move |c| -> Result<_, AppError> {
            Ok(Overview {
                groups: directory_groups::names_for_user(c, user_id)?,
                sessions: session_rows::live_for_user(c, user_id, now(), idle)?,
            })
        })
        .await
}

fn actor_of(me: &SignedIn, client_ip: &str) -> Actor {
    Actor::user(me.user.id, me.user.login_name(), client_ip)
}

/// Signs out every other session of this user; how many there were.
pub async fn sign_out_others(
    state: &AppState,
    me: &SignedIn,
    client_ip: &str,
) -> Result<usize, AppError> {
    let (id, keep, actor) = (me.user.id, me.session_id, actor_of(me, client_ip));
    state
        .db
        .write(move |c| -> Result<usize, AppError> {
            let n = session_rows::delete_others(c, id, keep)?;
            let detail = format!("{n} other sessions");
            audit::write(c, &actor, Action::SessionsEnded, &actor.name, &detail)?;
            Ok(n)
        })
        .await
}

/// Checks the re-entered current password (throttled like sign-in).
pub async fn confirm(
    state: &AppState,
    user: &User,
    password: &SecretString,
    client_ip: &str,
) -> Result<Confirmation, AppError> {
    confirm_password(state, user, password, client_ip).await
}

/// Sets a local user's new password (already checked against the policy) and ends their
/// other sessions.
pub async fn change_password(
    state: &AppState,
    me: &SignedIn,
    password: SecretString,
    client_ip: &str,
) -> Result<(), AppError> {
    let hash = state.hasher.hash(&password).await?;
    let (id, keep, actor) = (me.user.id, me.session_id, actor_of(me, client_ip));
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            users::set_password_hash(c, id, &hash)?;
            session_rows::delete_others(c, id, keep)?;
            let detail = "other sessions ended";
            audit::write(c, &actor, Action::PasswordChanged, &actor.name, detail)?;
            Ok(())
        })
        .await
}

/// Sets up two-step sign-in again: the old secret and recovery codes are forgotten, a new
/// secret is made, and this session goes back to the MFA step.
pub async fn reenrol(state: &AppState, me: &SignedIn, client_ip: &str) -> Result<(), AppError> {
    let (id, session, actor) = (me.user.id, me.session_id, actor_of(me, client_ip));
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            users::reset_mfa(c, id)?;
            session_rows::back_to_mfa(c, session)?;
            audit::write(c, &actor, Action::MfaReenrolmentStarted, &actor.name, "")?;
            Ok(())
        })
        .await?;
    let mut reset = me.user.clone();
    reset.mfa_enrolled_at = None;
    crate::services::sessions::ensure_secret(state, &reset).await
}
