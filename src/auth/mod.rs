//! Authentication: password hashing, sessions, CSRF tokens and sign-in throttling.

pub mod csrf;
pub mod login_name;
pub mod oidc;
pub mod password;
pub mod sessions;
pub mod sign_in;
pub mod throttle;
pub mod totp;
