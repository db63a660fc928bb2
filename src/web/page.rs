//! `Page`: what every page handler is given — the request, the application state, who is
//! looking (`Anyone`, a `SignedIn` user or an `Admin`) and the CSRF token for the forms it
//! renders — and the one place that wraps a partial in the layout for them.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest, HttpResponse};

use crate::audit::Actor;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::extract::{Admin, SignedIn, client_ip};
use crate::web::render::{Chrome, Partial};

/// Who may see a page, and who is signed in on it.
pub trait Viewer {
    fn signed_in(&self) -> Option<&SignedIn>;
}

/// Pages anyone may see (sign-in, MFA, setup): the layout shows nobody signed in.
pub struct Anyone;

impl Viewer for Anyone {
    fn signed_in(&self) -> Option<&SignedIn> {
        None
    }
}

impl Viewer for SignedIn {
    fn signed_in(&self) -> Option<&SignedIn> {
        Some(self)
    }
}

impl Viewer for Admin {
    fn signed_in(&self) -> Option<&SignedIn> {
        Some(&self.0)
    }
}

impl FromRequest for Anyone {
    type Error = AppError;
    type Future = std::future::Ready<Result<Anyone, AppError>>;

    fn from_request(_: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Anyone))
    }
}

pub struct Page<U> {
    pub req: HttpRequest,
    pub state: Data<AppState>,
    pub user: U,
    /// For the forms and the htmx header of what this page renders.
    pub csrf_token: String,
}

impl<U: FromRequest<Error = AppError> + 'static> FromRequest for Page<U> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Page<U>, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = U::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<Data<AppState>>()
                .cloned()
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("application state missing")))?;
            let user = user.await?;
            let csrf_token = crate::web::csrf::token(&req, &state);
            Ok(Page {
                req,
                state,
                user,
                csrf_token,
            })
        })
    }
}

impl<U: Viewer> Page<U> {
    /// Renders the partial for htmx, the page in the layout otherwise (`section`: the
    /// navigation entry to highlight).
    pub fn render<P: Partial>(
        &self,
        status: StatusCode,
        partial: P,
        section: &'static str,
    ) -> Result<HttpResponse, AppError> {
        crate::web::render::render(&self.req, status, partial, || {
            Chrome::new(&self.req, &self.state, self.user.signed_in(), section)
        })
    }

    pub fn redirect(&self, to: &str) -> HttpResponse {
        crate::web::render::redirect(&self.req, to)
    }

    /// A redirect whose page says what was done (`notice`, a toast there).
    pub fn redirect_with(&self, to: &str, notice: &str) -> HttpResponse {
        let mut res = crate::web::render::redirect(&self.req, to);
        let cookie = crate::web::notice::cookie(&self.state, &self.req, notice);
        if let Err(e) = res.add_cookie(&cookie) {
            tracing::warn!(error = %e, "a notice could not be set");
        }
        res
    }

    /// Where browsers reach Roster: `public_url`, else the scheme and host of this request.
    pub fn base_url(&self) -> String {
        match &self.state.settings.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let info = self.req.connection_info();
                format!("{}://{}", info.scheme(), info.host())
            }
        }
    }

    /// What this browser's CSRF tokens (and OpenID sign-ins) are bound to.
    pub fn binding(&self) -> String {
        crate::web::csrf::binding(&self.req)
    }

    pub fn client_ip(&self) -> String {
        client_ip(&self.req, &self.state)
    }
}

impl Page<SignedIn> {
    pub fn me(&self) -> &SignedIn {
        &self.user
    }

    /// The signed-in person as the audit log names them.
    pub fn actor(&self) -> Actor {
        crate::web::extract::actor(&self.req, &self.state, &self.user)
    }
}

impl Page<Admin> {
    pub fn me(&self) -> &SignedIn {
        &self.user.0
    }

    pub fn actor(&self) -> Actor {
        crate::web::extract::actor(&self.req, &self.state, &self.user.0)
    }
}
