//! The TLS trust Roster uses for connections it makes itself (LDAPS/StartTLS, directory
//! HTTP APIs): the system's roots plus, optionally, the CA certificates an administrator
//! names in `tls_ca_file` (a private directory CA). Built once at start-up.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

pub fn client_config(extra_ca_file: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    // A system without a certificate store still works with `tls_ca_file` alone.
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "part of the system's certificate store could not be read");
    }
    // One certificate webpki cannot parse must not cost the others.
    let (_, unusable) = roots.add_parsable_certificates(native.certs);
    if unusable > 0 {
        tracing::debug!(
            unusable,
            "system certificates webpki cannot use were left out"
        );
    }
    if let Some(path) = extra_ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("tls_ca_file: cannot read {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                anyhow::anyhow!(
                    "tls_ca_file: {} is not PEM certificates: {e}",
                    path.display()
                )
            })?;
            roots.add(cert).map_err(|e| {
                anyhow::anyhow!(
                    "tls_ca_file: a certificate in {} was refused: {e}",
                    path.display()
                )
            })?;
            added += 1;
        }
        anyhow::ensure!(
            added > 0,
            "tls_ca_file: {} holds no certificate",
            path.display()
        );
    }
    Ok(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Why an uploaded trusted certificate cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("is not a readable PEM certificate: {0}")]
    Unreadable(String),
}

/// The SHA-256 fingerprints (`AB:CD:…`) of the certificates in `pem`, checked readable.
pub fn fingerprints(pem: &str) -> Result<Vec<String>, TrustError> {
    let certs = parse_certs(pem)?;
    Ok(certs.iter().map(|c| fingerprint(c)).collect())
}

fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| TrustError::Unreadable(e.to_string()))?;
        x509_parser::parse_x509_certificate(&cert)
            .map_err(|e| TrustError::Unreadable(e.to_string()))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(TrustError::NoCertificate);
    }
    Ok(certs)
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The trust of one directory profile that names its own certificate: a server whose own
/// certificate is one of `pem`'s is accepted by that pin (a self-signed certificate, CA:TRUE
/// or without a subjectAltName, as `openssl req -x509` and Samba make them); any other must
/// chain to one of them as a CA, with its name checked as usual.
pub fn trusting(pem: &str) -> Result<Arc<ClientConfig>, TrustError> {
    let certs = parse_certs(pem)?;
    let mut roots = RootCertStore::empty();
    for cert in &certs {
        // A certificate webpki cannot use as an anchor is still a pin.
        let _ = roots.add(cert.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = if roots.is_empty() {
        None
    } else {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .ok()
    };
    let verifier = Pinned {
        pins: certs.iter().map(|c| c.as_ref().to_vec()).collect(),
        chain,
        any: false,
        algorithms: provider.signature_verification_algorithms,
    };
    with_verifier(provider, verifier).map_err(TrustError::Unreadable)
}

/// "Ignore TLS certificate errors": still encrypted, and the handshake still proves the
/// server holds its certificate's key, but any certificate is accepted (for tests).
pub fn unverified() -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Pinned {
        pins: Vec::new(),
        chain: None,
        any: true,
        algorithms: provider.signature_verification_algorithms,
    };
    with_verifier(provider, verifier)
}

fn with_verifier(
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: Pinned,
) -> Result<Arc<ClientConfig>, String> {
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct Pinned {
    /// The trusted certificates, byte for byte.
    pins: Vec<Vec<u8>>,
    /// Chain verification to the trusted certificates as CAs.
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    /// Any certificate at all ("Ignore TLS certificate errors").
    any: bool,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self.any
            || self
                .pins
                .iter()
                .any(|pin| pin.as_slice() == end_entity.as_ref())
        {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        match &self.chain {
            Some(chain) => {
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
