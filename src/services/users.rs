//! The admin's user actions: the list, creating a local user, a user's page, disable /
//! enable / MFA / delete, privileges, and switching between a Roster password and
//! directory sign-in. Each change is audited in its own transaction.

use secrecy::SecretString;

use crate::audit::{self, Action, Actor};
use crate::db::ids::{ProfileId, UserId};
use crate::db::models::directory_profiles::ProfileKind;
use crate::db::models::user_privileges::{self, Privilege};
use crate::db::models::users::{self, AuthMethod, NewLocalUser, User, UserFilter, UserPage};
use crate::db::models::{directory_groups, directory_profiles, sessions};
use crate::error::AppError;
use crate::profiles::KindSettings;
use crate::profiles::connector::ConnectorError;
use crate::state::AppState;
use crate::validation::{self, FieldErrors};

/// The kinds a local user can be switched to, as the refusals name them.
const PASSWORD_KINDS: &str = "Active Directory, LDAP, Application Integration or IceWarp";

pub const PAGE_SIZE: i64 = 50;

/// The page of the users matching `q` and `filter` that starts at `start`, and every
/// profile (id, name) for the filter's choices.
pub async fn search(
    state: &AppState,
    q: &str,
    filter: UserFilter,
    start: users::Start,
) -> Result<(UserPage, Vec<(ProfileId, String)>), AppError> {
    let needle = q.to_owned();
    state
        .db
        .run(move |c| -> Result<_, AppError> {
            let found = users::search_filtered(
                c,
                &needle,
                &filter,
                start,
                PAGE_SIZE,
                users::SEARCH_COUNT_CAP,
            )?;
            let profiles = directory_profiles::list(c, "", false)?
                .into_iter()
                .map(|p| (p.id, p.name))
                .collect();
            Ok((found, profiles))
        })
        .await
}

/// A local user as the create form posts it.
pub struct NewUser {
    pub username: String,
    pub full_name: String,
    pub emails: String,
    pub password: String,
    pub password_confirm: String,
    pub privileges: Vec<Privilege>,
}

pub enum Created {
    Created(UserId),
    Invalid(FieldErrors),
}

pub async fn create(state: &AppState, actor: &Actor, new: NewUser) -> Result<Created, AppError> {
    let mut errors = FieldErrors::default();
    validation::check_username(&mut errors, "username", &new.username);
    if new.full_name.chars().count() > 256 {
        errors.add(
            "full_name",
            "Full name must be at most 256 characters long.",
        );
    }
    let emails = validation::parse_emails(&mut errors, "emails", &new.emails);
    validation::check_new_password(&mut errors, &new.password, &new.password_confirm);
    if !errors.has("username") {
        let name = new.username.clone();
        let taken = state
            .db
            .run(move |c| users::exists_with_username(c, &name).map_err(AppError::from))
            .await?;
        if taken {
            errors.add("username", "A user with this name already exists.");
        }
    }
    if !errors.is_empty() {
        return Ok(Created::Invalid(errors));
    }
    let hash = state.hasher.hash(&SecretString::from(new.password)).await?;
    let actor = actor.clone();
    let id = state
        .db
        .write(move |c| -> Result<UserId, AppError> {
            let id = users::create_local(
                c,
                &NewLocalUser {
                    username: &new.username,
                    full_name: &new.full_name,
                    emails: &emails,
                    password_hash: &hash,
                    privileges: &new.privileges,
                },
            )?;
            let detail = format!("privileges: {}", Privilege::join(&new.privileges));
            audit::write(c, &actor, Action::UserCreated, new.username.trim(), &detail)?;
            Ok(id)
        })
        .await?;
    Ok(Created::Created(id))
}

/// What a user's page shows besides the row.
pub struct Detail {
    pub user: User,
    /// The source profile's name, or "Created in Roster".
    pub source: String,
    /// The source profile, when it still exists.
    pub source_profile: Option<ProfileId>,
    /// Profiles checking passwords that a local user can be switched to: (id, name).
    pub directory_profiles: Vec<(ProfileId, String)>,
    /// (id, name) of each of the user's groups.
    pub groups: Vec<(i64, String)>,
}

