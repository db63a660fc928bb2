//! Directory profiles as an administrator edits them: the settings of each kind, how a form
//! becomes settings (`form`), the credentials that need more than a text field
//! (`certificate` for Entra ID, `google_key` for Google Workspace), and saving it all with its
//! secrets in one transaction (`store`).
//!
//! Type-specific settings are stored as JSON in `directory_profiles.settings`; secrets are
//! only referenced there (`*_secret` ids into `secrets`), never inlined.

pub mod certificate;
pub mod connector;
pub mod fields;
pub mod form;
pub mod google_key;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::db::models::directory_profiles::{DirectoryProfile, ProfileKind};
use crate::directory::ldap::{Flavour, LdapSettings};

/// Generic LDAP and Active Directory share their settings; Active Directory's attribute
/// settings are fixed to its schema and not shown.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct LdapProfile {
    pub server: String,
    /// `starttls` or `ldaps`.
    pub protocol: String,
    pub ignore_tls_errors: bool,
    pub bind_dn: String,
    pub bind_password_secret: Option<i64>,
    pub base_dn: String,
    pub timeout_seconds: u32,
    pub user_filter: String,
    pub username_attribute: String,
    pub full_name_attribute: String,
    pub email_attribute: String,
    pub group_filter: String,
    pub group_name_attribute: String,
    pub group_description_attribute: String,
    pub group_members_attribute: String,
    /// Empty when member values are DNs; otherwise finds the member entry, `%s` = the value.
    pub group_members_search_filter: String,
    /// Generic LDAP: the attribute that stays the same across renames and moves.
    pub id_attribute: String,
    /// Members of nested groups count as members (expanded in memory, cycles safe).
    pub nested_groups: bool,
    /// A PEM certificate the admin trusts for this directory: a CA, or the server's own
    /// certificate (then pinned by its fingerprint). Empty = Roster's usual trust.
    pub trusted_certificate_pem: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct EntraProfile {
    pub client_id: String,
    pub tenant_id: String,
    pub enabled_users_only: bool,
    pub mailbox_users_only: bool,
    /// The public certificate (PEM) uploaded to the Entra portal; its key is a secret.
    pub certificate_pem: String,
    pub certificate_key_secret: Option<i64>,
    /// Makes the OpenID redirect URI of this profile (chosen once, never reused).
    pub redirect_slug: String,
    /// Guests (`userType` Guest, `#EXT#` names) are synchronised too.
    pub include_guests: bool,
    /// Advanced: where the tokens and Graph are; empty means Microsoft's (tests point them
    /// at local servers).
    pub authority: String,
    pub graph_url: String,
    pub timeout_seconds: u32,
}

impl EntraProfile {
    pub fn authority(&self) -> &str {
        non_empty(&self.authority, crate::directory::entra::DEFAULT_AUTHORITY)
    }

    pub fn graph_url(&self) -> &str {
        non_empty(&self.graph_url, crate::directory::entra::DEFAULT_GRAPH_URL)
    }

    pub fn timeout(&self) -> std::time::Duration {
        seconds_or_30(self.timeout_seconds)
    }
}

fn seconds_or_30(seconds: u32) -> std::time::Duration {
    std::time::Duration::from_secs(match seconds {
        0 => 30,
        s => u64::from(s),
    })
}

