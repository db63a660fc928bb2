//! Sessions: who a session cookie belongs to, beginning a session after the password (or a
//! half session that only opens the MFA step), the MFA step itself, and signing out.

use secrecy::{ExposeSecret, SecretString};

use crate::audit::{self, Action, Actor};
use crate::auth::sessions::{self, NewSessionRequest, SessionPolicy};
use crate::auth::{throttle, totp};
use crate::crypto::token_hash;
use crate::db::DbConnection;
use crate::db::ids::UserId;
use crate::db::models::recovery_codes;
use crate::db::models::sessions::{self as session_rows, Stage};
use crate::db::models::user_privileges::Privilege;
use crate::db::models::users::{self, User};
use crate::db::now;
use crate::error::AppError;
use crate::state::AppState;

/// Wrong codes a half-signed-in session may send before it is dropped.
pub const MAX_MFA_FAILURES: i32 = 5;

/// A fully signed-in user (password and, where required, MFA done).
pub struct SignedIn {
    pub session_id: i64,
    pub user: User,
    pub privileges: Vec<Privilege>,
}

impl SignedIn {
    pub fn is_admin(&self) -> bool {
        self.privileges.contains(&Privilege::Admin)
    }
}

/// The user of a live, fully signed-in session with this cookie value.
pub async fn current(state: &AppState, cookie: &str) -> Result<Option<SignedIn>, AppError> {
    let hash = token_hash(cookie);
    let idle = state.session_policy.idle_seconds;
    state
        .db
        .run(move |c| -> Result<Option<SignedIn>, AppError> {
            let at = now();
            let Some((session, user)) = session_rows::find_live(c, &hash, at, idle)? else {
                return Ok(None);
            };
            if session.stage != Stage::Full || user.disabled {
                return Ok(None);
            }
            // Writing on every request would serialise readers on SQLite; a minute is
            // precise enough for an idle timeout counted in minutes. While a sync holds
            // SQLite's write lock the page is served anyway; a later request records it.
            if at - session.last_seen_at >= 60
                && c.write_unless_busy(|c| session_rows::touch(c, session.id, at))?
                    .is_none()
            {
                tracing::debug!(
                    session = session.id,
                    "the database is busy: visit recorded later"
                );
            }
            let privileges = user.privileges();
            Ok(Some(SignedIn {
                session_id: session.id,
                user,
                privileges,
            }))
        })
        .await
}

/// The half-signed-in session (stage `mfa`) with this cookie value and its user.
pub async fn pending(state: &AppState, cookie: &str) -> Result<Option<(i64, User)>, AppError> {
    let (hash, idle) = (token_hash(cookie), state.session_policy.idle_seconds);
    state
        .db
        .run(move |c| -> Result<_, AppError> {
            Ok(session_rows::find_live(c, &hash, now(), idle)?
                .filter(|(s, u)| s.stage == Stage::MfaPending && !u.disabled)
                .map(|(s, u)| (s.id, u)))
        })
        .await
}

/// Where a session is begun from.
pub struct Origin {
    pub client_ip: String,
    pub user_agent: String,
    /// The session cookie this browser had, if any: it ends now.
    pub previous_token: Option<String>,
}

impl Origin {
    /// Starts a session of `stage` from here; the browser's previous session ends. The
    /// token is for the cookie only.
    pub fn start(
        &self,
        c: &mut DbConnection,
        policy: &SessionPolicy,
        user_id: UserId,
        stage: Stage,
    ) -> diesel::QueryResult<String> {
        sessions::start(
            c,
            policy,
            &NewSessionRequest {
                user_id,
                stage,
                client_ip: &self.client_ip,
                user_agent: &self.user_agent,
                previous_token: self.previous_token.as_deref(),
            },
        )
    }
}

/// A session begun after the password: its stage and its token (for the cookie only).
pub struct Begun {
    pub stage: Stage,
    pub token: String,
}

