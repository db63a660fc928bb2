//! Building a profile's connector: the one place where a kind's settings, its opened secrets
//! and Roster's TLS trust become a `directory::Connector`. Sign-in, account switching, the
//! sync engine and the profile dialogs all come here; a new kind adds one branch to `build`.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use secrecy::SecretString;

use crate::crypto::MasterKey;
use crate::db::Db;
use crate::db::models::directory_profiles::{DirectoryProfile, ProfileKind};
use crate::directory::Connector;
use crate::directory::app_integration::{AppIntegrationDirectory, AppIntegrationSettings};
use crate::directory::entra::{EntraDirectory, EntraSettings};
use crate::directory::google::{GoogleDirectory, GoogleSettings, ServiceAccountKey};
use crate::directory::icewarp::{IceWarpDirectory, IceWarpSettings};
use crate::directory::ldap::{Flavour, LdapDirectory, LdapSettings, Protocol, ServicePool};
use crate::directory::rest::RetryBudget;
use crate::profiles::form::{CertificateAction, Checked, chosen_groups};
use crate::profiles::{KindSettings, LdapProfile, SecretSlot};

/// What building a connector needs of the application.
#[derive(Clone)]
pub struct Connectors {
    pub db: Db,
    pub master_key: MasterKey,
    /// Roster's trust for directory connections (see `crate::tls`).
    pub tls: Arc<ClientConfig>,
    /// Bound LDAP service connections reused by sign-ins.
    pub pool: ServicePool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// This kind has no connector in this release.
    #[error("{} profiles have no connector in this version of Roster", .0.label())]
    NotAvailable(ProfileKind),
    #[error("the stored secret cannot be read: {0}")]
    Secret(anyhow::Error),
    #[error("{0}")]
    Unusable(crate::directory::DirectoryError),
    /// The form cannot be tried as it is (say why and what to do).
    #[error("{0}")]
    NotYet(String),
}

impl Connectors {
    /// The connector of a stored profile, its secrets opened; syncs its chosen groups.
    pub async fn for_profile(
        &self,
        profile: &DirectoryProfile,
        settings: &KindSettings,
    ) -> Result<Connector, ConnectorError> {
        let secret = self.stored(settings).await?;
        build(
            settings,
            secret,
            chosen_groups(&profile.groups_to_sync),
            self.tls.clone(),
        )
    }

    /// Like `for_profile`, for checking passwords: no group scope, and the service
    /// connection is kept for the next sign-in (saving the profile changes `updated_at`, so
    /// new settings get a new connection).
    pub async fn for_sign_in(
        &self,
        profile: &DirectoryProfile,
        settings: &KindSettings,
    ) -> Result<Connector, ConnectorError> {
        let secret = self.stored(settings).await?;
        let key = format!("profile:{}:{}", profile.id, profile.updated_at);
        Ok(
            match build(settings, secret, Vec::new(), self.tls.clone())? {
                Connector::Ldap(d) => Connector::Ldap(d.pooled(self.pool.clone(), key)),
                other => other,
            },
        )
    }

    /// The connector of a form as posted (Test connection, the group picker): a typed
    /// secret, else the stored one.
    pub async fn for_form(&self, checked: &Checked) -> Result<Connector, ConnectorError> {
        let mut settings = checked.settings.clone();
        let typed = match (&mut settings, &checked.certificate) {
            (KindSettings::Entra(_), CertificateAction::Generate) => {
                return Err(ConnectorError::NotYet(
                    "the certificate is made when the profile is saved: save it, upload the certificate to the app registration, then test".into(),
                ));
            }
            (KindSettings::Entra(s), CertificateAction::Import(credential)) => {
                s.certificate_pem = credential.certificate_pem.clone();
                Some(credential.private_key_pem.clone())
            }
            _ => checked
                .new_secrets
                .iter()
                .find(|(slot, _)| Some(*slot) == connector_slot(&settings))
                .map(|(_, v)| v.clone()),
        };
        let secret = match typed {
            Some(s) => s,
            None => self.stored(&settings).await?,
        };
        build(
            &settings,
            secret,
            chosen_groups(&checked.changes.groups_to_sync),
            self.tls.clone(),
        )
    }

    /// The stored secret the connector signs in with (empty when none is stored: an
    /// anonymous LDAP bind).
    async fn stored(&self, settings: &KindSettings) -> Result<SecretString, ConnectorError> {
        let Some(slot) = connector_slot(settings) else {
            return Ok(SecretString::from(String::new()));
        };
        crate::profiles::store::stored_secret(&self.db, &self.master_key, settings, slot)
            .await
            .map(|s| s.unwrap_or_else(|| SecretString::from(String::new())))
            .map_err(ConnectorError::Secret)
    }
}

/// The secret a kind's connector needs.
fn connector_slot(settings: &KindSettings) -> Option<SecretSlot> {
    match settings {
        KindSettings::Ldap(..) => Some(SecretSlot::BindPassword),
        KindSettings::Entra(_) => Some(SecretSlot::CertificateKey),
        KindSettings::Google(_) => Some(SecretSlot::ServiceAccountKey),
        KindSettings::AppIntegration(_) | KindSettings::IceWarp(_) => Some(SecretSlot::Password),
    }
}

