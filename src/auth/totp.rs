//! TOTP (RFC 6238): 160-bit secrets from the OS, six digits, 30-second steps, ±1 step of
//! drift. totp-rs checks a code; accepting each step once is ours (`users::accept_totp_step`,
//! a compare-and-set on the last accepted step).

use totp_rs::{Builder, Secret, Totp};

pub const STEP_SECONDS: u64 = 30;

/// 20 random bytes = 160 bits (RFC 4226's recommended secret length).
pub fn new_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut bytes = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

pub fn totp(secret: &[u8], account: &str) -> Result<Totp, totp_rs::TotpError> {
    Builder::new()
        .with_secret(secret.to_vec())
        .with_digits(6)
        .with_step_duration(STEP_SECONDS)
        .with_skew(1)
        .with_account_name(account)
        .with_issuer(Some("Roster"))
        .build()
}

/// The secret as people type it into an authenticator app, in groups of four.
pub fn secret_text(secret: &[u8]) -> String {
    let base32 = Secret::from(secret.to_vec()).to_base32();
    base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The time step a code matches (within ±1 step of `now`), if any.
pub fn matching_step(totp: &Totp, code: &str, now: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    totp.check(&code, now)
}

/// Ten single-use recovery codes like `4f9c-1a2b-77de`, shown once; only hashes are kept.
pub fn new_recovery_codes() -> Vec<String> {
    use rand::RngCore;
    (0..10)
        .map(|_| {
            let mut bytes = [0u8; 6];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let hex = hex::encode(bytes);
            format!("{}-{}-{}", &hex[0..4], &hex[4..8], &hex[8..12])
        })
        .collect()
}

/// Recovery codes are compared by a keyed hash (HMAC-SHA256 under `key`, see
/// `secrets::recovery_key`), ignoring case, spaces and dashes: 48 bits hashed without a key
/// could be found from a copy of the database.
pub fn recovery_hash(key: &[u8], code: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(normal_code(code).as_bytes());
    format!("k1:{}", hex::encode(mac.finalize().into_bytes()))
}

/// How codes were hashed before they were keyed (plain SHA-256): still redeemable.
pub fn legacy_recovery_hash(code: &str) -> String {
    crate::crypto::token_hash(&normal_code(code))
}

fn normal_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
