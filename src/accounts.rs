//! Admin accounts: the first admin at start-up (from `ROSTER_ADMIN_PASSWORD`, or a one-time
//! setup link printed on the console) and `roster admin create`.

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{random_token, token_hash};
use crate::db::ids::UserId;
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
) -> diesel::QueryResult<UserId> {
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
