//! `/` (sends people where they belong) and `/account` (My account).

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::db::models::user_privileges::Privilege;
use crate::db::models::{directory_groups, user_emails};
use crate::error::AppError;
use crate::page;
use crate::startup::AppState;
use crate::web::extract::SignedIn;
use crate::web::render::{Chrome, redirect, render};

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
}
page!(AccountPage, "pages/account/account.html", AccountPartial);

pub async fn show(
    req: HttpRequest,
    state: Data<AppState>,
    me: SignedIn,
) -> Result<HttpResponse, AppError> {
    let id = me.user.id;
    let (emails, groups) = state
        .db
        .run(move |c| -> Result<_, AppError> {
            Ok((
                user_emails::for_user(c, id)?,
                directory_groups::names_for_user(c, id)?,
            ))
        })
        .await?;
    let partial = AccountPartial {
        title: "My account".into(),
        login_name: me.user.login_name(),
        full_name: me.user.full_name.clone(),
        emails,
        groups,
        privileges: me
            .privileges
            .iter()
            .map(|p: &Privilege| p.label())
            .collect(),
        auth_method: describe_auth(&me.user),
    };
    render(&req, StatusCode::OK, partial, || {
        Chrome::new(&req, &state, Some(&me), "account")
    })
}

pub fn describe_auth(user: &crate::db::models::users::User) -> String {
    match user.auth_method() {
        crate::db::models::users::AuthMethod::Local => "Password stored in Roster".into(),
        crate::db::models::users::AuthMethod::Directory => "Directory credentials".into(),
    }
}
