//! First start without `ROSTER_ADMIN_PASSWORD`: the console prints a one-time link where the
//! first admin chooses a password. The link stops working once an admin exists.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::audit::Action;
use crate::auth::sessions::{self, NewSessionRequest};
use crate::crypto::token_hash;
use crate::db::models::sessions::Stage;
use crate::db::models::{setup_tokens, user_privileges};
use crate::error::AppError;
use crate::page;
use crate::state::AppState;
use crate::validation::FieldErrors;
use crate::web::extract::{client_ip, user_agent};
use crate::web::render::{Chrome, redirect, render};

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

async fn token_is_valid(state: &AppState, token: &str) -> Result<bool, AppError> {
    let hash = token_hash(token);
    state
        .db
        .run(move |c| -> Result<bool, AppError> {
            Ok(!user_privileges::any_admin(c)?
                && setup_tokens::is_valid(c, &hash, crate::db::now())?)
        })
        .await
}

pub async fn form(
    req: HttpRequest,
    state: Data<AppState>,
    query: Query<SetupQuery>,
) -> Result<HttpResponse, AppError> {
    if !token_is_valid(&state, &query.token).await? {
        return Err(AppError::Forbidden(
            "This setup link is not valid (any more). Sign in instead.".into(),
        ));
    }
    let partial = SetupPartial {
        title: "Create the first administrator".into(),
        csrf_token: crate::web::csrf::token(&req, &state),
        token: query.token.clone(),
        username: "admin".into(),
        errors: FieldErrors::default(),
    };
    render(&req, StatusCode::OK, partial, || {
        Chrome::new(&req, &state, None, "setup")
    })
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

pub async fn submit(
    req: HttpRequest,
    state: Data<AppState>,
    form: Form<SetupForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    if !token_is_valid(&state, &form.token).await? {
        return Err(AppError::Forbidden(
            "This setup link is not valid (any more). Sign in instead.".into(),
        ));
    }
    let mut errors = FieldErrors::default();
    crate::validation::check_username(&mut errors, "username", &form.username);
    crate::validation::check_new_password(&mut errors, &form.password, &form.password_confirm);
    if errors.is_empty() {
        let password = SecretString::from(form.password.clone());
        let hash = state.hasher.hash(&password).await?;
        let name = form.username.trim().to_owned();
        let (ip, agent) = (client_ip(&req, &state), user_agent(&req));
        let policy = state.session_policy;
        let created = state
            .db
            .run(move |c| -> Result<Option<(i64, String)>, AppError> {
                use diesel::Connection;
                c.transaction(|c| {
                    // Two tabs racing: only the first creates the admin.
                    if user_privileges::any_admin(c)? {
                        return Ok(None);
                    }
                    let id = crate::accounts::create_admin(c, &name, &hash)?;
                    setup_tokens::clear(c)?;
                    let token = sessions::start(
                        c,
                        &policy,
                        &NewSessionRequest {
                            user_id: id,
                            stage: Stage::Full,
                            client_ip: &ip,
                            user_agent: &agent,
                            previous_token: None,
                        },
                    )?;
                    Ok(Some((id, token)))
                })
            })
            .await?;
        let Some((id, token)) = created else {
            return Err(AppError::Forbidden(
                "An administrator already exists. Sign in instead.".into(),
            ));
        };
        let ip = client_ip(&req, &state);
        crate::audit::record(
            &state.db,
            &crate::audit::Actor::user(id, form.username.trim(), &ip),
            Action::AdminCreated,
            form.username.trim(),
            "first-start setup",
        )
        .await?;
        let mut res = redirect(&req, "/admin");
        res.add_cookie(&sessions::cookie(&policy, token))
            .map_err(|e| AppError::Internal(e.into()))?;
        return Ok(res);
    }
    let partial = SetupPartial {
        title: "Create the first administrator".into(),
        csrf_token: crate::web::csrf::token(&req, &state),
        token: form.token,
        username: form.username,
        errors,
    };
    render(&req, StatusCode::UNPROCESSABLE_ENTITY, partial, || {
        Chrome::new(&req, &state, None, "setup")
    })
}
