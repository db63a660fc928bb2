//! "Sign in with Microsoft": which profiles offer it, sending the browser to the provider,
//! and who the answer signs in. The user is the one the profile synchronised with the
//! token's `oid` — never one found by e-mail or `preferred_username` — and must be enabled
//! and allowed to log on. The protocol checks are `auth::oidc`'s.

use crate::audit::{self, Action, Actor};
use crate::auth::oidc::{Client, OidcError};
use crate::crypto::token_hash;
use crate::db::models::directory_profiles::{self, DirectoryProfile, ProfileKind};
use crate::db::models::oidc_logins::{self, NewOidcLogin};
use crate::db::models::sign_in_domains;
use crate::db::models::user_privileges::Privilege;
use crate::db::models::users::{self, AuthMethod, Standing, User};
use crate::db::now;
use crate::error::AppError;
use crate::profiles::{KindSettings, SecretSlot};
use crate::state::AppState;

/// How long the provider may take to send the user back.
const LOGIN_SECONDS: i64 = 600;
/// The kinds whose users sign in at an OpenID provider.
const OPENID_KINDS: [ProfileKind; 1] = [ProfileKind::EntraId];

/// A "Sign in with …" button.
pub struct Provider {
    pub name: String,
    pub slug: String,
}

/// The sign-in page's buttons, one per OpenID profile.
pub async fn providers(state: &AppState) -> Result<Vec<Provider>, AppError> {
    let profiles = state
        .db
        .run(|c| directory_profiles::of_kinds(c, &OPENID_KINDS).map_err(AppError::from))
        .await?;
    Ok(profiles
        .iter()
        .filter_map(|p| {
            let settings = KindSettings::of(p).ok()?;
            let slug = settings.redirect_slug()?.to_owned();
            Some(Provider {
                name: p.name.clone(),
                slug,
            })
        })
        .collect())
}

/// The profile whose users have the domain of `typed` (`user@domain`), if any: decided by
/// the domain alone, so the answer says nothing about whether the account exists.
pub async fn route(state: &AppState, typed: &str) -> Result<Option<String>, AppError> {
    let Some((_, domain)) = typed.trim().rsplit_once('@') else {
        return Ok(None);
    };
    let domain = domain.trim().to_lowercase();
    if domain.is_empty() || domain.len() > 255 {
        return Ok(None);
    }
    let found = state
        .db
        .run(move |c| -> Result<_, AppError> {
            for id in sign_in_domains::profiles_for(c, &domain)? {
                if let Some(p) = directory_profiles::find(c, id)? {
                    return Ok(Some(p));
                }
            }
            Ok(None)
        })
        .await?;
    Ok(found
        .and_then(|p| KindSettings::of(&p).ok())
        .and_then(|s| s.redirect_slug().map(str::to_owned)))
}

pub enum Started {
    /// Send the browser here.
    Redirect(String),
    /// No OpenID profile has this redirect slug.
    Unknown,
    /// The provider cannot be used now: what to tell the user (the detail is logged).
    Unavailable,
}

