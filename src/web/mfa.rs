//! The second sign-in step: TOTP enrolment (QR code served as an image, the key as text, a
//! confirming code, ten recovery codes shown once) and the code check at later sign-ins.
//! Only a half-signed-in session (stage `mfa`) reaches these pages; it sees nothing else.

use actix_web::http::{StatusCode, header};
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::audit::Action;
use crate::auth::sessions::{self, NewSessionRequest};
use crate::auth::{throttle, totp};
use crate::crypto::token_hash;
use crate::db::models::sessions::{self as session_rows, Stage};
use crate::db::models::users::{self, User};
use crate::db::models::{recovery_codes, user_privileges};
use crate::db::now;
use crate::error::AppError;
use crate::page;
use crate::state::AppState;
use crate::web::extract::{client_ip, home_path, safe_next, user_agent};
use crate::web::render::{Chrome, redirect, render};

/// Wrong codes a half-signed-in session may send before it is dropped.
const MAX_FAILURES: i32 = 5;

#[derive(Template)]
#[template(path = "partials/auth/mfa_partial.html")]
pub struct MfaPartial {
    pub title: String,
    pub csrf_token: String,
    pub enrolling: bool,
    pub secret_text: String,
    pub error: Option<String>,
    pub next: String,
    pub recovery_codes: Vec<String>,
    pub continue_to: String,
}
page!(MfaPage, "pages/auth/mfa.html", MfaPartial);

/// The half-signed-in session of this request and its user.
async fn pending(req: &HttpRequest, state: &AppState) -> Result<Option<(i64, User)>, AppError> {
    let Some(cookie) = req.cookie(sessions::cookie_name(state.session_policy.https)) else {
        return Ok(None);
    };
    let (hash, idle) = (
        token_hash(cookie.value()),
        state.session_policy.idle_seconds,
    );
    state
        .db
        .run(move |c| -> Result<_, AppError> {
            Ok(session_rows::find_live(c, &hash, now(), idle)?
                .filter(|(s, u)| s.stage == Stage::MfaPending.as_str() && !u.disabled)
                .map(|(s, u)| (s.id, u)))
        })
        .await
}

/// Makes the user's TOTP secret if there is none yet: at the password step and when set-up
/// starts again, never on a GET (a page view changes no state).
pub async fn ensure_secret(state: &AppState, user: &User) -> Result<(), AppError> {
    secret(state, user, true).await.map(drop)
}

/// The user's TOTP secret, made (and sealed) when `create` says so and there is none.
async fn secret(state: &AppState, user: &User, create: bool) -> Result<Option<Vec<u8>>, AppError> {
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

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: Data<AppState>,
    query: Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let Some((_, user)) = pending(&req, &state).await? else {
        return Ok(redirect(&req, "/login"));
    };
    let next = safe_next(query.next.as_deref()).unwrap_or_default();
    page_for(&req, &state, &user, next, None, StatusCode::OK).await
}

async fn page_for(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    next: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let enrolling = user.mfa_enrolled_at.is_none();
    let mut error = error;
    let secret_text = if enrolling {
        match secret(state, user, false).await? {
            Some(bytes) => totp::secret_text(&bytes),
            None => {
                // Reset meanwhile (an admin's "reset MFA"): a new key comes with a new sign-in.
                error.get_or_insert_with(|| {
                    "Your set-up key was reset. Sign out and sign in again to set up two-step sign-in."
                        .into()
                });
                String::new()
            }
        }
    } else {
        String::new()
    };
    let partial = MfaPartial {
        title: "Two-step sign-in".into(),
        csrf_token: crate::web::csrf::token(req, state),
        enrolling,
        secret_text,
        error,
        next,
        recovery_codes: Vec::new(),
        continue_to: String::new(),
    };
    render(req, status, partial, || {
        Chrome::new(req, state, None, "login")
    })
}

/// Ends a half-signed-in session: back to the sign-in page.
async fn drop_session(
    req: &HttpRequest,
    state: &AppState,
    session_id: i64,
) -> Result<HttpResponse, AppError> {
    state
        .db
        .run(move |c| session_rows::delete(c, session_id).map_err(AppError::from))
        .await?;
    let mut res = redirect(req, "/login");
    res.add_removal_cookie(&sessions::removal_cookie(&state.session_policy))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(res)
}

/// The enrolment QR code, as a PNG (no inline script or data URL needed).
pub async fn qr(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some((_, user)) = pending(&req, &state).await? else {
        return Err(AppError::NotFound);
    };
    if user.mfa_enrolled_at.is_some() {
        return Err(AppError::NotFound);
    }
    let bytes = secret(&state, &user, false)
        .await?
        .ok_or(AppError::NotFound)?;
    let png = totp::totp(&bytes, &user.login_name())
        .map_err(|e| anyhow::anyhow!("TOTP: {e}"))?
        .to_qr_png()
        .map_err(|e| anyhow::anyhow!("QR code: {e}"))?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(png))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

