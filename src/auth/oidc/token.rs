//! The ID token's checks: signature, `iss`, `aud`, `azp`, `exp`/`nbf`, `nonce` through
//! the OpenID library, then the provider's rules (Entra's `tid`, Google's `hd` and
//! `email_verified`) and the user's directory id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreGenderClaim, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{AdditionalClaims, ClientId, IssuerUrl, JsonWebKey, Nonce};
use serde::{Deserialize, Serialize};

use super::{Client, Identity, OidcError, Rules};

/// Clocks of Roster and the provider may differ by this much.
const SKEW: i64 = 120;

#[derive(Debug, Clone, Deserialize, Serialize)]
struct ExtraClaims {
    oid: Option<String>,
    tid: Option<String>,
    hd: Option<String>,
    nbf: Option<i64>,
}
impl AdditionalClaims for ExtraClaims {}

type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

pub(super) enum Check {
    NoKey,
    Refused(String),
}

impl Check {
    pub(super) fn into_error(self) -> OidcError {
        match self {
            Check::NoKey => OidcError::Token("no key of the provider has the token's kid".into()),
            Check::Refused(why) => OidcError::Token(why),
        }
    }
}

/// Checks an ID token as it came from the token endpoint.
pub(super) fn check(
    client: &Client,
    keys: &CoreJsonWebKeySet,
    id_token: &str,
    nonce: &str,
) -> Result<Identity, Check> {
    let (text, signature_checked) = match schemeless_issuer(client, keys, id_token)? {
        Some(rewritten) => (rewritten, true),
        None => (id_token.to_owned(), false),
    };
    let token: IdToken = text
        .parse()
        .map_err(|e| Check::Refused(format!("not a JWT: {e}")))?;
    let issuer =
        IssuerUrl::new(client.issuer.clone()).map_err(|e| Check::Refused(e.to_string()))?;
    // `new_public_client`: no shared secret, so an HMAC-signed token (e.g. keyed with the
    // provider's public key) is refused; only RS256 is allowed, so `alg: none` is too.
    // Untrusted extra audiences are refused by default. The clock is set back by the skew
    // so a token that expired a moment ago still counts.
    let mut verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(client.client_id.clone()),
        issuer,
        keys.clone(),
    )
    .set_time_fn(|| chrono::Utc::now() - chrono::Duration::seconds(SKEW));
    if signature_checked {
        // Checked by `schemeless_issuer` over the bytes the provider signed; the claims
        // here differ from them only in the issuer written in full.
        verifier = verifier.insecure_disable_signature_check();
    }
    let claims = token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|e| match e {
            openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            ) => Check::NoKey,
            other => Check::Refused(crate::directory::rest::error_chain(&other)),
        })?;
    let extra = claims.additional_claims();
    if let Some(azp) = claims.authorized_party()
        && azp.as_str() != client.client_id
    {
        return Err(Check::Refused(format!(
            "azp is {}, not our client id",
            azp.as_str()
        )));
    }
    let now = chrono::Utc::now().timestamp();
    if let Some(nbf) = extra.nbf
        && nbf > now + SKEW
    {
        return Err(Check::Refused("the token is not valid yet (nbf)".into()));
    }
    let username = claims
        .preferred_username()
        .map(|u| u.as_str().to_owned())
        .or_else(|| claims.email().map(|e| e.as_str().to_owned()))
        .unwrap_or_default();
    match &client.rules {
        Rules::Entra { tenant: expected } => {
            let tenant = extra.tid.clone().unwrap_or_default();
            if !tenant.eq_ignore_ascii_case(expected) {
                return Err(Check::Refused(format!(
                    "the token is from tenant {tenant:?}, not the profile's {expected}"
                )));
            }
            let subject = extra
                .oid
                .clone()
                .filter(|o| !o.is_empty())
                .ok_or_else(|| Check::Refused("the token has no oid".into()))?;
            Ok(Identity {
                subject,
                organisation: tenant,
                username,
            })
        }
        Rules::Google { domain } => {
            // `hd` is what Google vouches for; the `hd` request parameter is only a hint,
            // and a personal account has none.
            let hd = extra.hd.clone().unwrap_or_default();
            if !hd.eq_ignore_ascii_case(domain) {
                return Err(Check::Refused(format!(
                    "hd is {hd:?}, not the profile's domain {domain}"
                )));
            }
            if claims.email_verified() != Some(true) {
                return Err(Check::Refused("email_verified is not true".into()));
            }
            let subject = claims.subject().as_str().to_owned();
            if subject.is_empty() {
                return Err(Check::Refused("the token has no sub".into()));
            }
            Ok(Identity {
                subject,
                organisation: hd.to_lowercase(),
                username,
            })
        }
    }
}

/// Google documents `iss` as `https://accounts.google.com` or `accounts.google.com`; the
/// second is no URL, so the OpenID library cannot read such a token at all. For a Google
/// client, a token naming the issuer without `https://` has its RS256 signature checked
/// here against the provider's key of its `kid`, and is then given back with the issuer in
/// full (no longer verifiable, hence checked first) for every other check.
fn schemeless_issuer(
    client: &Client,
    keys: &CoreJsonWebKeySet,
    id_token: &str,
) -> Result<Option<String>, Check> {
    let Rules::Google { .. } = client.rules else {
        return Ok(None);
    };
    // (`http://` is only ever a local provider: tests.)
    let Some((_, short)) = client.issuer.split_once("://") else {
        return Ok(None);
    };
    let mut parts = id_token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let decode = |part: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let Some(mut claims) = decode(payload) else {
        return Ok(None);
    };
    if claims.get("iss").and_then(|v| v.as_str()) != Some(short) {
        return Ok(None);
    }
    let head = decode(header).ok_or_else(|| Check::Refused("unreadable JWT header".into()))?;
    let text = |k: &str| head.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    if text("alg") != "RS256" {
        return Err(Check::Refused(format!(
            "the token is signed {:?}, not RS256",
            text("alg")
        )));
    }
    let kid = text("kid");
    let key = keys
        .keys()
        .iter()
        .find(|k| !kid.is_empty() && k.key_id().map(|id| id.as_str()) == Some(kid))
        .ok_or(Check::NoKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Check::Refused("unreadable signature".into()))?;
    key.verify_signature(
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        format!("{header}.{payload}").as_bytes(),
        &signature,
    )
    .map_err(|e| Check::Refused(format!("bad signature: {e}")))?;
    claims.insert("iss".into(), client.issuer.clone().into());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::Value::Object(claims).to_string());
    Ok(Some(format!(
        "{header}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}