/// Begins a sign-in at the provider of the profile with this slug, remembering what the
/// answer must match. `binding` is the browser's pre-session (or session) cookie.
pub async fn start(
    state: &AppState,
    slug: &str,
    base_url: &str,
    login_hint: Option<&str>,
    next: &str,
    binding: &str,
) -> Result<Started, AppError> {
    let Some((profile, client)) = client_for(state, slug, base_url).await? else {
        return Ok(Started::Unknown);
    };
    let authorization = match state.oidc.authorize(&client, login_hint).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(profile = profile.id.0, error = %e, "OpenID sign-in cannot start");
            return Ok(Started::Unavailable);
        }
    };
    let (state_hash, binding_hash, next) = (
        token_hash(&authorization.state),
        token_hash(binding),
        next.to_owned(),
    );
    let (nonce, verifier, profile_id) = (
        authorization.nonce.clone(),
        authorization.pkce_verifier.clone(),
        profile.id,
    );
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            oidc_logins::create(
                c,
                &NewOidcLogin {
                    state_hash: &state_hash,
                    binding_hash: &binding_hash,
                    profile_id,
                    nonce: &nonce,
                    pkce_verifier: &verifier,
                    next: &next,
                    expires_at: now() + LOGIN_SECONDS,
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(Started::Redirect(authorization.url))
}

/// The provider's answer at the redirect URI.
#[derive(Default)]
pub struct Answer {
    pub code: String,
    pub state: String,
    pub error: String,
    pub error_description: String,
}

pub enum Finished {
    /// Signed in at the provider and known here; `next` is where they were going.
    SignedIn { user: Box<User>, next: String },
    /// Refused: what to tell the person (the reason is in the audit log).
    Refused(String),
}

/// Checks the provider's answer and finds the synchronised user it names.
pub async fn finish(
    state: &AppState,
    slug: &str,
    base_url: &str,
    answer: Answer,
    binding: &str,
    client_ip: &str,
) -> Result<Finished, AppError> {
    let refuse = |why: String, message: &'static str| async move {
        let actor = Actor::anonymous("OpenID sign-in", client_ip);
        audit::record(&state.db, &actor, Action::SignInFailed, slug, &why).await?;
        Ok::<_, AppError>(Finished::Refused(message.to_owned()))
    };
    const EXPIRED: &str =
        "This sign-in link has expired or was already used. Start again from the sign-in page.";
    let hash = token_hash(&answer.state);
    let login = state
        .db
        .write(move |c| oidc_logins::take(c, &hash).map_err(AppError::from))
        .await?;
    let Some(login) = login else {
        return refuse("unknown or reused state".into(), EXPIRED).await;
    };
    if login.binding_hash != token_hash(binding) {
        return refuse("state from another browser".into(), EXPIRED).await;
    }
    if login.expires_at <= now() {
        return refuse("sign-in took too long".into(), EXPIRED).await;
    }
    let Some((profile, client)) = client_for(state, slug, base_url).await? else {
        return refuse("unknown redirect URI".into(), EXPIRED).await;
    };
    if profile.id != login.profile_id {
        return refuse("state of another profile".into(), EXPIRED).await;
    }
    if !answer.error.is_empty() {
        let why = format!("{}: {}", answer.error, answer.error_description);
        let actor = Actor::anonymous("OpenID sign-in", client_ip);
        audit::record(&state.db, &actor, Action::SignInFailed, slug, &why).await?;
        return Ok(Finished::Refused(provider_error(
            &answer.error,
            &answer.error_description,
        )));
    }
    if answer.code.is_empty() {
        return refuse("no code in the answer".into(), EXPIRED).await;
    }
    let identity = match state
        .oidc
        .finish(&client, &answer.code, &login.nonce, &login.pkce_verifier)
        .await
    {
        Ok(identity) => identity,
        Err(e @ OidcError::Provider(_)) => {
            tracing::warn!(profile = profile.id.0, error = %e, "OpenID sign-in failed");
            return refuse(
                e.to_string(),
                "Microsoft could not be reached to finish the sign-in. Try again in a moment.",
            )
            .await;
        }
        Err(e) => {
            return refuse(
                e.to_string(),
                "The sign-in could not be verified. Start again from the sign-in page.",
            )
            .await;
        }
    };
    let (profile_id, oid) = (profile.id, identity.object_id.clone());
    let user = state
        .db
        .run(move |c| users::find_by_external_id(c, profile_id, &oid).map_err(AppError::from))
        .await?;
    const NOT_SYNCHRONISED: &str = "Your account has not been synchronised to Roster yet, or may not sign in here. Ask your administrator.";
    let Some(user) = user else {
        let why = format!(
            "no synchronised user with oid {} ({})",
            identity.object_id, identity.preferred_username
        );
        return refuse(why, NOT_SYNCHRONISED).await;
    };
    let why = if user.auth_method() != AuthMethod::Directory {
        Some("user signs in with a local password")
    } else if user.standing() != Standing::Enabled {
        Some("user is disabled")
    } else if !user.privileges().contains(&Privilege::LogOn) {
        Some("user lacks the log on privilege")
    } else {
        None
    };
    if let Some(why) = why {
        let actor = Actor::anonymous(user.login_name(), client_ip);
        audit::record(
            &state.db,
            &actor,
            Action::SignInFailed,
            &user.login_name(),
            why,
        )
        .await?;
        return Ok(Finished::Refused(NOT_SYNCHRONISED.to_owned()));
    }
    let (id, who, ip) = (user.id, user.login_name(), client_ip.to_owned());
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            users::record_sign_in(c, id)?;
            audit::write(
                c,
                &Actor::user(id, who.as_str(), ip.as_str()),
                Action::SignIn,
                &who,
                "with Microsoft",
            )?;
            Ok(())
        })
        .await?;
    Ok(Finished::SignedIn {
        user: Box::new(user),
        next: login.next,
    })
}

/// The OpenID client of the profile with this redirect slug.
async fn client_for(
    state: &AppState,
    slug: &str,
    base_url: &str,
) -> Result<Option<(DirectoryProfile, Client)>, AppError> {
    let profiles = state
        .db
        .run(|c| directory_profiles::of_kinds(c, &OPENID_KINDS).map_err(AppError::from))
        .await?;
    let found = profiles.into_iter().find_map(|p| {
        let settings = KindSettings::of(&p).ok()?;
        (settings.redirect_slug() == Some(slug) && !slug.is_empty()).then_some((p, settings))
    });
    let Some((profile, settings)) = found else {
        return Ok(None);
    };
    let KindSettings::Entra(entra) = &settings else {
        return Ok(None);
    };
    let key = crate::profiles::store::stored_secret(
        &state.db,
        &state.master_key,
        &settings,
        SecretSlot::CertificateKey,
    )
    .await?;
    let Some(private_key_pem) = key else {
        return Ok(None);
    };
    let tenant = entra.tenant_id.trim().to_lowercase();
    let issuer = format!("{}/{tenant}/v2.0", entra.authority());
    let client = Client {
        discovery_url: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
        client_id: entra.client_id.trim().to_owned(),
        redirect_uri: crate::profiles::redirect_uri(base_url, slug),
        private_key_pem,
        certificate_pem: entra.certificate_pem.clone(),
        tenant: Some(tenant),
    };
    Ok(Some((profile, client)))
}

/// The provider's refusal in words (RFC 6749 §4.1.2.1 codes; Entra adds AADSTS text).
fn provider_error(error: &str, description: &str) -> String {
    let first = description.lines().next().unwrap_or("").trim();
    let what = match error {
        "access_denied" => "The sign-in was cancelled or refused at Microsoft".to_owned(),
        "login_required" | "interaction_required" => {
            "Microsoft needs you to sign in again".to_owned()
        }
        "consent_required" => {
            "An administrator must consent to Roster in the Entra admin centre".to_owned()
        }
        other => format!("Microsoft refused the sign-in ({other})"),
    };
    let shown: String = first.chars().take(300).collect();
    if shown.is_empty() {
        format!("{what}.")
    } else {
        format!("{what}: {shown}")
    }
}
