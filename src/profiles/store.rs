//! Saving a checked profile with its secrets in one transaction: a profile row never points
//! at a secret that was not written, and a failed save leaves no orphan secret behind.

use diesel::Connection;
use diesel::prelude::*;
use secrecy::SecretString;

use super::form::Checked;
use super::{KindSettings, SecretSlot};
use crate::crypto::MasterKey;
use crate::db::DbConnection;
use crate::db::ids::ProfileId;
use crate::db::models::change_cursors;
use crate::db::models::dependent_configurations;
use crate::db::models::directory_profiles::{self, DeleteOutcome, ProfileKind};
use crate::db::schema::directory_profiles as profiles_table;
use crate::secrets::{self, SecretError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another profile is already called this")]
    NameTaken,
    #[error("profile not found")]
    NotFound,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Settings(#[from] super::BadSettings),
}

/// What a save changed, for the audit log: secret slots written or removed.
#[derive(Debug, Default)]
pub struct Saved {
    pub id: ProfileId,
    pub secrets_changed: Vec<SecretSlot>,
}

pub fn create(
    conn: &mut DbConnection,
    key: &MasterKey,
    kind: ProfileKind,
    mut checked: Checked,
) -> Result<Saved, StoreError> {
    conn.transaction(|c| {
        if directory_profiles::name_taken(c, &checked.changes.name, None)? {
            return Err(StoreError::NameTaken);
        }
        if let Some(slug) = checked.settings.redirect_slug()
            && slug_taken(c, slug)?
        {
            let fresh = super::form::new_slug();
            match &mut checked.settings {
                KindSettings::Entra(s) => s.redirect_slug = fresh,
                KindSettings::Google(s) => s.redirect_slug = fresh,
                _ => {}
            }
        }
        let changed = write_secrets(c, key, &mut checked)?;
        checked.changes.settings = checked.settings.to_json();
        let id = directory_profiles::create(c, kind, &checked.changes)?;
        if checked.create_dependents {
            // A copy of the settings without secret references: the configurations are
            // independent of later edits, and secrets keep one owner.
            let mut copy = checked.settings.clone();
            for slot in SecretSlot::ALL {
                copy.set_secret(slot, None);
            }
            for (kind, words) in dependent_configurations::KINDS {
                let name = format!("{} – {words}", checked.changes.name);
                dependent_configurations::insert(c, id, kind, &name, &copy.to_json())?;
            }
        }
        Ok(Saved {
            id,
            secrets_changed: changed,
        })
    })
}

pub fn update(
    conn: &mut DbConnection,
    key: &MasterKey,
    id: ProfileId,
    mut checked: Checked,
) -> Result<Saved, StoreError> {
    conn.transaction(|c| {
        if directory_profiles::find(c, id)?.is_none() {
            return Err(StoreError::NotFound);
        }
        if directory_profiles::name_taken(c, &checked.changes.name, Some(id))? {
            return Err(StoreError::NameTaken);
        }
        let changed = write_secrets(c, key, &mut checked)?;
        checked.changes.settings = checked.settings.to_json();
        directory_profiles::update(c, id, &checked.changes)?;
        // What is in scope may have changed: the next run reads everything.
        change_cursors::clear(c, id)?;
        Ok(Saved {
            id,
            secrets_changed: changed,
        })
    })
}

/// Seals the secrets typed in the form (replacing stored ones in place), removes the ones
/// no longer needed, and records their ids in the settings.
fn write_secrets(
    c: &mut DbConnection,
    key: &MasterKey,
    checked: &mut Checked,
) -> Result<Vec<SecretSlot>, StoreError> {
    let profile_name = checked.changes.name.clone();
    let mut changed = Vec::new();
    if let Some(credential) = take_certificate(checked) {
        if let KindSettings::Entra(s) = &mut checked.settings {
            s.certificate_pem = credential.certificate_pem;
        }
        checked
            .new_secrets
            .push((SecretSlot::CertificateKey, credential.private_key_pem));
    }
    for (slot, value) in &checked.new_secrets {
        match checked.settings.secret(*slot) {
            Some(id) => secrets::replace(c, key, id, value)?,
            None => {
                let purpose = format!("directory profile `{profile_name}`: {}", slot.describe());
                let id = secrets::store(c, key, &purpose, value)?;
                checked.settings.set_secret(*slot, Some(id));
            }
        }
        changed.push(*slot);
    }
    for slot in &checked.drop_secrets {
        if let Some(id) = checked.settings.secret(*slot) {
            crate::db::models::secrets::delete(c, id)?;
            checked.settings.set_secret(*slot, None);
            changed.push(*slot);
        }
    }
    Ok(changed)
}

fn take_certificate(checked: &mut Checked) -> Option<super::certificate::Credential> {
    match std::mem::replace(
        &mut checked.certificate,
        super::form::CertificateAction::Keep,
    ) {
        super::form::CertificateAction::Import(credential) => Some(credential),
        // Generated by the caller before the transaction (see `web::admin::profiles`).
        super::form::CertificateAction::Generate | super::form::CertificateAction::Keep => None,
    }
}

fn slug_taken(c: &mut DbConnection, slug: &str) -> QueryResult<bool> {
    let pattern = format!("%\"redirect_slug\":\"{slug}\"%");
    diesel::select(diesel::dsl::exists(
        profiles_table::table.filter(profiles_table::settings.like(pattern)),
    ))
    .get_result(c)
}

/// Deletes a profile with its users and its secrets (see `directory_profiles::delete`).
pub fn delete(conn: &mut DbConnection, id: ProfileId) -> Result<DeleteOutcome, StoreError> {
    conn.transaction(|c| {
        let Some(profile) = directory_profiles::find(c, id)? else {
            return Ok(DeleteOutcome::NotFound);
        };
        let outcome = directory_profiles::delete(c, id)?;
        if matches!(outcome, DeleteOutcome::Deleted { .. }) {
            for secret in KindSettings::of(&profile)?.secret_ids() {
                crate::db::models::secrets::delete(c, secret)?;
            }
        }
        Ok(outcome)
    })
}

/// A secret of a profile, opened (`None` when none is stored).
pub async fn stored_secret(
    db: &crate::db::Db,
    key: &MasterKey,
    settings: &KindSettings,
    slot: SecretSlot,
) -> anyhow::Result<Option<SecretString>> {
    let (key, settings) = (key.clone(), settings.clone());
    db.run(move |c| reveal(c, &key, &settings, slot).map_err(anyhow::Error::from))
        .await
}

/// The stored secret in `slot`, opened.
pub fn reveal(
    conn: &mut DbConnection,
    key: &MasterKey,
    settings: &KindSettings,
    slot: SecretSlot,
) -> Result<Option<SecretString>, StoreError> {
    match settings.secret(slot) {
        Some(id) => Ok(Some(secrets::reveal(conn, key, id)?)),
        None => Ok(None),
    }
}
