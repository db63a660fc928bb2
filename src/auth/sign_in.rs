//! Signing in: a local password (argon2) or the user's directory (LDAP/AD bind). Unknown
//! user, wrong password and disabled user give the same answer after the same work.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::task::JoinHandle;

use crate::audit::{self, Action, Actor};
use crate::auth::login_name;
use crate::auth::password::{PasswordError, PasswordHasherPool};
use crate::auth::throttle::{self, Subject, Verdict};
use crate::db::models::directory_profiles;
use crate::db::models::user_privileges::Privilege;
use crate::db::models::users::{self, AuthMethod, User};
use crate::db::now;
use crate::directory::{PasswordCheck, SignInMethod};
use crate::error::AppError;
use crate::profiles::KindSettings;
use crate::profiles::connector::ConnectorError;
use crate::state::AppState;

pub enum SignInOutcome {
    Success(Box<User>),
    /// Wrong name, wrong password, disabled, or not allowed to log on: one answer for all.
    Refused,
    /// The name means users in more than one domain: the person must say which.
    Ambiguous,
    Throttled {
        retry_after_seconds: i64,
    },
}

/// Signs in a local user (argon2) or a directory user (a bind at the directory; the
/// password is never stored). Every path that has no local hash still runs a dummy argon2
/// verification, and every refusal waits the same delay besides, so unknown, wrong and
/// disabled take the same time.
pub async fn sign_in(
    state: &AppState,
    typed: &str,
    password: &SecretString,
    client_ip: &str,
) -> Result<SignInOutcome, AppError> {
    // One canonical form for the lookup and the counter; a name no account can have (too
    // long, spaces around `@`) is refused before any lookup, counted against the address.
    let login = match login_name::canonical(typed) {
        Ok(login) => login,
        Err(why) => {
            let shown = login_name::for_audit(typed);
            if let Some(throttled) = throttle_check(state, None, &shown, client_ip).await? {
                return Ok(throttled);
            }
            return refuse_nobody(state, password, &shown, &why.to_string(), client_ip).await;
        }
    };

    let name = login.clone();
    let mut found = state
        .db
        .run(move |c| users::find_for_login(c, &name).map_err(AppError::from))
        .await?;
    // Failures count against the account the name resolves to, however it was spelt.
    let subject = match found.as_slice() {
        [user] => Subject::User(user.id),
        _ => Subject::Name(login.clone()),
    };
    if let Some(throttled) = throttle_check(state, Some(&subject), &login, client_ip).await? {
        return Ok(throttled);
    }
    if found.len() > 1 {
        // Only a password that is right for one of them says the name is ambiguous: a
        // wrong one gets the plain refusal, so the message reveals nothing.
        let mut right = false;
        let mut padding = None;
        for user in &found {
            let (checked, pad) = check_password(state, user, password).await?;
            right |= checked == Checked::Accepted;
            padding = Some(pad);
        }
        if let Some(pad) = padding {
            pad.wait().await?;
        }
        let (outcome, detail) = if right {
            (SignInOutcome::Ambiguous, "name means more than one user")
        } else {
            (
                SignInOutcome::Refused,
                "name means more than one user; wrong password",
            )
        };
        let actor = Actor::anonymous(login.as_str(), client_ip);
        audit::record(&state.db, &actor, Action::SignInFailed, &login, detail).await?;
        return Ok(outcome);
    }
    let Some(user) = found.pop() else {
        return refuse_nobody(state, password, &login, "unknown user", client_ip).await;
    };
    let id = user.id;
    let may_log_on = user.privileges().contains(&Privilege::LogOn);

    let (checked, padding) = check_password(state, &user, password).await?;
    let refusal = match checked {
        Checked::Refused(why) => Some(why),
        Checked::Accepted if user.disabled => Some("user is disabled".into()),
        Checked::Accepted if !may_log_on => Some("user lacks the log on privilege".into()),
        Checked::Accepted => None,
    };
    if let Some(why) = refusal {
        padding.wait().await?;
        let actor = Actor::anonymous(login.as_str(), client_ip);
        audit::record(
            &state.db,
            &actor,
            Action::SignInFailed,
            &user.login_name(),
            &why,
        )
        .await?;
        return Ok(SignInOutcome::Refused);
    }
    // Success does not wait for the dummy work (see `Padding`).
    drop(padding);
    // One write transaction for all the bookkeeping: SQLite takes one writer at a time,
    // and sign-ins in a burst queue for it.
    let (ip, who) = (client_ip.to_owned(), user.login_name());
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            throttle::succeeded(c, &subject, &ip)?;
            users::record_sign_in(c, id)?;
            audit::write(
                c,
                &Actor::user(id, who.as_str(), ip.as_str()),
                Action::SignIn,
                &who,
                "",
            )?;
            Ok(())
        })
        .await?;
    Ok(SignInOutcome::Success(Box::new(user)))
}

