//! The Entra ID part of the form: the certificate (generated, imported or kept) and the
//! redirect URI's slug.

use secrecy::{ExposeSecret, SecretString};

use super::{CertificateAction, Posted};
use crate::profiles::certificate;
use crate::validation::FieldErrors;

pub(super) fn entra_certificate(
    errors: &mut FieldErrors,
    posted: &Posted,
    none_stored: bool,
) -> CertificateAction {
    let default = if none_stored { "generate" } else { "keep" };
    let mode = match posted.get("certificate_mode") {
        "" => default,
        m => m,
    };
    match mode {
        "keep" if !none_stored => CertificateAction::Keep,
        "generate" => CertificateAction::Generate,
        "import" => {
            let cert = posted.get("certificate_import");
            let key = SecretString::from(posted.get("private_key_import").to_owned());
            if cert.trim().is_empty() {
                errors.add(
                    "certificate_import",
                    "Certificate (PEM) is required to import.",
                );
                return CertificateAction::Keep;
            }
            if key.expose_secret().trim().is_empty() {
                errors.add(
                    "private_key_import",
                    "Private key (PEM) is required to import.",
                );
                return CertificateAction::Keep;
            }
            match certificate::import(cert, &key) {
                Ok(credential) => CertificateAction::Import(credential),
                Err(
                    e @ (certificate::CertificateError::BadKey
                    | certificate::CertificateError::WeakKey
                    | certificate::CertificateError::Mismatch),
                ) => {
                    errors.add("private_key_import", format!("Private key (PEM): {e}."));
                    CertificateAction::Keep
                }
                Err(e) => {
                    errors.add("certificate_import", format!("Certificate (PEM): {e}."));
                    CertificateAction::Keep
                }
            }
        }
        _ => {
            errors.add(
                "certificate_mode",
                "Certificate credential: choose to generate a certificate or import one.",
            );
            CertificateAction::Keep
        }
    }
}

/// The redirect URI's slug: the one the form was shown with if well-formed, else a new one.
pub(super) fn slug(posted: &str) -> String {
    let ok = posted.len() == 16
        && posted
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok { posted.to_owned() } else { new_slug() }
}

pub fn new_slug() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}
