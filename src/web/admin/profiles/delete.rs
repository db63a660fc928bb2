//! A profile's certificate download, removing a dependent configuration, and deleting the
//! profile (a page that says what uses it first).

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use actix_web::web::Path;
use askama::Template;

use crate::db::ids::ProfileId;
use crate::db::models::directory_profiles::DeleteOutcome;
use crate::error::AppError;
use crate::page;
use crate::profiles::KindSettings;
use crate::services::profiles as profiles_service;
use crate::web::extract::Admin;
use crate::web::page::Page;

pub async fn certificate(
    page: Page<Admin>,
    path: Path<ProfileId>,
) -> Result<HttpResponse, AppError> {
    let loaded = profiles_service::load(&page.state, path.into_inner()).await?;
    let (profile, KindSettings::Entra(s)) = (loaded.profile, loaded.settings) else {
        return Err(AppError::NotFound);
    };
    if s.certificate_pem.is_empty() {
        return Err(AppError::NotFound);
    }
    let file: String = profile
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"roster-{file}.pem\""),
        ))
        .body(s.certificate_pem))
}

pub async fn delete_configuration(
    page: Page<Admin>,
    path: Path<(ProfileId, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, configuration) = path.into_inner();
    profiles_service::delete_configuration(&page.state, &page.actor(), id, configuration).await?;
    Ok(page.redirect_with(
        &format!("/admin/profiles/{id}"),
        "The dependent configuration was deleted.",
    ))
}

#[derive(Template)]
#[template(path = "partials/admin/profile_delete_partial.html")]
pub struct DeletePartial {
    pub title: String,
    pub csrf_token: String,
    pub id: ProfileId,
    pub name: String,
    pub schedules: i64,
    pub configurations: Vec<String>,
    pub synchronised_users: i64,
}
page!(DeletePage, "pages/admin/profile_delete.html", DeletePartial);

impl DeletePartial {
    pub fn in_use(&self) -> bool {
        self.schedules > 0 || !self.configurations.is_empty()
    }
}

pub async fn delete_confirm(
    page: Page<Admin>,
    path: Path<ProfileId>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (profile, usage) = profiles_service::usage(&page.state, id).await?;
    let partial = DeletePartial {
        title: format!("Delete {}", profile.name),
        csrf_token: page.csrf_token.clone(),
        id,
        name: profile.name,
        schedules: usage.schedules,
        configurations: usage.configurations,
        synchronised_users: usage.synchronised_users,
    };
    page.render(StatusCode::OK, partial, "profiles")
}

pub async fn delete(page: Page<Admin>, path: Path<ProfileId>) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let outcome = profiles_service::delete(&page.state, &page.actor(), id).await?;
    match outcome {
        DeleteOutcome::NotFound => Err(AppError::NotFound),
        // Used meanwhile: show the page that says by what.
        DeleteOutcome::InUse(_) => Ok(page.redirect(&format!("/admin/profiles/{id}/delete"))),
        DeleteOutcome::Deleted { .. } => {
            Ok(page.redirect_with("/admin/profiles", "The profile was deleted."))
        }
    }
}
