//! Directory profiles: list, load, create and save (the checked form, a generated
//! certificate, the secrets, and the audit events in one transaction), Test connection and
//! the group picker (a connector for the form as posted), and delete.

use crate::audit::{self, Action, Actor};
use crate::db::ids::ProfileId;
use crate::db::models::dependent_configurations::{self, DependentConfiguration};
use crate::db::models::directory_profiles::{
    self, DeleteOutcome, DirectoryProfile, ProfileKind, ProfileUsers,
};
use crate::db::models::sync_runs::{self, RunSummary};
use crate::db::models::{schedules, users};
use crate::directory::{ConnectionReport, Connector, DirectoryGroup};
use crate::error::AppError;
use crate::profiles::certificate;
use crate::profiles::connector::ConnectorError;
use crate::profiles::fields;
use crate::profiles::form::{self, CertificateAction, Checked, Posted};
use crate::profiles::store::{self, StoreError};
use crate::profiles::{KindSettings, SecretSlot};
use crate::state::AppState;
use crate::validation::FieldErrors;

/// A profile as the list shows it: with its newest run, its users and its next run.
pub struct Overview {
    pub profile: DirectoryProfile,
    pub last_run: Option<RunSummary>,
    pub users: i64,
    pub next_run_at: Option<i64>,
}

pub async fn list(state: &AppState, q: &str, descending: bool) -> Result<Vec<Overview>, AppError> {
    let needle = q.to_owned();
    state
        .db
        .run(move |c| -> Result<Vec<Overview>, AppError> {
            let profiles = directory_profiles::list(c, &needle, descending)?;
            let mut runs = sync_runs::latest_per_profile(c)?;
            let users = users::count_per_profile(c)?;
            let next = schedules::next_run_per_profile(c)?;
            Ok(profiles
                .into_iter()
                .map(|p| Overview {
                    last_run: runs.remove(&p.id),
                    users: users.get(&p.id).copied().unwrap_or(0),
                    next_run_at: next.get(&p.id).copied(),
                    profile: p,
                })
                .collect())
        })
        .await
}

/// A stored profile with its settings and dependent configurations.
pub struct Loaded {
    pub profile: DirectoryProfile,
    pub settings: KindSettings,
    pub dependents: Vec<DependentConfiguration>,
}

impl Loaded {
    pub fn kind(&self) -> Result<ProfileKind, AppError> {
        self.profile.kind().ok_or(AppError::NotFound)
    }
}

pub async fn load(state: &AppState, id: ProfileId) -> Result<Loaded, AppError> {
    let (profile, dependents) = state
        .db
        .run(move |c| {
            let profile = directory_profiles::find(c, id)?;
            let dependents = dependent_configurations::for_profile(c, id)?;
            Ok::<_, AppError>((profile, dependents))
        })
        .await?;
    let profile = profile.ok_or(AppError::NotFound)?;
    let settings = KindSettings::of(&profile).map_err(anyhow::Error::from)?;
    Ok(Loaded {
        profile,
        settings,
        dependents,
    })
}

pub enum Saved {
    Saved(ProfileId),
    /// The form again, with these errors (another profile may have got the name first:
    /// checked in the saving transaction).
    Invalid(FieldErrors),
}

/// Creates a profile of `kind` from the posted form.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    kind: ProfileKind,
    posted: &Posted,
) -> Result<Saved, AppError> {
    let checked = match form::check(kind, posted, None) {
        Ok(checked) => checked,
        Err(errors) => return Ok(Saved::Invalid(errors)),
    };
    let checked = with_certificate(checked).await?;
    let (key, actor) = (state.master_key.clone(), actor.clone());
    let name = posted.get("name").trim().to_owned();
    state
        .db
        .write(move |c| -> Result<Saved, AppError> {
            let saved = match store::create(c, &key, kind, checked) {
                Ok(saved) => saved,
                Err(StoreError::NameTaken) => return Ok(name_taken()),
                Err(e) => return Err(anyhow::Error::from(e).into()),
            };
            audit::write(c, &actor, Action::ProfileCreated, &name, kind.label())?;
            audit_secrets(c, &actor, &name, &saved.secrets_changed)?;
            Ok(Saved::Saved(saved.id))
        })
        .await
}

