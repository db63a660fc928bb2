//! "Sign in with Microsoft" and "Sign in with Google": which profiles offer it, sending the
//! browser to the provider, and who the answer signs in. The user is the one the profile
//! synchronised with the token's directory id (Entra's `oid`, Google's `sub`) — never one
//! found by e-mail or `preferred_username` — and must be enabled and allowed to log on.
//! The protocol checks are `auth::oidc`'s.

use crate::audit::{self, Action, Actor};
use crate::auth::oidc::{Client, ClientAuth, OidcError, Rules};
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

const EXPIRED: &str =
    "This sign-in link has expired or was already used. Start again from the sign-in page.";
/// How long the provider may take to send the user back.
const LOGIN_SECONDS: i64 = 600;
/// Sign-ins one browser may have begun and not finished.
const MAX_IN_FLIGHT: i64 = 5;
/// … and one client address (a new pre-session cookie is one request away, so the
/// address is what bounds how much an anonymous client can make Roster keep).
const MAX_IN_FLIGHT_PER_ADDRESS: i64 = 50;
/// The kinds whose users sign in at an OpenID provider.
const OPENID_KINDS: [ProfileKind; 2] = [ProfileKind::EntraId, ProfileKind::GoogleWorkspace];

/// A "Sign in with …" button.
pub struct Provider {
    pub name: String,
    pub slug: String,
}

/// The sign-in page's buttons, one per OpenID profile.
pub async fn providers(state: &AppState) -> Result<Vec<Provider>, AppError> {
    Ok(openid_profiles(state)
        .await?
        .into_iter()
        .filter(|(_, settings)| match settings {
            KindSettings::Entra(s) => s.certificate_key_secret.is_some(),
            KindSettings::Google(s) => {
                s.oidc_client_secret_secret.is_some() && !s.oidc_client_id.trim().is_empty()
            }
            _ => false,
        })
        .filter_map(|(p, settings)| {
            Some(Provider {
                slug: settings.redirect_slug()?.to_owned(),
                name: p.name,
            })
        })
        .collect())
}

/// The OpenID profiles with readable settings, oldest first.
async fn openid_profiles(
    state: &AppState,
) -> Result<Vec<(DirectoryProfile, KindSettings)>, AppError> {
    let profiles = state
        .db
        .run(|c| directory_profiles::of_kinds(c, &OPENID_KINDS).map_err(AppError::from))
        .await?;
    Ok(profiles
        .into_iter()
        .filter_map(|p| {
            let settings = KindSettings::of(&p).ok()?;
            Some((p, settings))
        })
        .collect())
}