pub async fn detail(state: &AppState, id: UserId) -> Result<Detail, AppError> {
    state
        .db
        .run(move |c| -> Result<Detail, AppError> {
            let user = users::find(c, id)?.ok_or(AppError::NotFound)?;
            let profile_name = match user.profile_id {
                Some(p) => directory_profiles::name(c, p)?,
                None => None,
            };
            let source_profile = profile_name.as_ref().and(user.profile_id);
            let source = match (user.profile_id, profile_name) {
                (_, Some(name)) => name,
                (Some(_), None) => String::new(),
                (None, _) => "Created in Roster".into(),
            };
            let directory_profiles = directory_profiles::list(c, "", false)?
                .into_iter()
                .filter(|p| p.kind().is_some_and(ProfileKind::checks_passwords))
                .map(|p| (p.id, p.name))
                .collect();
            Ok(Detail {
                groups: directory_groups::of_user(c, id)?,
                user,
                source,
                source_profile,
                directory_profiles,
            })
        })
        .await
}

/// What an admin can do to a user from the user's page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAction {
    /// Also ends the user's sessions.
    Disable,
    Enable,
    RequireMfa,
    NotRequireMfa,
    ResetMfa,
    Delete,
}

impl UserAction {
    pub fn parse(value: &str) -> Option<UserAction> {
        Some(match value {
            "disable" => UserAction::Disable,
            "enable" => UserAction::Enable,
            "require_mfa" => UserAction::RequireMfa,
            "not_require_mfa" => UserAction::NotRequireMfa,
            "reset_mfa" => UserAction::ResetMfa,
            "delete" => UserAction::Delete,
            _ => return None,
        })
    }

    fn audited_as(self) -> Action {
        match self {
            UserAction::Disable => Action::UserDisabled,
            UserAction::Enable => Action::UserEnabled,
            UserAction::RequireMfa => Action::UserMfaRequired,
            UserAction::NotRequireMfa => Action::UserMfaNotRequired,
            UserAction::ResetMfa => Action::UserMfaReset,
            UserAction::Delete => Action::UserDeleted,
        }
    }
}

pub async fn act(
    state: &AppState,
    actor: &Actor,
    id: UserId,
    action: UserAction,
) -> Result<(), AppError> {
    if actor.user_id == Some(id) && matches!(action, UserAction::Disable | UserAction::Delete) {
        return Err(AppError::BadRequest(
            "You cannot disable or delete yourself.".into(),
        ));
    }
    let actor = actor.clone();
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            let user = users::find(c, id)?.ok_or(AppError::NotFound)?;
            match action {
                UserAction::Disable => {
                    users::set_disabled(c, id, true)?;
                    sessions::delete_for_user(c, id)?;
                }
                UserAction::Enable => {
                    users::set_disabled(c, id, false)?;
                }
                UserAction::RequireMfa => {
                    users::set_mfa_required(c, id, true)?;
                }
                UserAction::NotRequireMfa => {
                    users::set_mfa_required(c, id, false)?;
                }
                UserAction::ResetMfa => {
                    users::reset_mfa(c, id)?;
                }
                UserAction::Delete => {
                    users::delete(c, id)?;
                }
            }
            audit::write(c, &actor, action.audited_as(), &user.login_name(), "")?;
            Ok(())
        })
        .await
}

/// Replaces a user's privileges. An admin cannot take the Administrator privilege from
/// themselves.
pub async fn set_privileges(
    state: &AppState,
    actor: &Actor,
    id: UserId,
    mut chosen: Vec<Privilege>,
) -> Result<(), AppError> {
    if actor.user_id == Some(id) && !chosen.contains(&Privilege::Admin) {
        chosen.push(Privilege::Admin);
    }
    let actor = actor.clone();
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            let user = users::find(c, id)?.ok_or(AppError::NotFound)?;
            user_privileges::replace(c, id, &chosen)?;
            let detail = Privilege::join(&chosen);
            let target = user.login_name();
            audit::write(c, &actor, Action::UserPrivilegesChanged, &target, &detail)?;
            Ok(())
        })
        .await
}

/// The authentication switch as posted: a local user moves to directory sign-in at
/// `profile` (an AD/LDAP profile's id, whose directory must hold exactly one user of the
/// same name); a directory user gets the Roster password `password`.
pub struct SwitchForm {
    pub profile: String,
    pub password: String,
    pub password_confirm: String,
}

pub enum Switched {
    Switched,
    /// Refused, in words for the admin that name the field.
    Refused(String),
}

pub async fn switch_authentication(
    state: &AppState,
    actor: &Actor,
    id: UserId,
    form: SwitchForm,
) -> Result<Switched, AppError> {
    let user = state
        .db
        .run(move |c| users::find(c, id).map_err(AppError::from))
        .await?
        .ok_or(AppError::NotFound)?;
    match user.auth_method() {
        AuthMethod::Local => switch_to_directory(state, actor, &user, &form.profile).await,
        AuthMethod::Directory => switch_to_local(state, actor, &user, form).await,
    }
}

