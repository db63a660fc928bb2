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
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
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
