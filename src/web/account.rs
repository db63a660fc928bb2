//! `/` (sends people where they belong) and `/account` (My account).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use secrecy::SecretString;

use crate::auth::sign_in::Confirmation;
use crate::db::models::user_privileges::Privilege;
use crate::db::models::users::AuthMethod;
use crate::error::AppError;
use crate::page;
use crate::services::account;
use crate::time::format_time;
use crate::validation::{self, FieldErrors};
use crate::web::extract::SignedIn;
use crate::web::page::Page;
use crate::web::render::redirect;

pub async fn home(req: HttpRequest) -> Result<HttpResponse, AppError> {
    let to = match crate::web::extract::current(&req).await? {
        Some(user) => crate::web::extract::home_path(user.is_admin()),
        None => "/login",
    };
    Ok(redirect(&req, to))
}

#[derive(Template)]
#[template(path = "partials/account/account_partial.html")]
pub struct AccountPartial {
    pub title: String,
    pub login_name: String,
    pub full_name: String,
    pub emails: Vec<String>,
    pub groups: Vec<String>,
    pub privileges: Vec<&'static str>,
    pub auth_method: String,
    pub mfa: String,
    /// Two-step sign-in is set up (the page offers to set it up again).
    pub mfa_enrolled: bool,
    pub csrf_token: String,
    pub sessions: Vec<SessionRow>,
    /// Local users change their password here.
    pub local: bool,
    pub errors: FieldErrors,
    pub notice: Option<String>,
}

pub struct SessionRow {
    pub current: bool,
    pub client_ip: String,
    /// "Firefox 128 on Linux", from the user-agent string (kept for the tooltip).
    pub browser: String,
    pub user_agent: String,
    pub started: String,
    pub last_seen: String,
}
page!(AccountPage, "pages/account/account.html", AccountPartial);

pub async fn show(page: Page<SignedIn>) -> Result<HttpResponse, AppError> {
    account_page(&page, FieldErrors::default(), None, StatusCode::OK).await
}

async fn account_page(
    page: &Page<SignedIn>,
    errors: FieldErrors,
    notice: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let me = page.me();
    let account::Overview { groups, sessions } = account::overview(&page.state, me.user.id).await?;
    let mfa = match (me.user.mfa_required, me.user.mfa_enrolled_at) {
        (_, Some(at)) => format!("On since {}", format_time(at)),
        (true, None) => "Required: you will set it up at your next sign-in".into(),
        (false, None) => "Off".into(),
    };
    let partial = AccountPartial {
        title: "My account".into(),
        login_name: me.user.login_name(),
        full_name: me.user.full_name.clone(),
        emails: me.user.emails(),
        groups,
        privileges: me
            .privileges
            .iter()
            .map(|p: &Privilege| p.label())
            .collect(),
        auth_method: describe_auth(&me.user),
        mfa_enrolled: me.user.mfa_enrolled_at.is_some(),
        mfa,
        csrf_token: page.csrf_token.clone(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                current: s.id == me.session_id,
                started: format_time(s.created_at),
                last_seen: format_time(s.last_seen_at),
                client_ip: s.client_ip,
                browser: describe_browser(&s.user_agent),
                user_agent: s.user_agent,
            })
            .collect(),
        local: me.user.auth_method() == AuthMethod::Local,
        errors,
        notice,
    };
    page.render(status, partial, "account")
}

