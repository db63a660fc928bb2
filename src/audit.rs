//! The audit log: who did what to what, from where. A service writes its event with `write`
//! inside the transaction of the change it records, so a change is never left unaudited;
//! `record` is for events that change nothing else (a refused sign-in, a connection test).
//! Callers pass names and ids, never secrets.

use crate::db::ids::UserId;
use crate::db::models::audit_events::{self, NewAuditEvent};
use crate::db::{Db, DbConnection, DbError, now};

/// Who acts: a signed-in user, or a name someone typed (sign-in), and the client address.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub name: String,
    pub client_ip: String,
}

impl Actor {
    pub fn user(user_id: UserId, name: impl Into<String>, client_ip: impl Into<String>) -> Actor {
        Actor {
            user_id: Some(user_id),
            name: name.into(),
            client_ip: client_ip.into(),
        }
    }

    /// Someone not (yet) signed in, known by the name they typed.
    pub fn anonymous(name: impl Into<String>, client_ip: impl Into<String>) -> Actor {
        Actor {
            user_id: None,
            name: name.into(),
            client_ip: client_ip.into(),
        }
    }
}

crate::text_enum! {
    /// What happened. Stored by name; the names never change (the log outlives releases).
    pub enum Action {
        SignIn => "sign_in",
        SignInFailed => "sign_in_failed",
        SignInThrottled => "sign_in_throttled",
        SignOut => "sign_out",
        SessionsEnded => "sessions_ended",
        PasswordChanged => "password_changed",
        MfaPassed => "mfa_passed",
        MfaFailed => "mfa_failed",
        MfaThrottled => "mfa_throttled",
        MfaEnrolled => "mfa_enrolled",
        MfaReenrolmentStarted => "mfa_reenrolment_started",
        AdminCreated => "admin_created",
        UserCreated => "user_created",
        UserDisabled => "user_disabled",
        UserEnabled => "user_enabled",
        UserDeleted => "user_deleted",
        UserMfaRequired => "user_mfa_required",
        UserMfaNotRequired => "user_mfa_not_required",
        UserMfaReset => "user_mfa_reset",
        UserPrivilegesChanged => "user_privileges_changed",
        UserAuthenticationSwitched => "user_authentication_switched",
        ProfileCreated => "profile_created",
        ProfileUpdated => "profile_updated",
        ProfileDeleted => "profile_deleted",
        ProfileSecretChanged => "profile_secret_changed",
        ProfileConnectionTested => "profile_connection_tested",
        ProfileConfigurationDeleted => "profile_configuration_deleted",
        SyncStarted => "sync_started",
        SyncTested => "sync_tested",
        SyncApproved => "sync_approved",
        SyncDiscarded => "sync_discarded",
        SyncCancelled => "sync_cancelled",
        ScheduleCreated => "schedule_created",
        ScheduleUpdated => "schedule_updated",
        ScheduleEnabled => "schedule_enabled",
        ScheduleDisabled => "schedule_disabled",
        ScheduleDeleted => "schedule_deleted",
    }
}

impl Action {
    /// What the audit page says.
    pub fn label(self) -> &'static str {
        match self {
            Action::SignIn => "Signed in",
            Action::SignInFailed => "Sign-in refused",
            Action::SignInThrottled => "Sign-in throttled",
            Action::SignOut => "Signed out",
            Action::SessionsEnded => "Sessions ended",
            Action::PasswordChanged => "Password changed",
            Action::MfaPassed => "MFA code accepted",
            Action::MfaFailed => "MFA code refused",
            Action::MfaThrottled => "MFA throttled",
            Action::MfaEnrolled => "MFA enrolled",
            Action::MfaReenrolmentStarted => "MFA re-enrolment started",
            Action::AdminCreated => "Admin created",
            Action::UserCreated => "User created",
            Action::UserDisabled => "User disabled",
            Action::UserEnabled => "User enabled",
            Action::UserDeleted => "User deleted",
            Action::UserMfaRequired => "MFA required",
            Action::UserMfaNotRequired => "MFA no longer required",
            Action::UserMfaReset => "MFA reset",
            Action::UserPrivilegesChanged => "Privileges changed",
            Action::UserAuthenticationSwitched => "Sign-in method switched",
            Action::ProfileCreated => "Profile created",
            Action::ProfileUpdated => "Profile updated",
            Action::ProfileDeleted => "Profile deleted",
            Action::ProfileSecretChanged => "Profile secret changed",
            Action::ProfileConnectionTested => "Connection tested",
            Action::ProfileConfigurationDeleted => "Dependent configuration deleted",
            Action::SyncStarted => "Synchronisation started",
            Action::SyncTested => "Settings tested (dry run)",
            Action::SyncApproved => "Held run approved",
            Action::SyncDiscarded => "Held run discarded",
            Action::SyncCancelled => "Run cancelled",
            Action::ScheduleCreated => "Schedule created",
            Action::ScheduleUpdated => "Schedule updated",
            Action::ScheduleEnabled => "Schedule enabled",
            Action::ScheduleDisabled => "Schedule disabled",
            Action::ScheduleDeleted => "Schedule deleted",
        }
    }

    /// What kind of thing the event's target names, so the audit page can link it.
    pub fn subject(self) -> SubjectKind {
        use Action::*;
        match self {
            ProfileCreated
            | ProfileUpdated
            | ProfileDeleted
            | ProfileSecretChanged
            | ProfileConnectionTested
            | ProfileConfigurationDeleted
            | SyncStarted
            | SyncTested => SubjectKind::Profile,
            SyncApproved | SyncDiscarded | SyncCancelled => SubjectKind::Run,
            ScheduleCreated | ScheduleUpdated | ScheduleEnabled | ScheduleDisabled
            | ScheduleDeleted => SubjectKind::Schedule,
            _ => SubjectKind::User,
        }
    }
}

/// What an event's target is: a user's login name, a profile's name, `run N` or
/// `schedule N of P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    User,
    Profile,
    Run,
    Schedule,
}

/// Writes one event on `conn` (inside the caller's transaction).
pub fn write(
    conn: &mut DbConnection,
    actor: &Actor,
    action: Action,
    target: &str,
    detail: &str,
) -> diesel::QueryResult<()> {
    audit_events::record(
        conn,
        &NewAuditEvent {
            occurred_at: now(),
            actor_user_id: actor.user_id,
            actor_name: &actor.name,
            action: action.as_str(),
            target,
            detail,
            client_ip: &actor.client_ip,
        },
    )
}

/// Writes one event in a transaction of its own.
pub async fn record(
    db: &Db,
    actor: &Actor,
    action: Action,
    target: &str,
    detail: &str,
) -> Result<(), DbError> {
    let (actor, target, detail) = (actor.clone(), target.to_owned(), detail.to_owned());
    db.write(move |c| write(c, &actor, action, &target, &detail).map_err(DbError::from))
        .await
}
