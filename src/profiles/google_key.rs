//! The Google Workspace service-account key: the JSON file Google's console downloads. It is
//! checked field by field on import (so a wrong file is refused with a reason, not at the
//! first sync) and then stored whole as a secret.

use rsa::pkcs8::DecodePrivateKey;
use serde::Deserialize;

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

/// The parts of a key that are not secret, shown on the profile page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    pub client_email: String,
    pub private_key_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    #[error("the key file is not JSON ({0})")]
    NotJson(String),
    #[error("the key file is not a service-account key (\"type\" must be \"service_account\")")]
    NotServiceAccount,
    #[error("the key file has no \"{0}\"")]
    Missing(&'static str),
    #[error("\"client_email\" `{0}` is not a service-account address")]
    BadEmail(String),
    #[error("\"private_key\" is not a PEM PKCS#8 RSA key")]
    BadKey,
    #[error("\"token_uri\" must be an https URL")]
    BadTokenUri,
}

/// Validates a key file. A P12 file is not accepted: Google has deprecated them.
pub fn check(json: &str) -> Result<KeySummary, KeyFileError> {
    let file: KeyFile =
        serde_json::from_str(json.trim()).map_err(|e| KeyFileError::NotJson(e.to_string()))?;
    if file.kind.as_deref() != Some("service_account") {
        return Err(KeyFileError::NotServiceAccount);
    }
    let present = |value: Option<String>, name: &'static str| {
        value
            .filter(|v| !v.trim().is_empty())
            .ok_or(KeyFileError::Missing(name))
    };
    present(file.project_id, "project_id")?;
    let private_key_id = present(file.private_key_id, "private_key_id")?;
    let private_key = present(file.private_key, "private_key")?;
    let client_email = present(file.client_email, "client_email")?;
    let token_uri = present(file.token_uri, "token_uri")?;
    let email_ok = client_email
        .rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !email_ok {
        return Err(KeyFileError::BadEmail(client_email));
    }
    if rsa::RsaPrivateKey::from_pkcs8_pem(private_key.trim()).is_err() {
        return Err(KeyFileError::BadKey);
    }
    match url::Url::parse(&token_uri) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
        _ => return Err(KeyFileError::BadTokenUri),
    }
    Ok(KeySummary {
        client_email,
        private_key_id,
    })
}