/// Saves an edit of a stored profile (its type never changes: a posted `kind` is ignored).
pub async fn update(
    state: &AppState,
    actor: &Actor,
    loaded: &Loaded,
    posted: &Posted,
) -> Result<Saved, AppError> {
    let kind = loaded.kind()?;
    let checked = match form::check(kind, posted, Some(&loaded.settings)) {
        Ok(checked) => checked,
        Err(errors) => return Ok(Saved::Invalid(errors)),
    };
    let checked = with_certificate(checked).await?;
    let changed = changed_settings(&loaded.profile, &checked);
    let (key, actor, id) = (state.master_key.clone(), actor.clone(), loaded.profile.id);
    let name = posted.get("name").trim().to_owned();
    let detail = if loaded.profile.name == name {
        format!("changed: {changed}")
    } else {
        format!("renamed from {}; changed: {changed}", loaded.profile.name)
    };
    state
        .db
        .write(move |c| -> Result<Saved, AppError> {
            let saved = match store::update(c, &key, id, checked) {
                Ok(saved) => saved,
                Err(StoreError::NameTaken) => return Ok(name_taken()),
                Err(StoreError::NotFound) => return Err(AppError::NotFound),
                Err(e) => return Err(anyhow::Error::from(e).into()),
            };
            audit::write(c, &actor, Action::ProfileUpdated, &name, &detail)?;
            audit_secrets(c, &actor, &name, &saved.secrets_changed)?;
            Ok(Saved::Saved(id))
        })
        .await
}

fn name_taken() -> Saved {
    let mut errors = FieldErrors::default();
    errors.add("name", "Name is already used by another profile.");
    Saved::Invalid(errors)
}

/// One event per secret written or removed: which secret, never its value.
fn audit_secrets(
    c: &mut crate::db::DbConnection,
    actor: &Actor,
    profile_name: &str,
    slots: &[SecretSlot],
) -> Result<(), AppError> {
    for slot in slots {
        let detail = format!("{} changed", slot.describe());
        audit::write(
            c,
            actor,
            Action::ProfileSecretChanged,
            profile_name,
            &detail,
        )?;
    }
    Ok(())
}

/// Names of the settings an edit changed (never their values: some are secrets' ids).
fn changed_settings(before: &DirectoryProfile, after: &Checked) -> String {
    let c = &after.changes;
    let pairs = [
        ("name", before.name != c.name),
        ("delete users", before.delete_users != c.delete_users),
        ("delete groups", before.delete_groups != c.delete_groups),
        ("groups", before.groups_to_sync != c.groups_to_sync),
        ("domain", before.domain != c.domain),
        ("use local part", before.use_local_part != c.use_local_part),
        ("MFA by default", before.mfa_by_default != c.mfa_by_default),
        (
            "default privileges",
            before.default_privileges != c.default_privileges,
        ),
        (
            "deletion threshold",
            before.delete_threshold_count != c.delete_threshold_count
                || before.delete_threshold_percent != c.delete_threshold_percent,
        ),
    ];
    let mut names: Vec<&str> = pairs
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(n, _)| *n)
        .collect();
    if KindSettings::of(before).ok().as_ref() != Some(&after.settings) {
        names.push("type-specific settings");
    }
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// Makes the self-signed certificate when the form asks for one (off the async threads:
/// RSA key generation takes a moment).
async fn with_certificate(mut checked: Checked) -> Result<Checked, AppError> {
    if matches!(checked.certificate, CertificateAction::Generate) {
        let name = format!("Roster {}", checked.changes.name);
        let credential = tokio::task::spawn_blocking(move || certificate::generate(&name))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?;
        checked.certificate = CertificateAction::Import(credential);
    }
    Ok(checked)
}

/// A connector for the form as posted, or why there is none.
enum Probe {
    Ready(Box<Connector>),
    /// Form errors in the fields the connection needs (or no connector for the kind).
    NotTried(Vec<String>),
    /// The settings cannot be tried as they are (an Entra certificate not made yet).
    Unusable(String),
}

/// The connector for the form as posted; blank secrets mean the stored ones. Form errors
/// in the type-specific fields come back for the dialog to list.
async fn connector_for(
    state: &AppState,
    kind: ProfileKind,
    posted: &Posted,
    stored: Option<&KindSettings>,
) -> Result<Probe, AppError> {
    if !fields::has_connector(kind) {
        return Ok(Probe::NotTried(vec![format!(
            "{} profiles cannot be tested in this version of Roster.",
            kind.label()
        )]));
    }
    let checked = match form::check(kind, posted, stored) {
        Ok(checked) => checked,
        Err(errors) => {
            // Only what the connection needs matters here (not the name, say).
            let relevant: Vec<String> = fields::for_kind(kind)
                .iter()
                .filter_map(|spec| errors.get(spec.name).map(str::to_owned))
                .collect();
            if !relevant.is_empty() {
                return Ok(Probe::NotTried(relevant));
            }
            let mut lenient = posted.clone();
            lenient.set("name", "connection test");
            lenient.set("delete_threshold_count", "1");
            lenient.set("delete_threshold_percent", "1");
            lenient.set("groups_to_sync", "");
            match form::check(kind, &lenient, stored) {
                Ok(checked) => checked,
                Err(_) => return Ok(Probe::NotTried(vec!["The form has errors.".into()])),
            }
        }
    };
    match state.connectors().for_form(&checked).await {
        Ok(connector) => Ok(Probe::Ready(Box::new(connector))),
        Err(ConnectorError::NotAvailable(_)) => Ok(Probe::NotTried(vec![
            "This type has no connector.".to_owned(),
        ])),
        Err(e @ (ConnectorError::Unusable(_) | ConnectorError::NotYet(_))) => {
            Ok(Probe::Unusable(capitalised(&e.to_string())))
        }
        Err(e @ ConnectorError::Secret(_)) => Err(anyhow::Error::from(e).into()),
    }
}

