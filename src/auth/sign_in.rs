//! Signing in with a local password. Unknown user, wrong password and disabled user give
//! the same answer after the same work (a dummy argon2 verification where there is no hash).

use secrecy::{ExposeSecret, SecretString};

use crate::auth::throttle::{self, Verdict};
use crate::db::models::user_privileges;
use crate::db::models::users::{self, AuthMethod, User};
use crate::db::now;
use crate::error::AppError;
use crate::startup::AppState;

pub enum SignInOutcome {
    Success(Box<User>),
    /// Wrong name, wrong password, disabled, or not allowed to log on: one answer for all.
    Refused,
    Throttled {
        retry_after_seconds: i64,
    },
}

pub async fn sign_in_local(
    state: &AppState,
    username: &str,
    password: &SecretString,
    client_ip: &str,
) -> Result<SignInOutcome, AppError> {
    let username = username.trim().to_owned();
    let policy = state.throttle_policy;
    let (name, ip) = (username.clone(), client_ip.to_owned());
    let verdict = state
        .db
        .run(move |c| throttle::reserve(c, &policy, &name, &ip, now()).map_err(AppError::from))
        .await?;
    if let Verdict::Locked {
        retry_after_seconds,
    } = verdict
    {
        audit(state, None, &username, "sign_in_throttled", client_ip).await?;
        return Ok(SignInOutcome::Throttled {
            retry_after_seconds,
        });
    }

    let name = username.clone();
    let candidate = state
        .db
        .run(move |c| -> Result<_, AppError> {
            let mut found = users::find_by_username(c, &name)?;
            // A name that could mean two users signs in neither.
            if found.len() != 1 {
                return Ok(None);
            }
            let user = found.remove(0);
            let may_log_on =
                user_privileges::for_user(c, user.id)?.contains(&user_privileges::Privilege::LogOn);
            Ok(Some((user, may_log_on)))
        })
        .await?;

    let hash = candidate
        .as_ref()
        .filter(|(u, _)| u.auth_method() == AuthMethod::Local)
        .and_then(|(u, _)| u.password_hash.clone());
    let blank = crate::auth::password::is_blank(password.expose_secret());
    let matches = state.hasher.verify(password, hash).await? && !blank;

    match candidate {
        Some((user, may_log_on)) if matches && may_log_on && !user.disabled => {
            let (name, ip, id) = (username.clone(), client_ip.to_owned(), user.id);
            state
                .db
                .run(move |c| -> Result<(), AppError> {
                    throttle::succeeded(c, &name, &ip)?;
                    users::record_sign_in(c, id)?;
                    Ok(())
                })
                .await?;
            audit(
                state,
                Some(user.id),
                &user.login_name(),
                "sign_in",
                client_ip,
            )
            .await?;
            Ok(SignInOutcome::Success(Box::new(user)))
        }
        Some((user, _)) => {
            let why = if !matches {
                "wrong password"
            } else if user.disabled {
                "user is disabled"
            } else {
                "user lacks the log on privilege"
            };
            audit_detail(state, &username, "sign_in_failed", why, client_ip).await?;
            Ok(SignInOutcome::Refused)
        }
        None => {
            audit_detail(
                state,
                &username,
                "sign_in_failed",
                "unknown user",
                client_ip,
            )
            .await?;
            Ok(SignInOutcome::Refused)
        }
    }
}

async fn audit(
    state: &AppState,
    actor: Option<i64>,
    name: &str,
    action: &'static str,
    ip: &str,
) -> Result<(), AppError> {
    crate::web::audit(state, actor, name, action, name, "", ip).await
}

async fn audit_detail(
    state: &AppState,
    name: &str,
    action: &'static str,
    detail: &'static str,
    ip: &str,
) -> Result<(), AppError> {
    crate::web::audit(state, None, name, action, name, detail, ip).await
}
