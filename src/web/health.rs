//! Liveness: answers without touching the database (also the benchmark's floor endpoint).

use actix_web::HttpResponse;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}