/// POST `/account/sessions/others`: signs out every other session of this user.
pub async fn sign_out_others(page: Page<SignedIn>) -> Result<HttpResponse, AppError> {
    let n = account::sign_out_others(&page.state, page.me(), &page.client_ip()).await?;
    let notice = format!("Signed out {n} other session(s).");
    account_page(&page, FieldErrors::default(), Some(notice), StatusCode::OK).await
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// POST `/account/password`: local users change their password (the current one first);
/// other sessions end.
pub async fn change_password(
    page: Page<SignedIn>,
    form: actix_web::web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let me = page.me();
    if me.user.auth_method() != AuthMethod::Local {
        return Err(AppError::BadRequest(
            "Your password is managed by your directory.".into(),
        ));
    }
    let form = form.into_inner();
    let mut errors = FieldErrors::default();
    let current = SecretString::from(form.current.clone());
    let ip = page.client_ip();
    let confirmed = account::confirm(&page.state, &me.user, &current, &ip).await?;
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if let Some((message, refused)) = refusal(&confirmed, "Current password is not correct.") {
        errors.add("current", message);
        status = refused;
    }
    validation::check_new_password(&mut errors, &form.password, &form.password_confirm);
    if !errors.is_empty() {
        return account_page(&page, errors, None, status).await;
    }
    let password = SecretString::from(form.password);
    account::change_password(&page.state, me, password, &ip).await?;
    let notice = "Your password was changed. Other sessions were signed out.".to_owned();
    account_page(&page, FieldErrors::default(), Some(notice), StatusCode::OK).await
}

pub fn describe_auth(user: &crate::db::models::users::User) -> String {
    match user.auth_method() {
        crate::db::models::users::AuthMethod::Local => "Password stored in Roster".into(),
        crate::db::models::users::AuthMethod::Directory => "Directory credentials".into(),
    }
}

#[derive(serde::Deserialize)]
pub struct ReenrolForm {
    #[serde(default)]
    current: String,
}

/// POST `/account/mfa`: set up two-step sign-in (again) — the password first. The old
/// secret and recovery codes are forgotten and this session goes back to the MFA step.
pub async fn reenrol(
    page: Page<SignedIn>,
    form: actix_web::web::Form<ReenrolForm>,
) -> Result<HttpResponse, AppError> {
    let password = SecretString::from(form.into_inner().current);
    let ip = page.client_ip();
    let confirmed = account::confirm(&page.state, &page.me().user, &password, &ip).await?;
    if let Some((message, status)) = refusal(&confirmed, "Password is not correct.") {
        let mut errors = FieldErrors::default();
        errors.add("mfa_current", message);
        return account_page(&page, errors, None, status).await;
    }
    account::reenrol(&page.state, page.me(), &ip).await?;
    Ok(page.redirect("/mfa?next=%2Faccount"))
}

/// What a form says when a re-entered password is not accepted, and with which status.
fn refusal(confirmed: &Confirmation, wrong: &str) -> Option<(String, StatusCode)> {
    match confirmed {
        Confirmation::Confirmed => None,
        Confirmation::Refused(_) => Some((wrong.to_owned(), StatusCode::UNPROCESSABLE_ENTITY)),
        Confirmation::Throttled {
            retry_after_seconds,
        } => Some((
            format!(
                "Too many failed attempts. Try again in {} minutes.",
                (retry_after_seconds + 59) / 60
            ),
            StatusCode::TOO_MANY_REQUESTS,
        )),
    }
}

/// A browser and system as people name them, from a user-agent string.
fn describe_browser(user_agent: &str) -> String {
    let Some(ua) = woothee::parser::Parser::new().parse(user_agent) else {
        return "Unknown browser".into();
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    let major = ua.version.split('.').next().unwrap_or("");
    let browser = match (known(ua.name), known(major)) {
        (true, true) => format!("{} {major}", ua.name),
        (true, false) => ua.name.to_owned(),
        _ => "Unknown browser".to_owned(),
    };
    if known(ua.os) {
        format!("{browser} on {}", ua.os)
    } else {
        browser
    }
}

#[cfg(test)]
mod tests {
    use super::describe_browser;

    #[test]
    fn user_agents_read_as_browser_and_system() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(describe_browser(firefox), "Firefox 128 on Linux");
        assert!(describe_browser("curl/8.5.0").contains("curl"));
        assert_eq!(describe_browser(""), "Unknown browser");
    }
}
