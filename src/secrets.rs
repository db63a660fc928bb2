//! Secrets at rest: sealed with the master key (XChaCha20-Poly1305, fresh nonce each time),
//! stored by reference in `secrets`, and re-sealed under a new key by `roster secrets rotate`.

use diesel::Connection;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{KeyError, MasterKey};
use crate::db::DbConnection;
use crate::db::models::{master_keys, secrets};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("secret {0} does not exist")]
    Missing(i64),
    #[error("secret {id} was sealed with key {key_id}, not with the configured key")]
    OtherKey { id: i64, key_id: String },
}

/// Seals and stores a secret; `purpose` says what it is for (never the secret itself).
pub fn store(
    conn: &mut DbConnection,
    key: &MasterKey,
    purpose: &str,
    value: &SecretString,
) -> Result<i64, SecretError> {
    let sealed = key.seal(value.expose_secret().as_bytes())?;
    Ok(secrets::insert(conn, purpose, key.id(), &sealed)?)
}

pub fn reveal(
    conn: &mut DbConnection,
    key: &MasterKey,
    id: i64,
) -> Result<SecretString, SecretError> {
    let row = secrets::find(conn, id)?.ok_or(SecretError::Missing(id))?;
    if row.key_id != key.id() {
        return Err(SecretError::OtherKey {
            id,
            key_id: row.key_id,
        });
    }
    let plain = key.open(&row.sealed)?;
    let text = String::from_utf8(plain).map_err(|_| KeyError::Open)?;
    Ok(SecretString::from(text))
}

/// What recovery codes are hashed under.
const RECOVERY_KEY_PURPOSE: &str = "recovery code key";

/// The key recovery codes are hashed with (HMAC-SHA256): 32 random bytes made on first
/// use and sealed like every secret, so `roster secrets rotate` keeps them valid (a key
/// derived from the master key itself would not survive the rotation).
pub fn recovery_key(conn: &mut DbConnection, key: &MasterKey) -> Result<Vec<u8>, SecretError> {
    let row = match secrets::first_for(conn, RECOVERY_KEY_PURPOSE)? {
        Some(row) => row,
        None => {
            let mut bytes = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            let value = SecretString::from(hex::encode(bytes));
            store(conn, key, RECOVERY_KEY_PURPOSE, &value)?;
            // Two instances racing here both stored one: the oldest is the one.
            secrets::first_for(conn, RECOVERY_KEY_PURPOSE)?.ok_or(SecretError::Missing(0))?
        }
    };
    let text = reveal(conn, key, row.id)?;
    hex::decode(text.expose_secret()).map_err(|_| SecretError::from(KeyError::Open))
}

pub fn replace(
    conn: &mut DbConnection,
    key: &MasterKey,
    id: i64,
    value: &SecretString,
) -> Result<(), SecretError> {
    let sealed = key.seal(value.expose_secret().as_bytes())?;
    match secrets::update(conn, id, key.id(), &sealed)? {
        0 => Err(SecretError::Missing(id)),
        _ => Ok(()),
    }
}

/// Re-seals every secret under `new` and makes it the database's key, in one transaction:
/// on any failure nothing changes and `old` stays the key. Returns how many were re-sealed.
pub fn rotate(
    conn: &mut DbConnection,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<usize, SecretError> {
    conn.transaction(|c| {
        master_keys::switch_active(c, new.id(), &new.verifier()?)?;
        let rows = secrets::all(c)?;
        for row in &rows {
            if row.key_id != old.id() {
                return Err(SecretError::OtherKey {
                    id: row.id,
                    key_id: row.key_id.clone(),
                });
            }
            let plain = old.open(&row.sealed)?;
            secrets::update(c, row.id, new.id(), &new.seal(&plain)?)?;
        }
        Ok(rows.len())
    })
}