/// Counts this attempt against `account` (or the address alone) before any password check:
/// `Some` is the answer when over the limit, audited.
async fn throttle_check(
    state: &AppState,
    account: Option<&Subject>,
    shown: &str,
    client_ip: &str,
) -> Result<Option<SignInOutcome>, AppError> {
    let (policy, account, ip) = (
        state.throttle_policy,
        account.cloned(),
        client_ip.to_owned(),
    );
    let verdict = state
        .db
        .write(move |c| {
            match &account {
                Some(account) => throttle::reserve(c, &policy, account, &ip, now()),
                None => throttle::reserve_address(c, &policy, &ip, now()),
            }
            .map_err(AppError::from)
        })
        .await?;
    let Verdict::Locked {
        retry_after_seconds,
    } = verdict
    else {
        return Ok(None);
    };
    let actor = Actor::anonymous(shown, client_ip);
    audit::record(&state.db, &actor, Action::SignInThrottled, shown, "").await?;
    Ok(Some(SignInOutcome::Throttled {
        retry_after_seconds,
    }))
}

/// A refusal with no user to check: a dummy argon2 verification and the delay, like any
/// other refusal, and the reason in the audit log.
async fn refuse_nobody(
    state: &AppState,
    password: &SecretString,
    shown: &str,
    why: &str,
    client_ip: &str,
) -> Result<SignInOutcome, AppError> {
    let _ = state.hasher.verify(password, None).await?;
    tokio::time::sleep(REFUSAL_DELAY).await;
    let actor = Actor::anonymous(shown, client_ip);
    audit::record(&state.db, &actor, Action::SignInFailed, shown, why).await?;
    Ok(SignInOutcome::Refused)
}

/// A password check's answer; a refusal's reason is for the audit log only.
#[derive(Debug, PartialEq, Eq)]
enum Checked {
    Accepted,
    Refused(String),
}

/// A re-entered password (My account, setting up two-step sign-in again).
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed,
    /// Wrong; the reason is for the audit log only.
    Refused(String),
    /// Too many failures for this account or address, like sign-in.
    Throttled {
        retry_after_seconds: i64,
    },
}

/// Checks a user's own password, the way sign-in does and throttled like it: failures count
/// against the same account counter, and every refusal waits for all of its work.
pub async fn confirm_password(
    state: &AppState,
    user: &User,
    password: &SecretString,
    client_ip: &str,
) -> Result<Confirmation, AppError> {
    let (policy, subject, ip) = (
        state.throttle_policy,
        Subject::User(user.id),
        client_ip.to_owned(),
    );
    let account = subject.clone();
    let verdict = state
        .db
        .write(move |c| throttle::reserve(c, &policy, &account, &ip, now()).map_err(AppError::from))
        .await?;
    if let Verdict::Locked {
        retry_after_seconds,
    } = verdict
    {
        return Ok(Confirmation::Throttled {
            retry_after_seconds,
        });
    }
    let (checked, padding) = check_password(state, user, password).await?;
    if let Checked::Refused(why) = checked {
        padding.wait().await?;
        return Ok(Confirmation::Refused(why));
    }
    drop(padding);
    let ip = client_ip.to_owned();
    state
        .db
        .write(move |c| throttle::succeeded(c, &subject, &ip).map_err(AppError::from))
        .await?;
    Ok(Confirmation::Confirmed)
}

/// What every refusal waits for on top of its argon2 work. A directory check starts its dummy
/// verification only after this long, so a sign-in whose bind succeeds sooner (3 ms on this
/// machine's slapd, tens of ms across a WAN) costs no argon2 at all; the other paths wait this
/// long after their verification, so every refusal takes this plus one argon2 verification.
const REFUSAL_DELAY: Duration = Duration::from_millis(20);

