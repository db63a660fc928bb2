//! Rendering: a request with `HX-Request` gets only the partial, any other request the page
//! that wraps it. Redirects and errors are htmx-aware too (HX-Redirect; toast fragments).

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpRequest, HttpResponse};
use askama::Template;

use crate::error::{AppError, ErrorView};
use crate::state::AppState;
use crate::web::extract::SignedIn;

/// What the layout needs besides the partial: who is signed in, the CSRF token, the
/// navigation entry to highlight.
pub struct Chrome {
    pub user_name: Option<String>,
    pub is_admin: bool,
    pub csrf_token: String,
    pub section: &'static str,
    /// The confirmation of the change that led here, shown as a toast.
    pub notice: Option<String>,
}

impl Chrome {
    pub fn new(
        req: &HttpRequest,
        state: &AppState,
        user: Option<&SignedIn>,
        section: &'static str,
    ) -> Chrome {
        Chrome {
            user_name: user.map(|u| u.user.login_name()),
            is_admin: user.is_some_and(|u| u.is_admin()),
            csrf_token: crate::web::csrf::token(req, state),
            section,
            notice: crate::web::notice::read(state, req),
        }
    }
}

/// One option of a choice a form offers (a select's option, a checkbox of a group).
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    /// Selected or ticked.
    pub chosen: bool,
}

/// A partial that has a page wrapping it.
pub trait Partial: Template + Sized {
    type Page: Template;
    fn into_page(self, chrome: Chrome) -> Self::Page;
}

/// Declares the page struct for a partial: `page!(UsersPage, "pages/admin/users.html", UsersPartial);`
#[macro_export]
macro_rules! page {
    ($page:ident, $path:literal, $partial:ty) => {
        #[derive(askama::Template)]
        #[template(path = $path)]
        pub struct $page {
            pub chrome: $crate::web::render::Chrome,
            pub partial: $partial,
        }
        impl $crate::web::render::Partial for $partial {
            type Page = $page;
            fn into_page(self, chrome: $crate::web::render::Chrome) -> $page {
                $page {
                    chrome,
                    partial: self,
                }
            }
        }
    };
}

pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

/// Renders the partial for htmx, the page otherwise.
pub fn render<P: Partial>(
    req: &HttpRequest,
    status: StatusCode,
    partial: P,
    chrome: impl FnOnce() -> Chrome,
) -> Result<HttpResponse, AppError> {
    let htmx = is_htmx(req);
    let html = if htmx {
        partial.render()?
    } else {
        partial.into_page(chrome()).render()?
    };
    let mut res = HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    // A whole page shows the notice it brought: it is spent.
    if !htmx
        && crate::web::notice::present(req)
        && let Some(state) = req.app_data::<Data<AppState>>()
    {
        res.cookie(crate::web::notice::removal(state));
    }
    Ok(res.body(html))
}

/// A fragment that only htmx asks for (it has no page around it).
pub fn fragment(partial: impl Template) -> Result<HttpResponse, AppError> {
    Ok(html(partial.render()?))
}

pub fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// After a successful form post: a 303 for plain forms, `HX-Redirect` for htmx.
pub fn redirect(req: &HttpRequest, to: &str) -> HttpResponse {
    if is_htmx(req) {
        HttpResponse::Ok()
            .insert_header(("HX-Redirect", to))
            .finish()
    } else {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to))
            .finish()
    }
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
    status: u16,
}

#[derive(Template)]
#[template(path = "partials/toast_partial.html")]
struct Toast {
    message: String,
}

/// Turns `AppError` responses into the right thing for the request: a sign-in redirect, an
/// htmx toast, or a full error page in the layout. Handler errors arrive as responses
/// carrying an `ErrorView`; middleware errors (the CSRF guard's) arrive as `Err`.
pub async fn error_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, Error> {
    // The request must not be cloned before routing (actix needs it unshared), so it is
    // taken back from the response.
    let res = next.call(req).await?;
    let Some(view) = res.response().extensions().get::<ErrorView>().cloned() else {
        return Ok(res.map_into_left_body());
    };
    let http_req = res.request().clone();
    let mut replacement = error_response(&http_req, view).await;
    // Keep cookies the inner layers set (the pre-session cookie of the CSRF guard).
    for cookie in res.response().cookies() {
        replacement.add_cookie(&cookie)?;
    }
    drop(res);
    Ok(ServiceResponse::new(http_req, replacement).map_into_right_body())
}

async fn error_response(req: &HttpRequest, view: ErrorView) -> HttpResponse {
    if let Some(next) = view.sign_in_next {
        let to = format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        return redirect(req, &to);
    }
    let html = if is_htmx(req) {
        Toast {
            message: view.message.clone(),
        }
        .render()
    } else {
        let chrome = match req.app_data::<Data<AppState>>() {
            Some(state) => {
                // The error page still shows, without the user's name.
                let user = crate::web::extract::current(req).await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "the error page could not tell who is signed in");
                    None
                });
                Chrome::new(req, state, user.as_ref(), "")
            }
            None => Chrome {
                user_name: None,
                is_admin: false,
                csrf_token: String::new(),
                section: "",
                notice: None,
            },
        };
        ErrorPage {
            chrome,
            title: view.status.canonical_reason().unwrap_or("Error").to_owned(),
            message: view.message.clone(),
            status: view.status.as_u16(),
        }
        .render()
    };
    let mut builder = HttpResponse::build(view.status);
    builder.content_type("text/html; charset=utf-8");
    if is_htmx(req) {
        builder
            .insert_header(("HX-Retarget", "#toasts"))
            .insert_header(("HX-Reswap", "beforeend"));
    }
    match html {
        Ok(html) => builder.body(html),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            builder
                .content_type("text/plain; charset=utf-8")
                .body(view.message)
        }
    }
}
