//! Local passwords: argon2id with the crate's defaults (m=19456 KiB, t=2, p=1), hashed off
//! the async threads and bounded by a semaphore so a burst of sign-ins cannot exhaust memory.
//! Verifications reuse their 19 MiB of working memory: allocating and faulting it in anew
//! cost 1.5–2 ms of a 12 ms verification (`cargo bench --bench sign_in`).

use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, Block, Params, PasswordHasher};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// The commonest passwords of eight characters or more (shorter ones fail the length rule).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing was interrupted")]
    Interrupted,
}

#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    /// Working memory of finished verifications, at most one per permit.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// Verified against when the user is unknown or has no hash, so every path costs the same.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"roster dummy password for timing")
        .map(|h| h.to_string())
        .unwrap_or_default()
});

impl PasswordHasherPool {
    pub fn new(concurrency: usize) -> PasswordHasherPool {
        // Build the dummy hash now, not during the first sign-in.
        LazyLock::force(&DUMMY_HASH);
        PasswordHasherPool {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::default(),
        }
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Interrupted)?;
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await
        .map_err(|_| PasswordError::Interrupted)?
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is none.
    /// Returns false for the dummy, whatever was typed.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Interrupted)?;
        let password = password.clone();
        let memory = self.memory.clone();
        let blocks = memory.lock().ok().and_then(|mut free| free.pop());
        tokio::task::spawn_blocking(move || {
            let real = hash.is_some();
            let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
            let mut blocks = blocks.unwrap_or_default();
            let ok = verify_with(password.expose_secret().as_bytes(), &hash, &mut blocks);
            if let Ok(mut free) = memory.lock() {
                free.push(blocks);
            }
            ok && real
        })
        .await
        .map_err(|_| PasswordError::Interrupted)
    }
}

/// Verifies `password` against a PHC-format argon2 `hash`, working in `blocks` (resized to
/// the hash's memory cost if it differs). A hash that does not parse never matches.
fn verify_with(password: &[u8], hash: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let (Ok(algorithm), Ok(version)) = (
        argon2::Algorithm::try_from(parsed.algorithm.as_str()),
        argon2::Version::try_from(parsed.version.unwrap_or(0x13)),
    ) else {
        return false;
    };
    blocks.resize(params.block_count(), Block::new());
    let mut out = vec![0u8; expected.as_bytes().len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, &salt, &mut out, blocks.as_mut_slice())
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}

/// Why a new password is refused, or `None` when it is acceptable. No composition rules
/// and no truncation (NIST SP 800-63B): length, and not one of the commonest passwords.
pub fn policy_violation(password: &str) -> Option<String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Some(format!("must be at least {MIN_LENGTH} characters long"));
    }
    if length > MAX_LENGTH {
        return Some(format!("must be at most {MAX_LENGTH} characters long"));
    }
    if password.contains('\0') {
        return Some("must not contain a NUL character".into());
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == lower) {
        return Some("is one of the most common passwords; choose another".into());
    }
    None
}

/// Passwords that can never be right: refused before any verification or directory bind.
pub fn is_blank(password: &str) -> bool {
    password.trim().is_empty() || password.contains('\0')
}