/// What Test connection found.
pub enum Tested {
    Connected(ConnectionReport),
    /// The directory's error, explained.
    Failed(String),
    /// Form errors that kept the test from running.
    NotTried(Vec<String>),
}

/// "Test connection" for a posted form (`loaded`: the saved profile it edits). Every test
/// is audited: it signs in somewhere with a password.
pub async fn test_connection(
    state: &AppState,
    actor: &Actor,
    kind: ProfileKind,
    posted: &Posted,
    loaded: Option<&Loaded>,
) -> Result<Tested, AppError> {
    let tested = match connector_for(state, kind, posted, loaded.map(|l| &l.settings)).await? {
        Probe::NotTried(problems) => Tested::NotTried(problems),
        Probe::Unusable(why) => Tested::Failed(why),
        Probe::Ready(connector) => match connector.test_connection().await {
            Ok(report) => Tested::Connected(report),
            Err(e) => Tested::Failed(e.explained()),
        },
    };
    let target = match loaded {
        Some(l) => l.profile.name.clone(),
        None => format!("new {} profile", kind.label()),
    };
    let outcome = match &tested {
        Tested::Connected(_) => "connected".to_owned(),
        Tested::Failed(e) => format!("failed: {e}"),
        Tested::NotTried(problems) => format!("not tried: {}", problems.join(" ")),
    };
    let host = [
        posted.get("server"),
        posted.get("url"),
        posted.get("authority"),
    ]
    .into_iter()
    .map(str::trim)
    .find(|v| !v.is_empty())
    .unwrap_or("");
    let detail = format!("server {host}: {outcome}");
    audit::record(
        &state.db,
        actor,
        Action::ProfileConnectionTested,
        &target,
        &detail,
    )
    .await?;
    Ok(tested)
}

/// What the group picker found.
pub enum Groups {
    Found(Vec<DirectoryGroup>),
    Failed(String),
    NotTried(Vec<String>),
}

/// The directory's groups whose name contains `search`, for a posted form.
pub async fn groups(
    state: &AppState,
    kind: ProfileKind,
    posted: &Posted,
    stored: Option<&KindSettings>,
    search: &str,
) -> Result<Groups, AppError> {
    Ok(match connector_for(state, kind, posted, stored).await? {
        Probe::NotTried(problems) => Groups::NotTried(problems),
        Probe::Unusable(why) => Groups::Failed(why),
        Probe::Ready(connector) => match connector.list_groups(search).await {
            Ok(groups) => Groups::Found(groups),
            Err(e) => Groups::Failed(e.explained()),
        },
    })
}

pub async fn delete_configuration(
    state: &AppState,
    actor: &Actor,
    id: ProfileId,
    configuration: i64,
) -> Result<(), AppError> {
    let profile = load(state, id).await?.profile;
    let actor = actor.clone();
    state
        .db
        .write(move |c| -> Result<(), AppError> {
            let removed = dependent_configurations::delete(c, id, configuration)?
                .ok_or(AppError::NotFound)?;
            let action = Action::ProfileConfigurationDeleted;
            audit::write(c, &actor, action, &profile.name, &removed)?;
            Ok(())
        })
        .await
}

/// The profile and what uses it, for the delete page.
pub async fn usage(
    state: &AppState,
    id: ProfileId,
) -> Result<(DirectoryProfile, ProfileUsers), AppError> {
    let (profile, usage) = state
        .db
        .run(move |c| {
            let profile = directory_profiles::find(c, id)?;
            let usage = directory_profiles::usage(c, id)?;
            Ok::<_, AppError>((profile, usage))
        })
        .await?;
    Ok((profile.ok_or(AppError::NotFound)?, usage))
}

/// Deletes a profile with its users, groups and secrets, unless something uses it.
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    id: ProfileId,
) -> Result<DeleteOutcome, AppError> {
    let actor = actor.clone();
    state
        .db
        .write(move |c| -> Result<DeleteOutcome, AppError> {
            let name = directory_profiles::name(c, id)?.ok_or(AppError::NotFound)?;
            let outcome = store::delete(c, id).map_err(anyhow::Error::from)?;
            if let DeleteOutcome::Deleted { users_deleted } = &outcome {
                let detail = format!("{users_deleted} synchronised users deleted");
                audit::write(c, &actor, Action::ProfileDeleted, &name, &detail)?;
            }
            Ok(outcome)
        })
        .await
}

/// A sentence from an error text: capital first letter, full stop.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}
