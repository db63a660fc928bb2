//! Admin accounts: the first admin at start-up (from `ROSTER_ADMIN_PASSWORD`, or a one-time
//! setup link printed on the console) and `roster admin create`; moving a local user to
//! directory sign-in.

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{random_token, token_hash};
use crate::db::models::user_privileges::{self, Privilege};
use crate::db::models::{setup_tokens, users};
use crate::db::{DbConnection, now};
use crate::state::AppState;

const ADMIN_PRIVILEGES: [Privilege; 4] = [
    Privilege::LogOn,
    Privilege::ReadOwnArchive,
    Privilege::ChangeOwnPassword,
    Privilege::Admin,
];

/// How long a setup link works.
const SETUP_LINK_SECONDS: i64 = 24 * 3600;

pub fn create_admin(
    conn: &mut DbConnection,
    name: &str,
    password_hash: &str,
) -> diesel::QueryResult<i64> {
    users::create_local(
        conn,
        &users::NewLocalUser {
            username: name,
            full_name: "Administrator",
            emails: &[],
            password_hash,
            privileges: &ADMIN_PRIVILEGES,
        },
    )
}

/// What start-up did about the first admin, for the console.
pub enum FirstAdmin {
    AlreadyThere,
    Created,
    /// Open this path (with the public URL in front) to choose the admin password.
    SetupLink(String),
}

pub async fn ensure_first_admin(state: &AppState) -> anyhow::Result<FirstAdmin> {
    let mut conn = state.db.get()?;
    if user_privileges::any_admin(&mut conn)? {
        return Ok(FirstAdmin::AlreadyThere);
    }
    drop(conn);
    if let Some(password) = &state.settings.admin_password {
        if let Some(why) = crate::auth::password::policy_violation(password.expose_secret()) {
            anyhow::bail!("ROSTER_ADMIN_PASSWORD: the password {why}");
        }
        let hash = state.hasher.hash(password).await?;
        let mut conn = state.db.get()?;
        if users::exists_with_username(&mut conn, "admin")? {
            anyhow::bail!(
                "ROSTER_ADMIN_PASSWORD: a user named `admin` exists but is not an administrator"
            );
        }
        create_admin(&mut conn, "admin", &hash)?;
        return Ok(FirstAdmin::Created);
    }
    let token = random_token();
    let mut conn = state.db.get()?;
    setup_tokens::create(&mut conn, &token_hash(&token), now() + SETUP_LINK_SECONDS)?;
    Ok(FirstAdmin::SetupLink(format!("/setup?token={token}")))
}

/// `roster admin create NAME`: the password comes from standard input.
pub async fn create_from_cli(
    state: &AppState,
    name: &str,
    password: SecretString,
) -> anyhow::Result<()> {
    let mut errors = crate::validation::FieldErrors::default();
    crate::validation::check_username(&mut errors, "name", name);
    if let Some(why) = errors.get("name") {
        anyhow::bail!("{why}");
    }
    if let Some(why) = crate::auth::password::policy_violation(password.expose_secret()) {
        anyhow::bail!("the password {why}");
    }
    let hash = state.hasher.hash(&password).await?;
    let mut conn = state.db.get()?;
    if users::exists_with_username(&mut conn, name)? {
        anyhow::bail!("a user named `{}` already exists", name.trim());
    }
    create_admin(&mut conn, name.trim(), &hash)?;
    setup_tokens::clear(&mut conn)?;
    Ok(())
}

/// Moves a local user to directory sign-in at an AD/LDAP profile whose directory holds
/// exactly one user of the same name (mapped the way the profile's syncs map names).
/// `Ok(Err(message))` is a refusal for the admin, naming the field.
pub async fn switch_to_directory(
    state: &AppState,
    user: &users::User,
    profile_field: &str,
) -> Result<Result<String, String>, crate::error::AppError> {
    use crate::db::models::directory_profiles;
    use crate::profiles::connector::ConnectorError;
    let refuse = |why: String| Ok(Err(format!("Profile: {why}")));
    let Ok(profile_id) = profile_field.trim().parse::<i64>() else {
        return refuse("choose an Active Directory or LDAP profile.".into());
    };
    let profile = state
        .db
        .run(move |c| directory_profiles::find(c, profile_id).map_err(crate::error::AppError::from))
        .await?;
    let Some(profile) = profile else {
        return refuse("that profile no longer exists.".into());
    };
    let settings = crate::profiles::KindSettings::of(&profile).map_err(anyhow::Error::from)?;
    let directory = match state.connectors().for_sign_in(&profile, &settings).await {
        Ok(d) if d.sign_in_method() == crate::directory::SignInMethod::Password => d,
        Ok(_) | Err(ConnectorError::NotAvailable(_)) => {
            return refuse(format!(
                "{} is not an Active Directory or LDAP profile.",
                profile.name
            ));
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
    let name = username.clone();
    let taken = state
        .db
        .run(move |c| {
            if let Some(other) =
                users::identity_taken(c, id, &name, &domain, profile_id, &external_id)?
            {
                return Ok::<_, crate::error::AppError>(Some(other));
            }
            users::switch_to_directory(c, id, profile_id, &external_id, &name, &domain)?;
            Ok(None)
        })
        .await?;
    if let Some(other) = taken {
        return refuse(format!(
            "{other} already has this directory user's name or identity in Roster."
        ));
    }
    Ok(Ok(format!("to directory sign-in at {}", profile.name)))
}