/// Begins the session of a user whose password was accepted: a full session, or for MFA
/// users a half-signed-in one that only opens `/mfa` (their TOTP secret made if needed).
pub async fn begin(state: &AppState, user: &User, origin: Origin) -> Result<Begun, AppError> {
    let stage = if user.needs_mfa() {
        Stage::MfaPending
    } else {
        Stage::Full
    };
    if stage == Stage::MfaPending && user.mfa_enrolled_at.is_none() {
        ensure_secret(state, user).await?;
    }
    let (policy, user_id) = (state.session_policy, user.id);
    let token = state
        .db
        .write(move |c| -> Result<_, AppError> { Ok(origin.start(c, &policy, user_id, stage)?) })
        .await?;
    Ok(Begun { stage, token })
}

/// Ends the session with this cookie value; the sign-out is audited when it was a full one.
pub async fn end(state: &AppState, cookie: &str, client_ip: &str) -> Result<(), AppError> {
    let user = current(state, cookie).await?;
    let hash = token_hash(cookie);
    let actor = user.map(|u| Actor::user(u.user.id, u.user.login_name(), client_ip));
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            session_rows::delete_by_hash(c, &hash)?;
            if let Some(actor) = &actor {
                audit::write(c, actor, Action::SignOut, &actor.name, "")?;
            }
            Ok(())
        })
        .await
}

/// Ends a half-signed-in session (too many wrong codes).
pub async fn drop_pending(state: &AppState, session_id: i64) -> Result<(), AppError> {
    state
        .db
        .run(move |c| session_rows::delete(c, session_id).map_err(AppError::from))
        .await
        .map(drop)
}

/// Makes the user's TOTP secret if there is none yet: at the password step and when set-up
/// starts again, never on a GET (a page view changes no state).
pub async fn ensure_secret(state: &AppState, user: &User) -> Result<(), AppError> {
    secret(state, user, true).await.map(drop)
}

/// The user's TOTP secret, made (and sealed) when `create` says so and there is none.
pub async fn secret(
    state: &AppState,
    user: &User,
    create: bool,
) -> Result<Option<Vec<u8>>, AppError> {
    let (id, key, name) = (user.id, state.master_key.clone(), user.login_name());
    state
        .db
        .run(move |c| -> Result<_, AppError> {
            let internal = |e: crate::secrets::SecretError| AppError::from(anyhow::Error::from(e));
            match users::totp_secret_id(c, id)? {
                Some(secret_id) => {
                    let text = crate::secrets::reveal(c, &key, secret_id).map_err(internal)?;
                    Ok(hex::decode(text.expose_secret()).ok())
                }
                None if create => {
                    let bytes = totp::new_secret();
                    let sealed = SecretString::from(hex::encode(&bytes));
                    let secret_id =
                        crate::secrets::store(c, &key, &format!("TOTP seed of {name}"), &sealed)
                            .map_err(internal)?;
                    users::set_totp_secret(c, id, Some(secret_id))?;
                    Ok(Some(bytes))
                }
                None => Ok(None),
            }
        })
        .await
}

/// The answer to a code at the MFA step.
pub enum MfaOutcome {
    /// Signed in: the new full session's token; enrolment also shows the recovery codes.
    Passed {
        token: String,
        recovery_codes: Vec<String>,
        is_admin: bool,
    },
    /// A wrong code; the session may try again.
    Wrong,
    /// The right code, but its 30-second step was used already (each is accepted once); it
    /// counts as a failure all the same, so a replayed code gains nothing.
    Reused,
    /// Too many wrong codes (this session's, or the user's across sessions): the half
    /// session has ended.
    Dropped,
}

