//! Static files, compiled into the binary so Roster stays one file to deploy.
//! Vendored names carry their version, so they can be cached for a long time.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::error::AppError;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "vendor/htmx-2.0.11.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/vendor/htmx-2.0.11.min.js"),
    },
    Asset {
        path: "vendor/pico-2.1.1.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/vendor/pico-2.1.1.min.css"),
    },
    Asset {
        path: "css/roster.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/css/roster.css"),
    },
    Asset {
        path: "js/roster.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/js/roster.js"),
    },
];

pub async fn serve(path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.path == path.as_str())
        .ok_or(AppError::NotFound)?;
    let cache = if asset.path.starts_with("vendor/") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, cache))
        .body(asset.body))
}
