//! The client assertion Entra ID takes instead of a secret (`private_key_jwt`): a JWT
//! signed PS256 with the profile's private key, naming its certificate by `x5t#S256`. Used
//! for Graph's app-only token and for the OpenID sign-in's code exchange.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::directory::DirectoryError;

/// Client assertions live this long (Entra accepts 5–10 minutes).
const ASSERTION_SECONDS: i64 = 480;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The token endpoint of a tenant.
pub fn token_url(authority: &str, tenant_id: &str) -> String {
    format!(
        "{}/{tenant_id}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    )
}

/// A client assertion for `audience` (the token endpoint it is sent to), signed PS256 with
/// the profile's key; `x5t#S256` names the certificate the admin registered.
pub fn client_assertion(
    private_key_pem: &SecretString,
    certificate_pem: &str,
    client_id: &str,
    audience: &str,
) -> Result<String, DirectoryError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let unusable =
        |what: &str| DirectoryError::Settings(format!("the certificate credential {what}"));
    let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
        .map_err(|_| unusable("has no readable certificate"))?;
    // ring signs: several times faster than the pure-Rust RSA, and a sign-in waits for it.
    let key = PrivatePkcs8KeyDer::from_pem_slice(private_key_pem.expose_secret().as_bytes())
        .ok()
        .and_then(|der| ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).ok())
        .ok_or_else(|| unusable("has no readable RSA private key"))?;
    let header = serde_json::json!({
        "alg": "PS256",
        "typ": "JWT",
        "x5t#S256": URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref())),
    });
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": crate::crypto::random_token(),
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_SECONDS,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PSS_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| unusable("cannot sign"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}
