//! One error type at the web edge, and every conversion into it.
//!
//! Policy: models return `QueryResult`; connectors `DirectoryError`; the sync engine
//! `SyncError`/`RunError`; jobs and start-up use `anyhow`; services and handlers return
//! `AppError` (refusals a person can act on are typed outcomes, not errors), which decides
//! the status and the words a person sees. Internal errors are
//! logged with their cause and shown only as "something went wrong" — never with details
//! that could carry a secret. Whether an error becomes a full page or an htmx toast is
//! decided by `web::render::error_pages`, which can see the request.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::auth::password::PasswordError;
use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("This page does not exist.")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("Please sign in.")]
    SignInRequired { next: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("Too many attempts. Try again in {minutes} minutes.")]
    TooManyRequests { minutes: i64 },
    #[error("Something went wrong. The error was logged.")]
    Internal(#[source] anyhow::Error),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<PasswordError> for AppError {
    fn from(e: PasswordError) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(e)
    }
}

impl From<crate::sync::SyncError> for AppError {
    fn from(e: crate::sync::SyncError) -> Self {
        match e {
            crate::sync::SyncError::NotFound => AppError::NotFound,
            crate::sync::SyncError::Busy | crate::sync::SyncError::LeaseLost => {
                AppError::BadRequest(
                    "A synchronisation of this profile is already running. Wait for it to finish."
                        .into(),
                )
            }
            crate::sync::SyncError::NotHeld => {
                AppError::BadRequest("This run is not waiting for approval any more.".into())
            }
            crate::sync::SyncError::Internal(e) => AppError::Internal(e),
        }
    }
}

/// Put into the response so the error-page middleware knows what to render.
#[derive(Clone, Debug)]
pub struct ErrorView {
    pub status: StatusCode,
    pub message: String,
    pub sign_in_next: Option<String>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::SignInRequired { .. } => StatusCode::SEE_OTHER,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(e) = self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let view = ErrorView {
            status: self.status_code(),
            message: self.to_string(),
            sign_in_next: match self {
                AppError::SignInRequired { next } => Some(next.clone()),
                _ => None,
            },
        };
        let mut res = HttpResponse::build(view.status)
            .content_type("text/plain; charset=utf-8")
            .body(view.message.clone());
        res.extensions_mut().insert(view);
        res
    }
}
