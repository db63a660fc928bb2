//! The directory's errors in words an admin can act on: ldap3's errors sorted, TLS failures
//! explained (never a Rust debug string), hints when protocol and port do not match, and
//! Active Directory's bind sub-codes.

use ldap3::LdapError;

use super::{LdapDirectory, Protocol};
use crate::directory::DirectoryError;

impl LdapDirectory {
    pub(super) fn timeout(&self) -> DirectoryError {
        DirectoryError::Timeout {
            server: self.settings.server.clone(),
            timeout: self.settings.timeout,
            hint: "",
        }
    }

    /// Sorts ldap3's errors into what an admin can act on, in words (never a debug form).
    pub(super) fn classify(&self, error: LdapError) -> DirectoryError {
        let server = self.settings.server.clone();
        match error {
            LdapError::Timeout { .. } => self.timeout(),
            LdapError::Io { source } => {
                let tls = source
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                if let Some(tls) = tls {
                    return DirectoryError::Tls {
                        server,
                        detail: explain_tls(tls, self.settings.protocol),
                    };
                }
                let detail = source.to_string();
                match source.kind() {
                    std::io::ErrorKind::TimedOut => self.timeout(),
                    std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof => {
                        DirectoryError::ConnectionLost { server }
                    }
                    _ if detail.contains("lookup address") || detail.contains("not known") => {
                        DirectoryError::ServerUnknown { server, detail }
                    }
                    _ => DirectoryError::Unreachable { server, detail },
                }
            }
            // ldap3's connection task is gone: the server closed the connection.
            LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::EndOfStream => DirectoryError::ConnectionLost { server },
            LdapError::FilterParsing => {
                DirectoryError::Settings("a search filter is not valid LDAP filter syntax".into())
            }
            other => DirectoryError::Protocol {
                detail: other.to_string(),
            },
        }
    }

    /// A failure while connecting, with a hint when the protocol may not match the port.
    pub(super) fn connect_failure(&self, classified: DirectoryError) -> DirectoryError {
        let server = self.settings.server.clone();
        // A server speaking the other protocol closes the connection or waits for ever.
        let hint = match self.settings.protocol {
            Protocol::Ldaps => LDAPS_ON_PLAIN_PORT,
            Protocol::StartTls => STARTTLS_ON_LDAPS_PORT,
        };
        match classified {
            DirectoryError::ConnectionLost { .. } => DirectoryError::Tls {
                server,
                detail: format!("the server closed the connection during the TLS handshake{hint}"),
            },
            DirectoryError::Timeout {
                server, timeout, ..
            } => DirectoryError::Timeout {
                server,
                timeout,
                hint,
            },
            other => other,
        }
    }
}

const LDAPS_ON_PLAIN_PORT: &str =
    "; is this a plain LDAP port? LDAPS usually listens on port 636; for port 389 choose StartTLS";
const STARTTLS_ON_LDAPS_PORT: &str =
    "; is this an LDAPS port? StartTLS is for port 389; for port 636 choose LDAPS";

/// A TLS failure in words an admin can act on.
fn explain_tls(error: &rustls::Error, protocol: Protocol) -> String {
    use rustls::{CertificateError as Cert, Error};
    match error {
        Error::InvalidCertificate(Cert::UnknownIssuer) => "the server's certificate is not signed by a CA Roster trusts: add the directory's CA certificate (or the server's own certificate, to pin it) as the profile's trusted certificate, or to tls_ca_file".into(),
        Error::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => "the server's certificate is not issued for this server name: connect by a name the certificate lists, or pin the certificate as the profile's trusted certificate".into(),
        Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => "the server's certificate has expired: renew it on the directory server".into(),
        Error::InvalidCertificate(Cert::NotValidYet | Cert::NotValidYetContext { .. }) => "the server's certificate is not valid yet: check the clocks of both machines".into(),
        Error::InvalidCertificate(Cert::Revoked) => "the server's certificate has been revoked".into(),
        Error::InvalidCertificate(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => "the server presents a CA certificate (CA:TRUE) as its own, as self-signed certificates made by openssl req -x509 or Samba are: upload that certificate as the profile's trusted certificate to pin it".into(),
        Error::InvalidCertificate(_) => "the server's certificate was refused: upload the directory's CA certificate, or the server's own certificate to pin it, as the profile's trusted certificate".into(),
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. }
            if protocol == Protocol::Ldaps =>
        {
            format!("the server did not answer in TLS{LDAPS_ON_PLAIN_PORT}")
        }
        other => format!("the TLS handshake failed: {other}"),
    }
}

/// A read that did not return everything: the run must fail rather than delete what it
/// did not see.
pub(super) fn incomplete(detail: String) -> DirectoryError {
    DirectoryError::Incomplete { detail }
}

pub(super) fn detail(text: &str) -> String {
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim())
    }
}

/// What Active Directory's bind sub-code (`data 52e` in its error text) means.
pub fn sub_code_meaning(code: &str) -> &'static str {
    match code {
        "525" => "user not found",
        "52e" => "wrong password",
        "530" => "not permitted to sign in at this time",
        "531" => "not permitted to sign in from this workstation",
        "532" => "password expired",
        "533" => "account disabled",
        "701" => "account expired",
        "773" => "user must reset the password",
        "775" => "account locked out",
        _ => "see the Active Directory documentation",
    }
}

pub fn ad_sub_code(text: &str) -> Option<String> {
    let rest = text.split("data ").nth(1)?;
    let code: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (!code.is_empty()).then_some(code)
}

pub(super) fn non_empty(text: &str, fallback: &str) -> String {
    if text.trim().is_empty() {
        fallback.to_owned()
    } else {
        text.trim().to_owned()
    }
}
