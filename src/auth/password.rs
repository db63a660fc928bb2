//! Local passwords: argon2id with the crate's defaults (m=19456 KiB, t=2, p=1), worked out
//! on a fixed set of threads of their own, one per allowed concurrent hash, so a burst of
//! sign-ins queues instead of exhausting memory. Each thread keeps its 19 MiB of working
//! memory: allocating and faulting it in anew cost 1.5–2 ms of a 12 ms verification, and
//! two verifications at once through the runtime's blocking pool, their memory passed from
//! thread to thread, ran 10–15 % slower than on threads that keep theirs
//! (`cargo bench --bench sign_in`).

use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, Block, Params, PasswordHasher};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

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

enum Job {
    Hash {
        password: SecretString,
        reply: oneshot::Sender<Result<String, PasswordError>>,
    },
    Verify {
        password: SecretString,
        hash: Option<String>,
        reply: oneshot::Sender<bool>,
    },
}

/// Hands argon2 work to the hashing threads; the threads end when the last clone goes.
#[derive(Clone)]
pub struct PasswordHasherPool {
    jobs: mpsc::Sender<Job>,
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
        let (jobs, queue) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..concurrency.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        PasswordHasherPool { jobs }
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let (reply, answer) = oneshot::channel();
        let password = password.clone();
        self.jobs
            .send(Job::Hash { password, reply })
            .map_err(|_| PasswordError::Interrupted)?;
        answer.await.map_err(|_| PasswordError::Interrupted)?
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is none.
    /// Returns false for the dummy, whatever was typed. Dropping the future before a
    /// thread has taken the job up means the job is skipped.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        let (reply, answer) = oneshot::channel();
        let password = password.clone();
        self.jobs
            .send(Job::Verify {
                password,
                hash,
                reply,
            })
            .map_err(|_| PasswordError::Interrupted)?;
        answer.await.map_err(|_| PasswordError::Interrupted)
    }
}

/// One hashing thread: takes jobs until the pool is gone, in its own working memory.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panic inside argon2 drops the job's reply (the caller sees Interrupted) and
        // leaves this thread serving.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(job, &mut blocks)));
    }
}

fn run(job: Job, blocks: &mut Vec<Block>) {
    match job {
        Job::Hash { password, reply } => {
            if reply.is_closed() {
                return;
            }
            let hashed = Argon2::default()
                .hash_password(nfc(password.expose_secret()).as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()));
            let _ = reply.send(hashed);
        }
        Job::Verify {
            password,
            hash,
            reply,
        } => {
            if reply.is_closed() {
                return;
            }
            let real = hash.is_some();
            let hash = hash.as_deref().unwrap_or(DUMMY_HASH.as_str());
            let typed = password.expose_secret();
            let normalised = nfc(typed);
            // NIST 800-63B: the same password typed as NFC or NFD is the same password. A
            // hash made before passwords were normalised may hold the other form.
            let ok = verify_with(normalised.as_bytes(), hash, blocks)
                || (real && normalised != typed && verify_with(typed.as_bytes(), hash, blocks));
            let _ = reply.send(ok && real);
        }
    }
}

/// Unicode NFC: what a local password is hashed and checked as.
fn nfc(password: &str) -> String {
    unicode_normalization::UnicodeNormalization::nfc(password).collect()
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
