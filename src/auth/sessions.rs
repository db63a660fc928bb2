//! Server-side sessions: a 256-bit random token in an HttpOnly cookie, only its hash in
//! the database; a fresh token at every sign-in (and after MFA); idle and absolute expiry.

use actix_web::cookie::{Cookie, SameSite, time};

use crate::crypto::{random_token, token_hash};
use crate::db::ids::UserId;
use crate::db::models::sessions::{self, NewSession, Stage};
use crate::db::{DbConnection, now};

pub const COOKIE_PLAIN: &str = "roster_session";
/// Over HTTPS the `__Host-` prefix pins the cookie to this exact origin.
pub const COOKIE_HTTPS: &str = "__Host-roster_session";

pub fn cookie_name(https: bool) -> &'static str {
    if https { COOKIE_HTTPS } else { COOKIE_PLAIN }
}

/// Lifetimes, from the settings.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub idle_seconds: i64,
    pub absolute_seconds: i64,
    pub https: bool,
}

pub struct NewSessionRequest<'a> {
    pub user_id: UserId,
    pub stage: Stage,
    pub client_ip: &'a str,
    pub user_agent: &'a str,
    /// The token of the session being replaced, if any: it ends now.
    pub previous_token: Option<&'a str>,
}

/// Starts a session and returns its token (for the cookie only).
pub fn start(
    conn: &mut DbConnection,
    policy: &SessionPolicy,
    req: &NewSessionRequest,
) -> diesel::QueryResult<String> {
    if let Some(old) = req.previous_token {
        sessions::delete_by_hash(conn, &token_hash(old))?;
    }
    let token = random_token();
    let at = now();
    let user_agent: String = req.user_agent.chars().take(200).collect();
    sessions::create(
        conn,
        &NewSession {
            token_hash: &token_hash(&token),
            user_id: req.user_id,
            stage: req.stage,
            client_ip: req.client_ip,
            user_agent: &user_agent,
            created_at: at,
            last_seen_at: at,
            expires_at: at + policy.absolute_seconds,
        },
    )?;
    Ok(token)
}

pub fn cookie(policy: &SessionPolicy, token: String) -> Cookie<'static> {
    let mut c = base_cookie(policy, token);
    c.set_max_age(time::Duration::seconds(policy.absolute_seconds));
    c
}

pub fn removal_cookie(policy: &SessionPolicy) -> Cookie<'static> {
    let mut c = base_cookie(policy, String::new());
    c.make_removal();
    c
}

/// The session cookie's attributes: the removal must match them to replace it.
fn base_cookie(policy: &SessionPolicy, value: String) -> Cookie<'static> {
    Cookie::build(cookie_name(policy.https), value)
        .path("/")
        .http_only(true)
        .secure(policy.https)
        .same_site(SameSite::Lax)
        .finish()
}
