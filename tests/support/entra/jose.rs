//! The JOSE pieces the fakes need (base64url, compact JWTs, RS256/PS256/HS256, their RSA
//! keys) and the ids and timestamps Entra and Graph put into their answers. The Google fake
//! includes this file too.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

pub fn sha1(bytes: &[u8]) -> Vec<u8> {
    Sha1::digest(bytes).to_vec()
}

/// Seconds since the epoch: JWT time claims are in these.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An unguessable URL-safe string (codes, access tokens, skiptokens).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    b64(&buf)
}

/// A random version-4 UUID, the shape of Entra's trace and correlation ids.
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `2016-01-09 02:02:12Z`, how the token endpoint writes its error timestamps.
pub fn entra_timestamp(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

/// `2016-01-09T02:02:12`, how Graph writes `innerError.date`.
pub fn graph_date(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
}

/// `2016-01-09T02:02:12.000Z`, how Google's APIs write times.
pub fn google_time(secs: u64) -> String {
    format!("{}.000Z", graph_date(secs))
}

/// UTC calendar fields of a Unix time (Howard Hinnant's days-to-civil), so the fake needs
/// no date crate.
fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// HMAC-SHA-256 (RFC 2104), written out because the key-confusion attack needs nothing else.
pub fn hs256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A compact JWS split into its parts; `signing_input` is what the signature covers.
pub struct Jwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub signing_input: String,
    pub signature: Vec<u8>,
}

pub fn parse_jwt(token: &str) -> Option<Jwt> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header = serde_json::from_slice::<Value>(&unb64(h)?).ok()?;
    let claims = serde_json::from_slice::<Value>(&unb64(c)?).ok()?;
    match (header, claims) {
        (Value::Object(header), Value::Object(claims)) => Some(Jwt {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: unb64(s)?,
        }),
        _ => None,
    }
}

/// `base64url(header).base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

pub fn verify_ps256(key: &RsaPublicKey, input: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = rsa::pss::Signature::try_from(signature) else {
        return false;
    };
    rsa::pss::VerifyingKey::<Sha256>::new(key.clone())
        .verify(input, &signature)
        .is_ok()
}

pub fn verify_rs256(key: &RsaPublicKey, input: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
        .verify(input, &signature)
        .is_ok()
}

/// One of the fake's ID-token signing keys with what its JWKS entry publishes.
pub struct SigningKey {
    private: RsaPrivateKey,
    pub kid: String,
    /// The SubjectPublicKeyInfo PEM: the HMAC secret of the key-confusion attack.
    pub public_pem: String,
    /// The modulus bytes, as the JWKS `n` carries them (the attack's other favourite secret).
    pub modulus: Vec<u8>,
}

impl SigningKey {
    fn generate() -> SigningKey {
        let private =
            RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("generate an RSA key");
        let public = private.to_public_key();
        let der = public.to_public_key_der().expect("encode a public key");
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .expect("encode a public key");
        SigningKey {
            // Entra's kid is the x5t of the key's certificate; the fake has no certificate,
            // so it takes the same hash over the public key.
            kid: b64(&sha1(der.as_bytes())),
            public_pem,
            modulus: public.n().to_bytes_be(),
            private,
        }
    }

    pub fn sign_rs256(&self, input: &[u8]) -> Vec<u8> {
        rsa::pkcs1v15::SigningKey::<Sha256>::new(self.private.clone())
            .sign(input)
            .to_vec()
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as key files carry it.
    pub fn private_pkcs8_pem(&self) -> String {
        self.private
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encode a private key")
            .to_string()
    }

    /// The SHA-1 of the public key in hex: 40 characters, the shape of Google's key ids.
    pub fn hex_fingerprint(&self) -> String {
        let bytes = unb64(&self.kid).unwrap_or_default();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The JWKS entry shaped like Google's: `alg` and `use`, no `issuer`.
    pub fn rs256_jwk(&self, kid: &str) -> Value {
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": kid,
            "n": b64(&self.modulus),
            "e": b64(&self.private.e().to_bytes_be()),
        })
    }

    /// The JWKS entry, shaped like Entra's: `issuer` present, no `alg`.
    pub fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64(&self.modulus),
            "e": b64(&self.private.e().to_bytes_be()),
            "issuer": issuer,
        })
    }
}

/// Keys shared by every fake in the process that includes this file as the same module
/// (the Entra and the Google fake each have their own): generating RSA-2048 takes a
/// noticeable time, so the n-th key any of them uses is the same object. Blocking; call off
/// the async threads.
pub fn signing_key(index: usize) -> Arc<SigningKey> {
    static POOL: Mutex<Vec<Arc<SigningKey>>> = Mutex::new(Vec::new());
    pooled(&POOL, index)
}

/// Client keys (the Google fake's service accounts), a pool apart from the ID-token signers
/// so that a client's key is never one the fake itself signs with. Blocking, as above.
pub fn client_key(index: usize) -> Arc<SigningKey> {
    static POOL: Mutex<Vec<Arc<SigningKey>>> = Mutex::new(Vec::new());
    pooled(&POOL, index)
}

fn pooled(pool: &Mutex<Vec<Arc<SigningKey>>>, index: usize) -> Arc<SigningKey> {
    let mut pool = pool.lock().unwrap_or_else(PoisonError::into_inner);
    while pool.len() <= index {
        pool.push(Arc::new(SigningKey::generate()));
    }
    pool[index].clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(
            super::entra_timestamp(1_452_304_932),
            "2016-01-09 02:02:12Z"
        );
        assert_eq!(super::graph_date(951_782_400), "2000-02-29T00:00:00");
    }
}
