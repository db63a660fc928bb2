//! The web edge: every route in one place, handlers grouped by page. A handler takes a
//! `page::Page` (request, state, viewer, CSRF token) and its input, calls one function of
//! `crate::services`, and renders (`page.render`) or redirects.

pub mod account;
pub mod admin;
pub mod assets;
pub mod csrf;
pub mod extract;
pub mod health;
pub mod login;
pub mod mfa;
pub mod notice;
pub mod oidc;
pub mod page;
pub mod render;
pub mod setup;

use actix_web::web;

use crate::error::AppError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/", web::get().to(account::home))
        .route("/login", web::get().to(login::form))
        .route("/login", web::post().to(login::submit))
        .route("/logout", web::post().to(login::logout))
        .route("/login/oidc/{slug}", web::post().to(oidc::start))
        .route("/login/oidc/{slug}/callback", web::get().to(oidc::callback))
        .route("/mfa", web::get().to(mfa::show))
        .route("/mfa", web::post().to(mfa::submit))
        .route("/mfa/qr.png", web::get().to(mfa::qr))
        .route("/setup", web::get().to(setup::form))
        .route("/setup", web::post().to(setup::submit))
        .route("/account", web::get().to(account::show))
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route("/account/mfa", web::post().to(account::reenrol))
        .route(
            "/account/sessions/others",
            web::post().to(account::sign_out_others),
        )
        .service(
            web::scope("/admin")
                .route("", web::get().to(admin::dashboard::show))
                .route("/", web::get().to(admin::dashboard::show))
                .route("/profiles", web::get().to(admin::profiles::list))
                .route("/profiles", web::post().to(admin::profiles::create))
                .route("/profiles/new", web::get().to(admin::profiles::new_form))
                .route(
                    "/profiles/new/fields",
                    web::get().to(admin::profiles::new_kind_fields),
                )
                .route(
                    "/profiles/test-connection",
                    web::post().to(admin::profiles::test_connection),
                )
                .route("/profiles/groups", web::post().to(admin::profiles::groups))
                .route("/profiles/{id}", web::get().to(admin::profiles::edit_form))
                .route("/profiles/{id}", web::post().to(admin::profiles::update))
                .route(
                    "/profiles/{id}/test-connection",
                    web::post().to(admin::profiles::test_connection),
                )
                .route(
                    "/profiles/{id}/groups",
                    web::post().to(admin::profiles::groups),
                )
                .route(
                    "/profiles/{id}/certificate.pem",
                    web::get().to(admin::profiles::certificate),
                )
                .route(
                    "/profiles/{id}/delete",
                    web::get().to(admin::profiles::delete_confirm),
                )
                .route(
                    "/profiles/{id}/delete",
                    web::post().to(admin::profiles::delete),
                )
                .route(
                    "/profiles/{id}/configurations/{configuration}/delete",
                    web::post().to(admin::profiles::delete_configuration),
                )
                .route("/profiles/{id}/sync", web::post().to(admin::runs::start))
                .route("/profiles/{id}/runs", web::get().to(admin::runs::history))
                .route(
                    "/profiles/{id}/run-status",
                    web::get().to(admin::runs::profile_run_status),
                )
                .route("/runs", web::get().to(admin::runs::list))
                .route("/runs/{id}", web::get().to(admin::runs::show))
                .route("/runs/{id}/approve", web::post().to(admin::runs::approve))
                .route(
                    "/runs/{id}/discard",
                    web::get().to(admin::confirm::run_discard),
                )
                .route("/runs/{id}/discard", web::post().to(admin::runs::discard))
                .route("/runs/{id}/cancel", web::post().to(admin::runs::cancel))
                .route("/schedules", web::get().to(admin::schedules::list))
                .route("/schedules", web::post().to(admin::schedules::create))
                .route("/schedules/new", web::get().to(admin::schedules::new_form))
                .route(
                    "/schedules/{id}",
                    web::get().to(admin::schedules::edit_form),
                )
                .route("/schedules/{id}", web::post().to(admin::schedules::update))
                .route(
                    "/schedules/{id}/enabled",
                    web::post().to(admin::schedules::set_enabled),
                )
                .route(
                    "/schedules/{id}/delete",
                    web::get().to(admin::confirm::schedule_delete),
                )
                .route(
                    "/schedules/{id}/delete",
                    web::post().to(admin::schedules::delete),
                )
                .route("/groups", web::get().to(admin::groups::list))
                .route("/groups/{id}", web::get().to(admin::groups::show))
                .route("/audit", web::get().to(admin::audit::list))
                .route("/audit.csv", web::get().to(admin::audit::export))
                .route("/users", web::get().to(admin::users::list))
                .route("/users", web::post().to(admin::users::create))
                .route("/users/new", web::get().to(admin::users::new_form))
                .route("/users/{id}", web::get().to(admin::users::show))
                .route("/users/{id}/action", web::post().to(admin::users::action))
                .route(
                    "/users/{id}/confirm/{action}",
                    web::get().to(admin::confirm::user_action),
                )
                .route(
                    "/users/{id}/privileges",
                    web::post().to(admin::users::set_privileges),
                )
                .route(
                    "/users/{id}/authentication",
                    web::post().to(admin::users::switch_authentication),
                ),
        )
        .route("/static/{file:.*}", web::get().to(assets::serve))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}
