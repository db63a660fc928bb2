//! Builds the application from settings; shared by `main` and the tests (port 0 works).

use actix_web::dev::Server;
use actix_web::middleware::{self, DefaultHeaders};
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;

use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub fn build(state: AppState) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&state.settings.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", state.settings.listen))?;
        let port = listener.local_addr()?.port();
        let workers = state.settings.workers;
        let https = state.session_policy.https;
        let state = web::Data::new(state);
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::FormConfig::default().limit(256 * 1024))
                .app_data(web::PayloadConfig::new(
                    crate::auth::csrf::MAX_UPLOAD_FORM_BODY,
                ))
                .wrap(middleware::from_fn(crate::web::csrf::guard))
                .wrap(middleware::from_fn(crate::web::render::error_pages))
                .wrap(security_headers(https))
                .wrap(middleware::Compress::default())
                .wrap(request_log())
                .configure(crate::web::routes)
        })
        .listen(listener)?;
        if workers > 0 {
            server = server.workers(workers);
        }
        Ok(Application {
            port,
            server: server.run(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// A strict CSP (no inline script or style anywhere), no framing, no sniffing.
fn security_headers(https: bool) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"));
    if https {
        headers = headers.add(("Strict-Transport-Security", "max-age=31536000"));
    }
    headers
}

/// Request log lines without query strings (a setup token must not reach the log).
fn request_log() -> middleware::Logger {
    // actix has no method token (`%m` printed a literal `m`): a custom one.
    middleware::Logger::new("%{r}a \"%{method}xi %U\" %s %b %Dms")
        .custom_request_replace("method", |req| req.method().to_string())
}
