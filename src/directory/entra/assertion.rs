//! The client assertion Entra ID takes instead of a secret (`private_key_jwt`): a JWT
//! signed PS256 with the profile's private key, naming its certificate by `x5t#S256`. Used
//! for Graph's app-only token and for the OpenID sign-in's code exchange.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
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
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let unusable =
        |what: &str| DirectoryError::Settings(format!("the certificate credential {what}"));
    let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
        .map_err(|_| unusable("has no readable certificate"))?;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(private_key_pem.expose_secret())
        .map_err(|_| unusable("has no readable private key"))?;
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
    let signer = rsa::pss::BlindedSigningKey::<Sha256>::new(key);
    let signature = signer
        .try_sign_with_rng(&mut rand::rngs::OsRng, signing_input.as_bytes())
        .map_err(|e| unusable(&format!("cannot sign: {e}")))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}