/// Checks a TOTP or recovery code for a half-signed-in session (`session_id` of `user`).
/// Codes are throttled per user across sessions (a password that works must not buy
/// endless guesses), counted before the check like passwords.
pub async fn after_mfa(
    state: &AppState,
    session_id: i64,
    user: &User,
    code: &str,
    origin: Origin,
) -> Result<MfaOutcome, AppError> {
    let enrolling = user.mfa_enrolled_at.is_none();
    let actor = Actor::user(user.id, user.login_name(), origin.client_ip.as_str());
    let throttle_key = throttle::Subject::Mfa(user.id);
    let (policy, key, address) = (
        state.throttle_policy,
        throttle_key.clone(),
        origin.client_ip.clone(),
    );
    let verdict = state
        .db
        .run(move |c| throttle::reserve(c, &policy, &key, &address, now()).map_err(AppError::from))
        .await?;
    if let throttle::Verdict::Locked { .. } = verdict {
        audit::record(&state.db, &actor, Action::MfaThrottled, &actor.name, "").await?;
        drop_pending(state, session_id).await?;
        return Ok(MfaOutcome::Dropped);
    }
    let bytes = secret(state, user, enrolling).await?.unwrap_or_default();
    let totp = totp::totp(&bytes, &user.login_name()).map_err(|e| anyhow::anyhow!("TOTP: {e}"))?;
    let step = totp::matching_step(&totp, code, now().max(0) as u64)
        .map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    let (id, code, master) = (user.id, code.to_owned(), state.master_key.clone());
    // (accepted, the code was right but its step already used)
    let (accepted, reused) = state
        .db
        .run(move |c| -> Result<(bool, bool), AppError> {
            if let Some(step) = step {
                if users::accept_totp_step(c, id, step)? {
                    return Ok((true, false));
                }
                return Ok((false, true));
            }
            // Recovery codes only once enrolled (they do not exist before).
            if enrolling {
                return Ok((false, false));
            }
            let key = crate::secrets::recovery_key(c, &master).map_err(anyhow::Error::from)?;
            let redeemed = recovery_codes::redeem(c, id, &totp::recovery_hash(&key, &code))?
                || recovery_codes::redeem(c, id, &totp::legacy_recovery_hash(&code))?;
            Ok((redeemed, false))
        })
        .await?;
    if !accepted {
        let failure_actor = actor.clone();
        let failures = state
            .db
            .write(move |c| -> Result<i32, AppError> {
                let failures = session_rows::record_mfa_failure(c, session_id)?;
                let detail = format!("wrong code ({failures})");
                let name = failure_actor.name.as_str();
                audit::write(c, &failure_actor, Action::MfaFailed, name, &detail)?;
                Ok(failures)
            })
            .await?;
        if failures >= MAX_MFA_FAILURES {
            drop_pending(state, session_id).await?;
            return Ok(MfaOutcome::Dropped);
        }
        return Ok(if reused {
            MfaOutcome::Reused
        } else {
            MfaOutcome::Wrong
        });
    }

    // Signed in: a new session token for the full session.
    let codes = if enrolling {
        totp::new_recovery_codes()
    } else {
        Vec::new()
    };
    let policy = state.session_policy;
    let (master, codes_to_hash) = (state.master_key.clone(), codes.clone());
    let is_admin = user.privileges().contains(&Privilege::Admin);
    let action = if enrolling {
        Action::MfaEnrolled
    } else {
        Action::MfaPassed
    };
    let token = state
        .db
        .write(move |c| -> Result<_, AppError> {
            throttle::succeeded(c, &throttle_key, &origin.client_ip)?;
            if enrolling {
                let key = crate::secrets::recovery_key(c, &master).map_err(anyhow::Error::from)?;
                let hashes: Vec<String> = codes_to_hash
                    .iter()
                    .map(|code| totp::recovery_hash(&key, code))
                    .collect();
                users::mark_mfa_enrolled(c, id)?;
                recovery_codes::replace(c, id, &hashes)?;
            }
            let token = origin.start(c, &policy, id, Stage::Full)?;
            audit::write(c, &actor, action, &actor.name, "")?;
            Ok(token)
        })
        .await?;
    Ok(MfaOutcome::Passed {
        token,
        recovery_codes: codes,
        is_admin,
    })
}