/// The rest of a refusal's work: the delay, and for a directory user the dummy argon2
/// verification. A refusal waits for it; a sign-in that succeeds does not (its answer
/// differs anyway), and dropping it cancels whatever has not begun.
struct Padding(Option<JoinHandle<Result<(), PasswordError>>>);

impl Padding {
    /// The delay alone, for a path whose argon2 work is done.
    fn delay() -> Padding {
        Padding(Some(tokio::spawn(async {
            tokio::time::sleep(REFUSAL_DELAY).await;
            Ok(())
        })))
    }

    /// The delay, then the dummy verification, begun beside a directory check.
    fn delay_then_dummy(hasher: PasswordHasherPool, password: SecretString) -> Padding {
        Padding(Some(tokio::spawn(async move {
            tokio::time::sleep(REFUSAL_DELAY).await;
            hasher.verify(&password, None).await.map(|_| ())
        })))
    }

    async fn wait(mut self) -> Result<(), AppError> {
        if let Some(work) = self.0.take() {
            work.await.map_err(|_| PasswordError::Interrupted)??;
        }
        Ok(())
    }
}

impl Drop for Padding {
    fn drop(&mut self) {
        if let Some(work) = self.0.take() {
            work.abort();
        }
    }
}

/// Argon2 for local users, a bind at the directory for directory users; returns the verdict
/// and the refusal's remaining work, unfinished.
async fn check_password(
    state: &AppState,
    user: &User,
    password: &SecretString,
) -> Result<(Checked, Padding), AppError> {
    let blank = crate::auth::password::is_blank(password.expose_secret());
    Ok(match user.auth_method() {
        AuthMethod::Local => {
            let matches = state
                .hasher
                .verify(password, user.password_hash.clone())
                .await?;
            let checked = if matches && !blank {
                Checked::Accepted
            } else {
                Checked::Refused("wrong password".into())
            };
            (checked, Padding::delay())
        }
        AuthMethod::Directory => {
            // Started before the directory is asked, so a refusal takes the longer of the
            // two, not their sum.
            let padding = Padding::delay_then_dummy(state.hasher.clone(), password.clone());
            let checked = if blank {
                Checked::Refused("empty password (refused before any bind)".into())
            } else if user.directory_disabled {
                Checked::Refused("disabled in the directory".into())
            } else {
                check_at_directory(state, user, password).await?
            };
            (checked, padding)
        }
    })
}

/// Asks the user's directory. Anything but a clear yes is a refusal (fail closed); the
/// directory's reason goes to the audit log.
async fn check_at_directory(
    state: &AppState,
    user: &User,
    password: &SecretString,
) -> Result<Checked, AppError> {
    let (Some(profile_id), Some(external_id)) = (user.profile_id, user.external_id.clone()) else {
        return Ok(Checked::Refused("directory user without a profile".into()));
    };
    let profile = state
        .db
        .run(move |c| directory_profiles::find(c, profile_id).map_err(AppError::from))
        .await?;
    let Some(profile) = profile else {
        return Ok(Checked::Refused("the user's profile is gone".into()));
    };
    let settings = KindSettings::of(&profile).map_err(anyhow::Error::from)?;
    let directory = match state.connectors().for_sign_in(&profile, &settings).await {
        Ok(d) if d.sign_in_method() == SignInMethod::Password => d,
        Ok(_) | Err(ConnectorError::NotAvailable(_)) => {
            return Ok(Checked::Refused(
                "this profile type signs in by OpenID Connect".into(),
            ));
        }
        Err(e @ (ConnectorError::Unusable(_) | ConnectorError::NotYet(_))) => {
            return Ok(Checked::Refused(format!("directory error: {e}")));
        }
        Err(e @ ConnectorError::Secret(_)) => return Err(anyhow::Error::from(e).into()),
    };
    let account = crate::directory::Account {
        external_id: &external_id,
        name: user.directory_name(),
    };
    Ok(match directory.authenticate(&account, password).await {
        Ok(PasswordCheck::Accepted) => Checked::Accepted,
        Ok(PasswordCheck::Refused { reason }) => Checked::Refused(reason),
        Err(e) => Checked::Refused(format!("directory error: {e}")),
    })
}
