//! The Entra ID certificate credential: Roster signs its token requests with a private key
//! whose public certificate the admin uploads to the app registration. Either Roster makes a
//! self-signed one, or the admin imports a certificate and its key (PEM).
//!
//! Entra ID expects RSA (RS256/PS256 client assertions). ring signs with RSA but cannot make
//! RSA keys, so the `rsa` crate makes the key and rcgen signs the certificate with it.

use chrono::Datelike;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};

/// A certificate and its private key, both PEM.
pub struct Credential {
    pub certificate_pem: String,
    pub private_key_pem: SecretString,
}

/// What the profile page shows of a stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub subject: String,
    /// SHA-1, upper-case hex: what the Entra admin centre shows as the thumbprint.
    pub thumbprint: String,
    pub not_after: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    #[error("the certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NotPem,
    #[error("the certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error("the certificate has expired")]
    Expired,
    #[error("the private key is not a PEM RSA private key (PKCS#8 or PKCS#1)")]
    BadKey,
    #[error("the private key must be RSA with at least 2048 bits")]
    WeakKey,
    #[error("the private key does not belong to the certificate")]
    Mismatch,
    #[error("generating the certificate failed: {0}")]
    Generate(String),
}

const KEY_BITS: usize = 2048;

/// Makes a self-signed certificate valid for two years, named after the profile.
pub fn generate(common_name: &str) -> Result<Credential, CertificateError> {
    let failed = |e: &dyn std::fmt::Display| CertificateError::Generate(e.to_string());
    let mut rng = rand::rngs::OsRng;
    let key = rsa::RsaPrivateKey::new(&mut rng, KEY_BITS).map_err(|e| failed(&e))?;
    let pkcs8 = key.to_pkcs8_der().map_err(|e| failed(&e))?;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_bytes().to_vec());
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| failed(&e))?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let today = chrono::Utc::now().date_naive();
    let day = today.day().min(28) as u8;
    params.not_before = rcgen::date_time_ymd(today.year(), today.month() as u8, day);
    params.not_after = rcgen::date_time_ymd(today.year() + 2, today.month() as u8, day);
    let certificate = params.self_signed(&key_pair).map_err(|e| failed(&e))?;
    let private_key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| failed(&e))?
        .to_string();
    Ok(Credential {
        certificate_pem: certificate.pem(),
        private_key_pem: SecretString::from(private_key_pem),
    })
}

/// Checks an imported certificate and key: both readable, RSA ≥ 2048 bits, not expired,
/// and the key belongs to the certificate. Returns them normalised.
pub fn import(
    certificate_pem: &str,
    private_key_pem: &SecretString,
) -> Result<Credential, CertificateError> {
    let der = certificate_der(certificate_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertificateError::BadCertificate(e.to_string()))?;
    if cert.validity().not_after.timestamp() < chrono::Utc::now().timestamp() {
        return Err(CertificateError::Expired);
    }
    let key_text = private_key_pem.expose_secret().trim();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(key_text)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(key_text))
        .map_err(|_| CertificateError::BadKey)?;
    if key.size() * 8 < KEY_BITS {
        return Err(CertificateError::WeakKey);
    }
    let public = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| CertificateError::BadKey)?;
    if public.as_bytes() != cert.public_key().raw {
        return Err(CertificateError::Mismatch);
    }
    let pkcs8 = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| CertificateError::BadKey)?;
    Ok(Credential {
        certificate_pem: pem_of(&der),
        private_key_pem: SecretString::from(pkcs8.to_string()),
    })
}

/// Reads the facts the profile page shows.
pub fn info(certificate_pem: &str) -> Result<CertificateInfo, CertificateError> {
    let der = certificate_der(certificate_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertificateError::BadCertificate(e.to_string()))?;
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        thumbprint: hex::encode_upper(Sha1::digest(&der)),
        not_after: crate::time::format_time(cert.validity().not_after.timestamp()),
    })
}

fn certificate_der(text: &str) -> Result<Vec<u8>, CertificateError> {
    let text = text.trim();
    if !text.starts_with("-----BEGIN CERTIFICATE-----") {
        return Err(CertificateError::NotPem);
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes())
        .map_err(|e| CertificateError::BadCertificate(e.to_string()))?;
    if pem.label != "CERTIFICATE" {
        return Err(CertificateError::NotPem);
    }
    Ok(pem.contents)
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
