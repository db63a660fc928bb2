//! The second sign-in step: TOTP enrolment (QR code served as an image, the key as text, a
//! confirming code, ten recovery codes shown once) and the code check at later sign-ins.
//! Only a half-signed-in session (stage `mfa`) reaches these pages; it sees nothing else.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use actix_web::web::{Form, Query};
use askama::Template;
use serde::Deserialize;

use crate::auth::{sessions, totp};
use crate::db::models::users::User;
use crate::error::AppError;
use crate::page;
use crate::services::sessions::{self as sessions_service, MfaOutcome};
use crate::web::extract::{home_path, origin, safe_next};
use crate::web::page::{Anyone, Page};

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

impl MfaPartial {
    /// The recovery codes one a line, for the copy field and the download.
    pub fn codes_text(&self) -> String {
        self.recovery_codes.join("\n")
    }

    /// A `data:` link that downloads `text` as a file (no request to the server).
    pub fn download_href(&self, text: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
        format!(
            "data:text/plain;charset=utf-8,{}",
            encoded.replace('+', "%20")
        )
    }

    /// Where Continue goes, split for a GET form: its path and its query's pairs.
    pub fn continue_path(&self) -> &str {
        self.continue_to.split('?').next().unwrap_or("/")
    }
    pub fn continue_pairs(&self) -> Vec<(String, String)> {
        match self.continue_to.split_once('?') {
            Some((_, query)) => url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// The half-signed-in session of this request and its user.
async fn pending(page: &Page<Anyone>) -> Result<Option<(i64, User)>, AppError> {
    match page
        .req
        .cookie(sessions::cookie_name(page.state.session_policy.https))
    {
        Some(cookie) => sessions_service::pending(&page.state, cookie.value()).await,
        None => Ok(None),
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn show(page: Page<Anyone>, query: Query<NextQuery>) -> Result<HttpResponse, AppError> {
    let Some((_, user)) = pending(&page).await? else {
        return Ok(page.redirect("/login"));
    };
    let next = safe_next(query.next.as_deref()).unwrap_or_default();
    page_for(&page, &user, next, None, StatusCode::OK).await
}

async fn page_for(
    page: &Page<Anyone>,
    user: &User,
    next: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let enrolling = user.mfa_enrolled_at.is_none();
    let mut error = error;
    let secret_text = if enrolling {
        match sessions_service::secret(&page.state, user, false).await? {
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
        csrf_token: page.csrf_token.clone(),
        enrolling,
        secret_text,
        error,
        next,
        recovery_codes: Vec::new(),
        continue_to: String::new(),
    };
    page.render(status, partial, "login")
}

/// A half-signed-in session that has ended: back to the sign-in page.
fn back_to_sign_in(page: &Page<Anyone>) -> Result<HttpResponse, AppError> {
    let mut res = page.redirect("/login");
    res.add_removal_cookie(&sessions::removal_cookie(&page.state.session_policy))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(res)
}

/// The enrolment QR code, as a PNG (no inline script or data URL needed).
pub async fn qr(page: Page<Anyone>) -> Result<HttpResponse, AppError> {
    let Some((_, user)) = pending(&page).await? else {
        return Err(AppError::NotFound);
    };
    if user.mfa_enrolled_at.is_some() {
        return Err(AppError::NotFound);
    }
    let bytes = sessions_service::secret(&page.state, &user, false)
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

pub async fn submit(page: Page<Anyone>, form: Form<CodeForm>) -> Result<HttpResponse, AppError> {
    let Some((session_id, user)) = pending(&page).await? else {
        return Ok(page.redirect("/login"));
    };
    let next = safe_next(Some(&form.next)).unwrap_or_default();
    let outcome = sessions_service::after_mfa(
        &page.state,
        session_id,
        &user,
        &form.code,
        origin(&page.req, &page.state),
    )
    .await?;
    let outcome_reused = matches!(outcome, MfaOutcome::Reused);
    let (token, codes, is_admin) = match outcome {
        MfaOutcome::Dropped => return back_to_sign_in(&page),
        MfaOutcome::Wrong | MfaOutcome::Reused => {
            let message = if outcome_reused {
                "This code was already used; wait for the next one."
            } else {
                "That code is not valid. Check the time on your device and try again."
            };
            return page_for(
                &page,
                &user,
                next,
                Some(message.into()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        MfaOutcome::Passed {
            token,
            recovery_codes,
            is_admin,
        } => (token, recovery_codes, is_admin),
    };
    let enrolling = user.mfa_enrolled_at.is_none();
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
        page.render(StatusCode::OK, partial, "login")?
    } else {
        page.redirect(&to)
    };
    res.add_cookie(&sessions::cookie(&page.state.session_policy, token))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(res)
}