fn build(
    settings: &KindSettings,
    secret: SecretString,
    groups_to_sync: Vec<String>,
    tls: Arc<ClientConfig>,
) -> Result<Connector, ConnectorError> {
    match settings {
        KindSettings::Ldap(flavour, s) => Ok(Connector::Ldap(LdapDirectory::new(
            ldap_settings(*flavour, s, secret, groups_to_sync),
            tls,
        ))),
        KindSettings::Entra(s) => {
            let settings = EntraSettings {
                tenant_id: s.tenant_id.trim().to_owned(),
                client_id: s.client_id.trim().to_owned(),
                authority: s.authority().to_owned(),
                graph_url: s.graph_url().to_owned(),
                certificate_pem: s.certificate_pem.clone(),
                private_key_pem: secret,
                enabled_users_only: s.enabled_users_only,
                mailbox_users_only: s.mailbox_users_only,
                include_guests: s.include_guests,
                groups_to_sync,
                timeout: s.timeout(),
                retry: RetryBudget::default(),
            };
            let directory = EntraDirectory::new(settings, tls).map_err(ConnectorError::Unusable)?;
            Ok(Connector::Entra(directory))
        }
        KindSettings::Google(s) => {
            let settings = GoogleSettings {
                admin_user: s.admin_user.trim().to_owned(),
                key: ServiceAccountKey::from_json(&secret).map_err(ConnectorError::Unusable)?,
                token_url: s.token_url().to_owned(),
                api_url: s.api_url().to_owned(),
                groups_to_sync,
                timeout: s.timeout(),
                retry: RetryBudget::default(),
            };
            let directory =
                GoogleDirectory::new(settings, tls).map_err(ConnectorError::Unusable)?;
            Ok(Connector::Google(directory))
        }
        KindSettings::AppIntegration(s) => {
            let settings = AppIntegrationSettings {
                url: s.url.trim().to_owned(),
                basic: s
                    .requires_auth
                    .then(|| (s.username.trim().to_owned(), secret)),
                commands: s.commands(),
                groups_to_sync,
                timeout: s.timeout(),
            };
            let tls = http_trust(s.ignore_tls_errors, &s.trusted_certificate_pem, tls)?;
            let directory =
                AppIntegrationDirectory::new(settings, tls).map_err(ConnectorError::Unusable)?;
            Ok(Connector::AppIntegration(directory))
        }
        KindSettings::IceWarp(s) => {
            let settings = IceWarpSettings {
                server: s.server.trim().to_owned(),
                admin_user: s.admin_user.trim().to_owned(),
                password: secret,
                groups_to_sync,
                timeout: std::time::Duration::from_secs(u64::from(s.timeout_seconds.max(1))),
            };
            let tls = http_trust(s.ignore_tls_errors, &s.trusted_certificate_pem, tls)?;
            let directory =
                IceWarpDirectory::new(settings, tls).map_err(ConnectorError::Unusable)?;
            Ok(Connector::IceWarp(directory))
        }
    }
}

/// The TLS trust of an HTTP directory: none ("Ignore TLS certificate errors"), the
/// profile's own certificate, or Roster's.
fn http_trust(
    ignore_tls_errors: bool,
    trusted_certificate_pem: &str,
    tls: Arc<ClientConfig>,
) -> Result<Arc<ClientConfig>, ConnectorError> {
    let unusable = |e: String| {
        ConnectorError::Unusable(crate::directory::DirectoryError::Settings(format!(
            "the profile's trusted certificate {e}"
        )))
    };
    if ignore_tls_errors {
        crate::tls::unverified().map_err(|e| {
            ConnectorError::Unusable(crate::directory::DirectoryError::Settings(format!(
                "cannot make a TLS client that ignores certificate errors: {e}"
            )))
        })
    } else if trusted_certificate_pem.trim().is_empty() {
        Ok(tls)
    } else {
        crate::tls::trusting(trusted_certificate_pem).map_err(|e| unusable(e.to_string()))
    }
}

fn ldap_settings(
    flavour: Flavour,
    s: &LdapProfile,
    bind_password: SecretString,
    groups_to_sync: Vec<String>,
) -> LdapSettings {
    LdapSettings {
        server: s.server.clone(),
        protocol: if s.protocol == "ldaps" {
            Protocol::Ldaps
        } else {
            Protocol::StartTls
        },
        ignore_tls_errors: s.ignore_tls_errors,
        bind_dn: s.bind_dn.clone(),
        bind_password,
        base_dn: s.base_dn.clone(),
        timeout: Duration::from_secs(u64::from(s.timeout_seconds.max(1))),
        user_filter: s.user_filter.clone(),
        group_filter: s.group_filter.clone(),
        group_name_attribute: s.group_name_attribute.clone(),
        group_description_attribute: s.group_description_attribute.clone(),
        username_attribute: s.username_attribute.clone(),
        full_name_attribute: s.full_name_attribute.clone(),
        email_attribute: s.email_attribute.clone(),
        group_members_attribute: s.group_members_attribute.clone(),
        group_members_search_filter: s.group_members_search_filter.clone(),
        groups_to_sync,
        id_attribute: s.id_attribute.clone(),
        nested_groups: s.nested_groups,
        trusted_certificate_pem: s.trusted_certificate_pem.clone(),
        ..LdapSettings::defaults(flavour)
    }
}
