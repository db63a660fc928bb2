//! First start without `ROSTER_ADMIN_PASSWORD`: the console prints a one-time link where the
//! first admin chooses a password. The link stops working once an admin exists.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Form, Query};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::auth::sessions;
use crate::error::AppError;
use crate::page;
use crate::services::setup;
use crate::validation::FieldErrors;
use crate::web::extract::origin;
use crate::web::page::{Anyone, Page};

#[derive(Template)]
#[template(path = "partials/auth/setup_partial.html")]
pub struct SetupPartial {
    pub title: String,
    pub csrf_token: String,
    pub token: String,
    pub username: String,
    pub errors: FieldErrors,
}
page!(SetupPage, "pages/auth/setup.html", SetupPartial);

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

pub async fn form(page: Page<Anyone>, query: Query<SetupQuery>) -> Result<HttpResponse, AppError> {
    if !setup::token_is_valid(&page.state, &query.token).await? {
        return Err(AppError::Forbidden(
            "This setup link is not valid (any more). Sign in instead.".into(),
        ));
    }
    let partial = SetupPartial {
        title: "Create the first administrator".into(),
        csrf_token: page.csrf_token.clone(),
        token: query.token.clone(),
        username: "admin".into(),
        errors: FieldErrors::default(),
    };
    page.render(StatusCode::OK, partial, "setup")
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn submit(page: Page<Anyone>, form: Form<SetupForm>) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    if !setup::token_is_valid(&page.state, &form.token).await? {
        return Err(AppError::Forbidden(
            "This setup link is not valid (any more). Sign in instead.".into(),
        ));
    }
    let mut errors = FieldErrors::default();
    crate::validation::check_username(&mut errors, "username", &form.username);
    crate::validation::check_new_password(&mut errors, &form.password, &form.password_confirm);
    if errors.is_empty() {
        let password = SecretString::from(form.password.clone());
        let created = setup::create_first_admin(
            &page.state,
            &form.username,
            &password,
            origin(&page.req, &page.state),
        )
        .await?;
        let Some(token) = created else {
            return Err(AppError::Forbidden(
                "An administrator already exists. Sign in instead.".into(),
            ));
        };
        let mut res = page.redirect("/admin");
        res.add_cookie(&sessions::cookie(&page.state.session_policy, token))
            .map_err(|e| AppError::Internal(e.into()))?;
        return Ok(res);
    }
    let partial = SetupPartial {
        title: "Create the first administrator".into(),
        csrf_token: page.csrf_token.clone(),
        token: form.token,
        username: form.username,
        errors,
    };
    page.render(StatusCode::UNPROCESSABLE_ENTITY, partial, "setup")
}
