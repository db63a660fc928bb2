//! The master key and sealing of secrets at rest (XChaCha20-Poly1305, fresh random nonce
//! each time, sealed values tagged with the key's id so the key can be rotated).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Generate, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::db::{Backend, DbConnection, models};

const VERIFIER_PLAINTEXT: &[u8] = b"roster master key verifier v1";
const NONCE_LEN: usize = 24;

/// 32 secret bytes; cloned cheaply, never printed.
#[derive(Clone)]
pub struct MasterKey {
    bytes: std::sync::Arc<SecretBox<[u8; 32]>>,
    id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Setup(String),
    #[error("a sealed secret could not be opened (wrong key or damaged data)")]
    Open,
}

impl MasterKey {
    pub fn from_base64(text: &str) -> Result<MasterKey, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::Setup("the master key is not valid base64".into()))?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            KeyError::Setup("the master key must be 32 bytes (44 base64 characters)".into())
        })?;
        Ok(MasterKey::from_bytes(array))
    }

    pub fn generate() -> MasterKey {
        MasterKey::from_bytes(rand::random())
    }

    fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let digest = Sha256::new()
            .chain_update(b"roster key id")
            .chain_update(bytes)
            .finalize();
        MasterKey {
            id: hex::encode(&digest[..8]),
            bytes: std::sync::Arc::new(SecretBox::new(Box::new(bytes))),
        }
    }

    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.bytes.expose_secret()))
    }

    /// A short public fingerprint: safe to show, names the key in errors.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes.expose_secret().into())
    }

    /// Seals `plaintext`: base64(nonce ‖ ciphertext).
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, KeyError> {
        let nonce = XNonce::generate();
        let ciphertext = self
            .cipher()
            .encrypt(&nonce, plaintext)
            .map_err(|_| KeyError::Open)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| KeyError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(KeyError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| KeyError::Open)?;
        self.cipher()
            .decrypt(&nonce, ciphertext)
            .map_err(|_| KeyError::Open)
    }

    /// A known constant sealed with this key: stored beside the key id, it proves at start-up
    /// that the configured key is the one the database's secrets were sealed with.
    pub fn verifier(&self) -> Result<String, KeyError> {
        self.seal(VERIFIER_PLAINTEXT)
    }

    /// A key derived for one purpose, so CSRF tokens never share a key with secrets.
    pub fn derive(&self, purpose: &str) -> Result<[u8; 32], KeyError> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bytes.expose_secret())
            .map_err(|_| KeyError::Setup("cannot derive a key".into()))?;
        mac.update(purpose.as_bytes());
        Ok(mac.finalize().into_bytes().into())
    }
}

/// Where the master key comes from: the setting, the key file, or (embedded default only)
/// a new key file written with mode 0600 when the database has no key yet.
pub fn load_master_key(settings: &Settings, conn: &mut DbConnection) -> anyhow::Result<MasterKey> {
    let stored = models::master_keys::active(conn)?;
    let key = if let Some(value) = &settings.master_key {
        MasterKey::from_base64(value.expose_secret())?
    } else {
        let path = key_file_path(settings);
        match (&path, path.as_ref().map(|p| p.exists())) {
            (Some(p), Some(true)) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    KeyError::Setup(format!("cannot read master key file {}: {e}", p.display()))
                })?;
                MasterKey::from_base64(&text)
                    .map_err(|e| KeyError::Setup(format!("master key file {}: {e}", p.display())))?
            }
            (Some(p), _) if stored.is_none() && conn.backend() == Backend::Sqlite => {
                let key = MasterKey::generate();
                write_key_file(p, &key)?;
                tracing::info!(path = %p.display(), "created a new master key file");
                key
            }
            _ => {
                let expected = stored
                    .as_ref()
                    .map(|k| format!(" (this database expects key id {})", k.key_id))
                    .unwrap_or_default();
                anyhow::bail!(
                    "no master key: set ROSTER_MASTER_KEY (base64 of 32 bytes) or \
                     ROSTER_MASTER_KEY_FILE{expected}"
                );
            }
        }
    };
    match stored {
        None => {
            models::master_keys::insert_active(conn, key.id(), &key.verifier()?)?;
        }
        Some(row) => {
            let opens = key
                .open(&row.verifier)
                .is_ok_and(|p| p == VERIFIER_PLAINTEXT);
            if row.key_id != key.id() || !opens {
                anyhow::bail!(
                    "wrong master key: this database was set up with key id {}, the configured \
                     key has id {}",
                    row.key_id,
                    key.id()
                );
            }
        }
    }
    Ok(key)
}

fn key_file_path(settings: &Settings) -> Option<PathBuf> {
    if let Some(p) = &settings.master_key_file {
        return Some(p.clone());
    }
    let url = settings.database_url.expose_secret();
    if Backend::from_url(url).ok()? != Backend::Sqlite {
        return None;
    }
    let db = Path::new(crate::db::sqlite_path(url));
    Some(db.with_file_name("roster.key"))
}

/// Writes a key to a new file readable only by its owner (never overwrites one).
pub fn write_key_file(path: &Path, key: &MasterKey) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create master key file {}: {e}", path.display()))?;
    file.write_all(key.to_base64().expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

/// A random token for cookies and links: 256 bits, URL-safe.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Tokens are stored only as their SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
