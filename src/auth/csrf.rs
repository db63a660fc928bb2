//! CSRF tokens: token = HMAC(key, the browser's session cookie, or before sign-in its
//! pre-session cookie). The middleware that checks them is `web::csrf`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::crypto::random_token;

/// The cookie that binds CSRF tokens before sign-in; over HTTPS with the `__Host-` prefix,
/// like the session cookie, so no subdomain can plant or read it.
pub fn pre_session_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-roster_presession"
    } else {
        "roster_presession"
    }
}
pub const HEADER: &str = "x-csrf-token";
pub const FIELD: &str = "csrf_token";
/// The profile forms carry certificates and key files: their bodies may be larger, so an
/// oversize field gets its own field error (`profiles::form::MAX_FIELD_BYTES`) instead of a
/// refused request. Also the limit of the `Bytes` those handlers read (`startup`).
pub const MAX_UPLOAD_FORM_BODY: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn new(bytes: [u8; 32]) -> CsrfKey {
        CsrfKey(bytes)
    }

    pub fn token_for(&self, binding: &str) -> String {
        // HMAC takes keys of any length; the fallback can only be reached if that changes.
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(binding.as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
            Err(_) => random_token(),
        }
    }

    pub fn verify(&self, binding: &str, token: &str) -> bool {
        let expected = self.token_for(binding);
        expected.as_bytes().ct_eq(token.as_bytes()).into()
    }
}