pub async fn submit(
    req: HttpRequest,
    state: Data<AppState>,
    form: Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let Some((session_id, user)) = pending(&req, &state).await? else {
        return Ok(redirect(&req, "/login"));
    };
    let next = safe_next(Some(&form.next)).unwrap_or_default();
    let enrolling = user.mfa_enrolled_at.is_none();
    let ip = client_ip(&req, &state);
    // Codes are throttled per user across sessions (a password that works must not buy
    // endless guesses), counted before the check like passwords.
    let throttle_key = throttle::Subject::Mfa(user.id);
    let (policy, key, address) = (state.throttle_policy, throttle_key.clone(), ip.clone());
    let verdict = state
        .db
        .run(move |c| throttle::reserve(c, &policy, &key, &address, now()).map_err(AppError::from))
        .await?;
    if let throttle::Verdict::Locked { .. } = verdict {
        crate::audit::record(
            &state.db,
            &crate::audit::Actor::user(user.id, user.login_name(), &ip),
            Action::MfaThrottled,
            &user.login_name(),
            "",
        )
        .await?;
        return drop_session(&req, &state, session_id).await;
    }
    let bytes = secret(&state, &user, enrolling).await?.unwrap_or_default();
    let totp = totp::totp(&bytes, &user.login_name()).map_err(|e| anyhow::anyhow!("TOTP: {e}"))?;
    let step = totp::matching_step(&totp, &form.code, now().max(0) as u64)
        .map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    let (id, code, master) = (user.id, form.code.clone(), state.master_key.clone());
    let accepted = state
        .db
        .run(move |c| -> Result<bool, AppError> {
            if let Some(step) = step
                && users::accept_totp_step(c, id, step)?
            {
                return Ok(true);
            }
            // Recovery codes only once enrolled (they do not exist before).
            if enrolling {
                return Ok(false);
            }
            let key = crate::secrets::recovery_key(c, &master).map_err(anyhow::Error::from)?;
            Ok(
                recovery_codes::redeem(c, id, &totp::recovery_hash(&key, &code))?
                    || recovery_codes::redeem(c, id, &totp::legacy_recovery_hash(&code))?,
            )
        })
        .await?;
    if !accepted {
        let failures = state
            .db
            .run(move |c| session_rows::record_mfa_failure(c, session_id).map_err(AppError::from))
            .await?;
        crate::audit::record(
            &state.db,
            &crate::audit::Actor::user(user.id, user.login_name(), &ip),
            Action::MfaFailed,
            &user.login_name(),
            &format!("wrong code ({failures})"),
        )
        .await?;
        if failures >= MAX_FAILURES {
            return drop_session(&req, &state, session_id).await;
        }
        return page_for(
            &req,
            &state,
            &user,
            next,
            Some("That code is not valid. Check the time on your device and try again.".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }

    // Signed in: a new session token for the full session.
    let codes = if enrolling {
        totp::new_recovery_codes()
    } else {
        Vec::new()
    };
    let previous = req
        .cookie(sessions::cookie_name(state.session_policy.https))
        .map(|c| c.value().to_owned());
    let (policy, agent, ip2) = (state.session_policy, user_agent(&req), ip.clone());
    let (master, codes_to_hash) = (state.master_key.clone(), codes.clone());
    let is_admin = user
        .privileges()
        .contains(&user_privileges::Privilege::Admin);
    let token = state
        .db
        .run(move |c| -> Result<_, AppError> {
            throttle::succeeded(c, &throttle_key, &ip2)?;
            if enrolling {
                let key = crate::secrets::recovery_key(c, &master).map_err(anyhow::Error::from)?;
                let hashes: Vec<String> = codes_to_hash
                    .iter()
                    .map(|code| totp::recovery_hash(&key, code))
                    .collect();
                users::mark_mfa_enrolled(c, id)?;
                recovery_codes::replace(c, id, &hashes)?;
            }
            let token = sessions::start(
                c,
                &policy,
                &NewSessionRequest {
                    user_id: id,
                    stage: Stage::Full,
                    client_ip: &ip2,
                    user_agent: &agent,
                    previous_token: previous.as_deref(),
                },
            )?;
            Ok(token)
        })
        .await?;
    let action = if enrolling {
        Action::MfaEnrolled
    } else {
        Action::MfaPassed
    };
    crate::audit::record(
        &state.db,
        &crate::audit::Actor::user(user.id, user.login_name(), &ip),
        action,
        &user.login_name(),
        "",
    )
    .await?;
    let to = if next.is_empty() {
        home_path(is_admin).to_owned()
    } else {
        next
    };
    let mut res = if enrolling {
        let partial = MfaPartial {
            title: "Recovery codes".into(),
            csrf_token: String::new(),
            enrolling: false,
            secret_text: String::new(),
            error: None,
            next: String::new(),
            recovery_codes: codes,
            continue_to: to,
        };
        render(&req, StatusCode::OK, partial, || {
            Chrome::new(&req, &state, None, "login")
        })?
    } else {
        redirect(&req, &to)
    };
    res.add_cookie(&sessions::cookie(&policy, token))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(res)
}