/// A directory user gets a Roster password and leaves the profile.
async fn switch_to_local(
    state: &AppState,
    actor: &Actor,
    user: &User,
    form: SwitchForm,
) -> Result<Switched, AppError> {
    let mut errors = FieldErrors::default();
    validation::check_new_password(&mut errors, &form.password, &form.password_confirm);
    if let Some((name, message)) = errors.first() {
        let label = match name {
            "password_confirm" => "Repeat the new password",
            _ => "New password",
        };
        return Ok(Switched::Refused(format!("{label}: {message}")));
    }
    let hash = state
        .hasher
        .hash(&SecretString::from(form.password))
        .await?;
    let (id, target, actor) = (user.id, user.login_name(), actor.clone());
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            users::switch_to_local(c, id, &hash)?;
            let action = Action::UserAuthenticationSwitched;
            audit::write(c, &actor, action, &target, "to a local password")?;
            Ok(())
        })
        .await?;
    Ok(Switched::Switched)
}

/// Moves a local user to directory sign-in at a profile checking passwords (AD, LDAP,
/// Application Integration, IceWarp) whose directory holds
/// exactly one user of the same name (mapped the way the profile's syncs map names).
/// A refusal names the field for the admin.
async fn switch_to_directory(
    state: &AppState,
    actor: &Actor,
    user: &User,
    profile_field: &str,
) -> Result<Switched, AppError> {
    let refuse = |why: String| Ok(Switched::Refused(format!("Profile: {why}")));
    let Ok(profile_id) = profile_field.trim().parse::<ProfileId>() else {
        return refuse(format!(
            "choose a profile whose users sign in with a password ({PASSWORD_KINDS})."
        ));
    };
    let profile = state
        .db
        .run(move |c| directory_profiles::find(c, profile_id).map_err(AppError::from))
        .await?;
    let Some(profile) = profile else {
        return refuse("that profile no longer exists.".into());
    };
    let settings = KindSettings::of(&profile).map_err(anyhow::Error::from)?;
    let directory = match state.connectors().for_sign_in(&profile, &settings).await {
        Ok(d) if d.sign_in_method() == crate::directory::SignInMethod::Password => d,
        Ok(_) | Err(ConnectorError::NotAvailable(_)) => {
            return refuse(format!(
                "{}'s users sign in at their OpenID provider; choose a profile whose users sign in with a password ({PASSWORD_KINDS}).",
                profile.name
            ));
        }
        Err(e @ (ConnectorError::Unusable(_) | ConnectorError::NotYet(_))) => {
            return refuse(format!("{e}."));
        }
        Err(e @ ConnectorError::Secret(_)) => return Err(anyhow::Error::from(e).into()),
    };
    let source = match directory.find_user(&user.username).await {
        Ok(Some(source)) => source,
        Ok(None) => {
            return refuse(format!(
                "the directory of {} has no user named {}.",
                profile.name, user.username
            ));
        }
        Err(e) => {
            return refuse(format!(
                "the directory of {} could not be asked: {e}",
                profile.name
            ));
        }
    };
    let username = if profile.use_local_part {
        crate::directory::names::local_part(&source.username).unwrap_or_default()
    } else {
        source.username.trim().to_owned()
    };
    let (id, domain, external_id) = (user.id, profile.domain.clone(), source.external_id);
    // The name the directory knows them by, which it is asked with at sign-in.
    let directory_name = source.username.trim().to_owned();
    let (target, actor) = (user.login_name(), actor.clone());
    let detail = format!("to directory sign-in at {}", profile.name);
    let name = username.clone();
    let taken = state
        .db
        .write(move |c| {
            if let Some(other) =
                users::identity_taken(c, id, &name, &domain, profile_id, &external_id)?
            {
                return Ok::<_, AppError>(Some(other));
            }
            let to = users::DirectoryAccount {
                profile_id,
                external_id: &external_id,
                username: &name,
                domain: &domain,
                directory_name: &directory_name,
            };
            users::switch_to_directory(c, id, &to)?;
            let action = Action::UserAuthenticationSwitched;
            audit::write(c, &actor, action, &target, &detail)?;
            Ok(None)
        })
        .await?;
    match taken {
        Some(other) => refuse(format!(
            "{other} already has this directory user's name or identity in Roster."
        )),
        None => Ok(Switched::Switched),
    }
}
