//! The confirmation after a change ("User grace deleted."): the handler redirects with a
//! notice, which travels in a short-lived cookie to the next page, shows there as a toast and
//! is cleared. The cookie carries an HMAC bound to this browser's session, so no other site
//! or user can plant a message.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};

use crate::state::AppState;

const COOKIE: &str = "roster_notice";

fn mac(state: &AppState, req: &HttpRequest, message: &str) -> String {
    let binding = crate::web::csrf::binding(req);
    state
        .csrf
        .token_for(&format!("notice\u{0}{binding}\u{0}{message}"))
}

fn base(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(state.session_policy.https)
        .same_site(SameSite::Lax)
        .finish()
}

/// The cookie that carries `message` to the next page.
pub fn cookie(state: &AppState, req: &HttpRequest, message: &str) -> Cookie<'static> {
    let encoded: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    let mut c = base(state, format!("{}.{encoded}", mac(state, req, message)));
    c.set_max_age(time::Duration::seconds(120));
    c
}

/// The notice this request brings, if its cookie is genuine.
pub fn read(state: &AppState, req: &HttpRequest) -> Option<String> {
    let value = req.cookie(COOKIE)?.value().to_owned();
    let (tag, encoded) = value.split_once('.')?;
    let message: String = url::form_urlencoded::parse(format!("m={encoded}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let genuine: bool = {
        use subtle::ConstantTimeEq;
        mac(state, req, &message)
            .as_bytes()
            .ct_eq(tag.as_bytes())
            .into()
    };
    genuine.then_some(message)
}

/// Whether this request carries a notice cookie (genuine or not) to clear.
pub fn present(req: &HttpRequest) -> bool {
    req.cookie(COOKIE).is_some()
}

pub fn removal(state: &AppState) -> Cookie<'static> {
    let mut c = base(state, String::new());
    c.make_removal();
    c
}
