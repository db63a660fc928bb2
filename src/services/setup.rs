//! The first administrator, created through the one-time setup link.

use secrecy::SecretString;

use crate::audit::{self, Action, Actor};
use crate::crypto::token_hash;
use crate::db::models::sessions::Stage;
use crate::db::models::{setup_tokens, user_privileges};
use crate::error::AppError;
use crate::services::sessions::Origin;
use crate::state::AppState;

/// The link works while no admin exists and the token has not expired.
pub async fn token_is_valid(state: &AppState, token: &str) -> Result<bool, AppError> {
    let hash = token_hash(token);
    state
        .db
        .run(move |c| -> Result<bool, AppError> {
            Ok(!user_privileges::any_admin(c)?
                && setup_tokens::is_valid(c, &hash, crate::db::now())?)
        })
        .await
}

/// Creates the first admin and signs them in: the session token, or `None` when another
/// tab created an admin first.
pub async fn create_first_admin(
    state: &AppState,
    name: &str,
    password: &SecretString,
    origin: Origin,
) -> Result<Option<String>, AppError> {
    let hash = state.hasher.hash(password).await?;
    let name = name.trim().to_owned();
    let policy = state.session_policy;
    // The first admin's browser has no session to replace.
    let origin = Origin {
        previous_token: None,
        ..origin
    };
    state
        .db
        .write(move |c| -> Result<Option<String>, AppError> {
            // Two tabs racing: only the first creates the admin.
            if user_privileges::any_admin(c)? {
                return Ok(None);
            }
            let id = crate::accounts::create_admin(c, &name, &hash)?;
            setup_tokens::clear(c)?;
            let token = origin.start(c, &policy, id, Stage::Full)?;
            let actor = Actor::user(id, name.as_str(), origin.client_ip.as_str());
            audit::write(c, &actor, Action::AdminCreated, &name, "first-start setup")?;
            Ok(Some(token))
        })
        .await
}