/// The profile whose users have the domain of `typed` (`user@domain`), if any: decided by
/// the domain alone, so the answer says nothing about whether the account exists.
///
/// A domain that an Active Directory or LDAP profile has too (a hybrid organisation) goes
/// to the provider only when no password was typed: a password is checked as usual.
pub async fn route(
    state: &AppState,
    typed: &str,
    password_typed: bool,
) -> Result<Option<String>, AppError> {
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
            if password_typed && directory_profiles::password_domain_exists(c, &domain)? {
                return Ok(None);
            }
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
    client_ip: &str,
) -> Result<Started, AppError> {
    let redirect_uri = crate::profiles::redirect_uri(base_url, slug);
    let profiles = openid_profiles(state).await?;
    let Some((profile, client)) = client_for(state, &profiles, slug, &redirect_uri).await? else {
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
    let (redirect, ip) = (client.redirect_uri.clone(), client_ip.to_owned());
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
                    redirect_uri: &redirect,
                    client_ip: &ip,
                    expires_at: now() + LOGIN_SECONDS,
                },
            )?;
            // A browser keeps a few sign-ins in flight (tabs, a retry), not thousands.
            oidc_logins::keep_latest(c, oidc_logins::Of::Binding(&binding_hash), MAX_IN_FLIGHT)?;
            oidc_logins::keep_latest(c, oidc_logins::Of::Address(&ip), MAX_IN_FLIGHT_PER_ADDRESS)?;
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
    answer: Answer,
    binding: &str,
    client_ip: &str,
) -> Result<Finished, AppError> {
    // Audited with the reason; the person sees `message`.
    let refuse = |why: String, message: String| async move {
        let actor = Actor::anonymous("OpenID sign-in", client_ip);
        audit::record(&state.db, &actor, Action::SignInFailed, slug, &why).await?;
        Ok::<_, AppError>(Finished::Refused(message))
    };
    let expired = || EXPIRED.to_owned();
    let hash = token_hash(&answer.state);
    let login = state
        .db
        .write(move |c| oidc_logins::take(c, &hash).map_err(AppError::from))
        .await?;
    let Some(login) = login else {
        // No sign-in of Roster's: nothing to audit (anyone can send this request, and an
        // audit row for each would let them grow the log).
        tracing::info!(client_ip, "OpenID answer with an unknown or used state");
        return Ok(Finished::Refused(EXPIRED.to_owned()));
    };
    if login.binding_hash != token_hash(binding) {
        return refuse("state from another browser".into(), expired()).await;
    }
    if login.expires_at <= now() {
        return refuse("sign-in took too long".into(), expired()).await;
    }
    let profiles = openid_profiles(state).await?;
    // The redirect URI the sign-in began with, whatever Host this request names.
    let Some((profile, client)) = client_for(state, &profiles, slug, &login.redirect_uri).await?
    else {
        return refuse("unknown redirect URI".into(), expired()).await;
    };
    if profile.id != login.profile_id {
        return refuse("state of another profile".into(), expired()).await;
    }
    let company = company(&client);
    if !answer.error.is_empty() {
        let why = format!("{}: {}", answer.error, answer.error_description);
        let message = provider_error(company, &answer.error, &answer.error_description);
        return refuse(why, message).await;
    }
    if answer.code.is_empty() {
        return refuse("no code in the answer".into(), expired()).await;
    }
    let identity = match state
        .oidc
        .finish(&client, &answer.code, &login.nonce, &login.pkce_verifier)
        .await
    {
        Ok(identity) => identity,
        Err(e @ OidcError::Provider(_)) => {
            tracing::warn!(profile = profile.id.0, error = %e, "OpenID sign-in failed");
            let message = format!(
                "{company}'s answer did not arrive or could not be read, so the sign-in was not finished. Try again in a moment."
            );
            return refuse(e.to_string(), message).await;
        }
        Err(OidcError::TokenEndpoint(said)) => {
            let shown: String = said.chars().take(300).collect();
            let message = format!("{company} refused to finish the sign-in: {shown}");
            return refuse(format!("token endpoint: {said}"), message).await;
        }
        Err(e) => {
            let message = "The sign-in could not be verified. Start again from the sign-in page.";
            return refuse(e.to_string(), message.into()).await;
        }
    };
    // An id is one user throughout its tenant or Workspace: any profile of the same
    // directory may have synchronised them (profiles scoped to different groups), this
    // one first.
    let organisation = identity.organisation.to_lowercase();
    let mut same_directory = vec![profile.id];
    same_directory.extend(
        profiles
            .iter()
            .filter(|(p, s)| {
                p.id != profile.id
                    && match s {
                        KindSettings::Entra(e) => {
                            matches!(client.rules, Rules::Entra { .. })
                                && e.tenant_id.trim().to_lowercase() == organisation
                        }
                        KindSettings::Google(_) => {
                            matches!(client.rules, Rules::Google { .. })
                                && p.domain.trim().to_lowercase() == organisation
                        }
                        _ => false,
                    }
            })
            .map(|(p, _)| p.id),
    );
    let subject = identity.subject.clone();
    let user = state
        .db
        .run(move |c| -> Result<Option<User>, AppError> {
            for id in same_directory {
                if let Some(user) = users::find_by_external_id(c, id, &subject)? {
                    return Ok(Some(user));
                }
            }
            Ok(None)
        })
        .await?;
    const NOT_SYNCHRONISED: &str = "Your account has not been synchronised to Roster yet, or may not sign in here. Ask your administrator.";
    let Some(user) = user else {
        let why = format!(
            "no synchronised user with id {} ({})",
            identity.subject, identity.username
        );
        return refuse(why, NOT_SYNCHRONISED.into()).await;
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
                &format!("with {company}"),
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
    profiles: &[(DirectoryProfile, KindSettings)],
    slug: &str,
    redirect_uri: &str,
) -> Result<Option<(DirectoryProfile, Client)>, AppError> {
    let found = profiles
        .iter()
        .find(|(_, settings)| settings.redirect_slug() == Some(slug) && !slug.is_empty());
    let Some((profile, settings)) = found else {
        return Ok(None);
    };
    let client = match settings {
        KindSettings::Entra(entra) => {
            let Some(private_key_pem) = stored(state, settings, SecretSlot::CertificateKey).await?
            else {
                return Ok(None);
            };
            let tenant = entra.tenant_id.trim().to_lowercase();
            let issuer = format!("{}/{tenant}/v2.0", entra.authority());
            Client {
                discovery_url: format!("{issuer}/.well-known/openid-configuration"),
                issuer,
                client_id: entra.client_id.trim().to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                auth: ClientAuth::Assertion {
                    private_key_pem,
                    certificate_pem: entra.certificate_pem.clone(),
                },
                rules: Rules::Entra { tenant },
                endpoint_hosts: &[],
            }
        }
        KindSettings::Google(google) => {
            let Some(secret) = stored(state, settings, SecretSlot::OidcClientSecret).await? else {
                return Ok(None);
            };
            let issuer = google.oidc_issuer().to_owned();
            Client {
                discovery_url: format!("{issuer}/.well-known/openid-configuration"),
                issuer,
                client_id: google.oidc_client_id.trim().to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                auth: ClientAuth::Secret(secret),
                rules: Rules::Google {
                    domain: profile.domain.trim().to_lowercase(),
                },
                endpoint_hosts: crate::directory::google::OIDC_ENDPOINT_HOSTS,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some((profile.clone(), client)))
}

async fn stored(
    state: &AppState,
    settings: &KindSettings,
    slot: SecretSlot,
) -> Result<Option<secrecy::SecretString>, AppError> {
    Ok(crate::profiles::store::stored_secret(&state.db, &state.master_key, settings, slot).await?)
}

/// Whose sign-in page the client is, for messages.
fn company(client: &Client) -> &'static str {
    match client.rules {
        Rules::Entra { .. } => "Microsoft",
        Rules::Google { .. } => "Google",
    }
}

/// The provider's refusal in words (RFC 6749 §4.1.2.1 codes; Entra adds AADSTS text).
fn provider_error(company: &str, error: &str, description: &str) -> String {
    let first = description.lines().next().unwrap_or("").trim();
    let what = match error {
        "access_denied" => format!("The sign-in was cancelled or refused at {company}"),
        "login_required" | "interaction_required" => {
            format!("{company} needs you to sign in again")
        }
        "consent_required" if company == "Microsoft" => {
            "An administrator must consent to Roster in the Entra admin centre".to_owned()
        }
        "consent_required" => format!("An administrator must allow Roster at {company}"),
        other => format!("{company} refused the sign-in ({other})"),
    };
    let shown: String = first.chars().take(300).collect();
    if shown.is_empty() {
        format!("{what}.")
    } else {
        format!("{what}: {shown}")
    }
}