fn non_empty<'a>(value: &'a str, default: &'a str) -> &'a str {
    match value.trim() {
        "" => default,
        v => v.trim_end_matches('/'),
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct GoogleProfile {
    pub admin_user: String,
    pub service_account_key_secret: Option<i64>,
    /// Shown so the admin can tell which key is stored; not secret.
    pub service_account_email: String,
    pub service_account_key_id: String,
    pub oidc_client_id: String,
    pub oidc_client_secret_secret: Option<i64>,
    pub redirect_slug: String,
    /// Advanced: where the tokens, the Directory API and the OpenID provider are; empty
    /// means Google's (tests point them at local servers).
    pub token_url: String,
    pub api_url: String,
    pub oidc_issuer: String,
    pub timeout_seconds: u32,
}

impl GoogleProfile {
    pub fn token_url(&self) -> &str {
        non_empty(&self.token_url, crate::directory::google::DEFAULT_TOKEN_URL)
    }

    pub fn api_url(&self) -> &str {
        non_empty(&self.api_url, crate::directory::google::DEFAULT_API_URL)
    }

    pub fn oidc_issuer(&self) -> &str {
        non_empty(&self.oidc_issuer, crate::directory::google::DEFAULT_ISSUER)
    }

    pub fn timeout(&self) -> std::time::Duration {
        seconds_or_30(self.timeout_seconds)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct AppIntegrationProfile {
    pub url: String,
    pub ignore_tls_errors: bool,
    /// As for LDAP: a CA or the server's own (pinned) certificate, PEM.
    pub trusted_certificate_pem: String,
    pub requires_auth: bool,
    pub username: String,
    pub password_secret: Option<i64>,
    /// Advanced: the command names (the credential and group commands are not publicly
    /// documented); empty means `list`, `auth`, `groups`.
    pub list_command: String,
    pub auth_command: String,
    pub groups_command: String,
    pub timeout_seconds: u32,
}

impl AppIntegrationProfile {
    pub fn commands(&self) -> crate::directory::app_integration::Commands {
        crate::directory::app_integration::Commands {
            list: non_empty(&self.list_command, "list").to_owned(),
            auth: non_empty(&self.auth_command, "auth").to_owned(),
            groups: non_empty(&self.groups_command, "groups").to_owned(),
        }
    }

    pub fn timeout(&self) -> std::time::Duration {
        seconds_or_30(self.timeout_seconds)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct IceWarpProfile {
    pub server: String,
    pub ignore_tls_errors: bool,
    pub trusted_certificate_pem: String,
    pub admin_user: String,
    pub password_secret: Option<i64>,
    pub timeout_seconds: u32,
}

/// The settings of one profile, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KindSettings {
    Ldap(Flavour, Box<LdapProfile>),
    Entra(EntraProfile),
    Google(GoogleProfile),
    AppIntegration(AppIntegrationProfile),
    IceWarp(IceWarpProfile),
}

#[derive(Debug, thiserror::Error)]
#[error("the stored settings of this profile are not readable: {0}")]
pub struct BadSettings(String);

impl KindSettings {
    /// What a new profile of this kind starts with.
    pub fn defaults(kind: ProfileKind) -> KindSettings {
        match kind {
            ProfileKind::ActiveDirectory => KindSettings::Ldap(
                Flavour::ActiveDirectory,
                Box::new(ldap_defaults(Flavour::ActiveDirectory)),
            ),
            ProfileKind::GenericLdap => KindSettings::Ldap(
                Flavour::GenericLdap,
                Box::new(ldap_defaults(Flavour::GenericLdap)),
            ),
            ProfileKind::EntraId => KindSettings::Entra(EntraProfile {
                enabled_users_only: true,
                authority: crate::directory::entra::DEFAULT_AUTHORITY.into(),
                graph_url: crate::directory::entra::DEFAULT_GRAPH_URL.into(),
                timeout_seconds: 30,
                ..EntraProfile::default()
            }),
            ProfileKind::GoogleWorkspace => KindSettings::Google(GoogleProfile {
                token_url: crate::directory::google::DEFAULT_TOKEN_URL.into(),
                api_url: crate::directory::google::DEFAULT_API_URL.into(),
                oidc_issuer: crate::directory::google::DEFAULT_ISSUER.into(),
                timeout_seconds: 30,
                ..GoogleProfile::default()
            }),
            ProfileKind::ApplicationIntegration => {
                KindSettings::AppIntegration(AppIntegrationProfile {
                    list_command: "list".into(),
                    auth_command: "auth".into(),
                    groups_command: "groups".into(),
                    timeout_seconds: 30,
                    ..AppIntegrationProfile::default()
                })
            }
            ProfileKind::IceWarp => KindSettings::IceWarp(IceWarpProfile {
                timeout_seconds: 30,
                ..IceWarpProfile::default()
            }),
        }
    }

    pub fn from_json(kind: ProfileKind, json: &str) -> Result<KindSettings, BadSettings> {
        let bad = |e: serde_json::Error| BadSettings(e.to_string());
        Ok(match kind {
            ProfileKind::ActiveDirectory => KindSettings::Ldap(
                Flavour::ActiveDirectory,
                serde_json::from_str(json).map_err(bad)?,
            ),
            ProfileKind::GenericLdap => KindSettings::Ldap(
                Flavour::GenericLdap,
                serde_json::from_str(json).map_err(bad)?,
            ),
            ProfileKind::EntraId => KindSettings::Entra(serde_json::from_str(json).map_err(bad)?),
            ProfileKind::GoogleWorkspace => {
                KindSettings::Google(serde_json::from_str(json).map_err(bad)?)
            }
            ProfileKind::ApplicationIntegration => {
                KindSettings::AppIntegration(serde_json::from_str(json).map_err(bad)?)
            }
            ProfileKind::IceWarp => KindSettings::IceWarp(serde_json::from_str(json).map_err(bad)?),
        })
    }

    pub fn of(profile: &DirectoryProfile) -> Result<KindSettings, BadSettings> {
        let kind = profile
            .kind()
            .ok_or_else(|| BadSettings(format!("unknown kind `{}`", profile.kind)))?;
        KindSettings::from_json(kind, &profile.settings)
    }

    pub fn to_json(&self) -> String {
        let value = match self {
            KindSettings::Ldap(_, s) => serde_json::to_value(s),
            KindSettings::Entra(s) => serde_json::to_value(s),
            KindSettings::Google(s) => serde_json::to_value(s),
            KindSettings::AppIntegration(s) => serde_json::to_value(s),
            KindSettings::IceWarp(s) => serde_json::to_value(s),
        };
        // Plain structs of strings, numbers and booleans always serialise.
        value.map(|v| v.to_string()).unwrap_or_default()
    }

    /// The secret stored in a slot, if any.
    pub fn secret(&self, slot: SecretSlot) -> Option<i64> {
        match (self, slot) {
            (KindSettings::Ldap(_, s), SecretSlot::BindPassword) => s.bind_password_secret,
            (KindSettings::Entra(s), SecretSlot::CertificateKey) => s.certificate_key_secret,
            (KindSettings::Google(s), SecretSlot::ServiceAccountKey) => {
                s.service_account_key_secret
            }
            (KindSettings::Google(s), SecretSlot::OidcClientSecret) => s.oidc_client_secret_secret,
            (KindSettings::AppIntegration(s), SecretSlot::Password) => s.password_secret,
            (KindSettings::IceWarp(s), SecretSlot::Password) => s.password_secret,
            _ => None,
        }
    }

    /// Where this profile's secrets go (server, port, protocol, TLS option, identity; a
    /// cloud's URLs): a stored secret is only ever used with the endpoint it was stored
    /// for. `None` for kinds whose secrets never go to a host the admin types.
    pub fn endpoint(&self) -> Option<String> {
        let lower = |s: &str| s.trim().to_lowercase();
        match self {
            KindSettings::Ldap(_, s) => Some(format!(
                "{}|{}|{}|{}|{}",
                lower(&s.server),
                s.protocol,
                s.ignore_tls_errors,
                lower(&s.bind_dn),
                s.trusted_certificate_pem.trim()
            )),
            KindSettings::AppIntegration(s) => Some(format!(
                "{}|{}|{}|{}",
                s.url.trim(),
                s.ignore_tls_errors,
                s.username.trim(),
                s.trusted_certificate_pem.trim()
            )),
            KindSettings::IceWarp(s) => Some(format!(
                "{}|{}|{}|{}",
                lower(&s.server),
                s.ignore_tls_errors,
                s.admin_user.trim(),
                s.trusted_certificate_pem.trim()
            )),
            // The key signs what goes to the token URL, the token goes to the Directory
            // API, the client secret itself to the issuer's token endpoint.
            KindSettings::Google(s) => Some(format!(
                "{}|{}|{}",
                s.token_url(),
                s.api_url(),
                s.oidc_issuer()
            )),
            // Only assertions signed for Microsoft's (allow-listed) hosts leave; the key
            // was made here and cannot be typed again.
            KindSettings::Entra(_) => None,
        }
    }

    pub fn set_secret(&mut self, slot: SecretSlot, id: Option<i64>) {
        match (self, slot) {
            (KindSettings::Ldap(_, s), SecretSlot::BindPassword) => s.bind_password_secret = id,
            (KindSettings::Entra(s), SecretSlot::CertificateKey) => s.certificate_key_secret = id,
            (KindSettings::Google(s), SecretSlot::ServiceAccountKey) => {
                s.service_account_key_secret = id
            }
            (KindSettings::Google(s), SecretSlot::OidcClientSecret) => {
                s.oidc_client_secret_secret = id
            }
            (KindSettings::AppIntegration(s), SecretSlot::Password) => s.password_secret = id,
            (KindSettings::IceWarp(s), SecretSlot::Password) => s.password_secret = id,
            _ => {}
        }
    }

    /// Every secret the settings reference (so a deleted profile leaves none behind).
    pub fn secret_ids(&self) -> Vec<i64> {
        SecretSlot::ALL
            .into_iter()
            .filter_map(|slot| self.secret(slot))
            .collect()
    }

    pub fn redirect_slug(&self) -> Option<&str> {
        match self {
            KindSettings::Entra(s) => Some(&s.redirect_slug),
            KindSettings::Google(s) => Some(&s.redirect_slug),
            _ => None,
        }
    }
}

fn ldap_defaults(flavour: Flavour) -> LdapProfile {
    let base = LdapSettings::defaults(flavour);
    LdapProfile {
        protocol: "starttls".into(),
        timeout_seconds: base.timeout.as_secs() as u32,
        user_filter: base.user_filter,
        username_attribute: base.username_attribute,
        full_name_attribute: base.full_name_attribute,
        email_attribute: base.email_attribute,
        group_filter: base.group_filter,
        group_name_attribute: base.group_name_attribute,
        group_description_attribute: base.group_description_attribute,
        group_members_attribute: base.group_members_attribute,
        nested_groups: base.nested_groups,
        id_attribute: match flavour {
            Flavour::GenericLdap => "entryUUID".into(),
            Flavour::ActiveDirectory => String::new(),
        },
        ..LdapProfile::default()
    }
}

/// Where a profile keeps a secret. The form field of each slot has the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSlot {
    BindPassword,
    CertificateKey,
    ServiceAccountKey,
    OidcClientSecret,
    Password,
}

impl SecretSlot {
    pub const ALL: [SecretSlot; 5] = [
        SecretSlot::BindPassword,
        SecretSlot::CertificateKey,
        SecretSlot::ServiceAccountKey,
        SecretSlot::OidcClientSecret,
        SecretSlot::Password,
    ];

    /// The form field, and what the audit log and `secrets.purpose` call it.
    pub fn field(self) -> &'static str {
        match self {
            SecretSlot::BindPassword => "bind_password",
            SecretSlot::CertificateKey => "private_key_import",
            SecretSlot::ServiceAccountKey => "service_account_key",
            SecretSlot::OidcClientSecret => "oidc_client_secret",
            SecretSlot::Password => "password",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            SecretSlot::BindPassword => "bind password",
            SecretSlot::CertificateKey => "certificate private key",
            SecretSlot::ServiceAccountKey => "service-account key",
            SecretSlot::OidcClientSecret => "OpenID client secret",
            SecretSlot::Password => "password",
        }
    }
}

/// The OpenID redirect URI of an Entra ID or Google profile.
pub fn redirect_uri(base_url: &str, slug: &str) -> String {
    format!(
        "{}/login/oidc/{slug}/callback",
        base_url.trim_end_matches('/')
    )
}
