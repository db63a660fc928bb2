//! Generic LDAP and Active Directory (one connector, two flavours): LDAPS or StartTLS with
//! certificate verification unless the profile explicitly ignores TLS errors, the profile's
//! timeout on every operation, paged searches that are complete or an error.
//!
//! By concern: `connection` (connect, bind, timeouts, paging), `errors` (the directory's
//! errors in words, TLS hints, AD sub-codes), `entries` (entries
//! as users and groups, ranged reads, AD's GUIDs), `members` (member values to users,
//! nested groups), `dn` (comparing DNs).

mod connection;
pub mod dn;
mod entries;
mod errors;
mod members;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::ldap_escape;
use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};

pub use connection::ServicePool;
use entries::id_filter_value;
pub use entries::{format_guid, ranged_values};
pub use errors::{ad_sub_code, sub_code_meaning};

use super::{
    ConnectionReport, Directory, DirectoryError, DirectoryGroup, PasswordCheck, Progress, Snapshot,
    SourceUser,
};

/// AD caps a page at 1,000 entries; 500 keeps both servers happy.
const PAGE_SIZE: i32 = 500;

/// Values asked for per ranged read of a large `member` attribute (AD answers at most 1,500).
const RANGE_WINDOW: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    GenericLdap,
    ActiveDirectory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `ldap://` on 389, upgraded with StartTLS before anything is sent.
    StartTls,
    /// `ldaps://` on 636.
    Ldaps,
}

#[derive(Clone)]
pub struct LdapSettings {
    pub flavour: Flavour,
    /// `host` or `host:port`.
    pub server: String,
    pub protocol: Protocol,
    pub ignore_tls_errors: bool,
    /// A DN; Active Directory also takes `user@domain` or `DOMAIN\user`.
    pub bind_dn: String,
    pub bind_password: SecretString,
    pub base_dn: String,
    pub timeout: Duration,
    pub user_filter: String,
    pub group_filter: String,
    pub group_name_attribute: String,
    pub group_description_attribute: String,
    pub username_attribute: String,
    pub full_name_attribute: String,
    pub email_attribute: String,
    pub group_members_attribute: String,
    /// Empty when member values are DNs; else e.g. `(&(objectClass=posixAccount)(uid=%s))`:
    /// member values are matched against the users' values of the attribute before `=%s`.
    pub group_members_search_filter: String,
    /// Group names to synchronise (case-insensitive); empty = all groups.
    pub groups_to_sync: Vec<String>,
    /// Generic LDAP: the attribute that identifies an entry for good (empty = entryUUID).
    pub id_attribute: String,
    /// Members of a group that is a member of a group count as members of both.
    pub nested_groups: bool,
    /// The profile's own trusted certificate (PEM): a CA, or the server's certificate,
    /// pinned. Empty = Roster's trust (system roots and `tls_ca_file`).
    pub trusted_certificate_pem: String,
}

impl LdapSettings {
    /// The defaults a new profile of this flavour starts with.
    pub fn defaults(flavour: Flavour) -> LdapSettings {
        let (username, full_name) = match flavour {
            Flavour::GenericLdap => ("uid", "cn"),
            Flavour::ActiveDirectory => ("sAMAccountName", "displayName"),
        };
        let (user_filter, group_filter) = match flavour {
            Flavour::GenericLdap => ("(objectClass=inetOrgPerson)", "(objectClass=groupOfNames)"),
            Flavour::ActiveDirectory => (
                "(&(objectCategory=person)(objectClass=user))",
                "(objectClass=group)",
            ),
        };
        LdapSettings {
            flavour,
            server: String::new(),
            protocol: Protocol::StartTls,
            ignore_tls_errors: false,
            bind_dn: String::new(),
            bind_password: SecretString::from(String::new()),
            base_dn: String::new(),
            timeout: Duration::from_secs(30),
            user_filter: user_filter.into(),
            group_filter: group_filter.into(),
            group_name_attribute: "cn".into(),
            group_description_attribute: "description".into(),
            username_attribute: username.into(),
            full_name_attribute: full_name.into(),
            email_attribute: "mail".into(),
            group_members_attribute: "member".into(),
            group_members_search_filter: String::new(),
            groups_to_sync: Vec::new(),
            id_attribute: String::new(),
            nested_groups: flavour == Flavour::ActiveDirectory,
            trusted_certificate_pem: String::new(),
        }
    }
}

pub struct LdapDirectory {
    settings: LdapSettings,
    tls: Arc<ClientConfig>,
    /// Where sign-ins find a bound service connection, and under which key.
    pool: Option<(ServicePool, String)>,
}

impl LdapDirectory {
    /// `tls` is Roster's trust (system roots plus `tls_ca_file`), see `crate::tls`.
    pub fn new(settings: LdapSettings, tls: Arc<ClientConfig>) -> LdapDirectory {
        LdapDirectory {
            settings,
            tls,
            pool: None,
        }
    }

    /// Sign-ins through this directory reuse the service connection kept in `pool` under
    /// `key`, which must start with `profile:` followed by the profile's id and `:`.
    pub fn pooled(mut self, pool: ServicePool, key: String) -> LdapDirectory {
        self.pool = Some((pool, key));
        self
    }
}

impl Directory for LdapDirectory {
    async fn test_connection(&self) -> Result<ConnectionReport, DirectoryError> {
        let started = Instant::now();
        let mut ldap = self.connect().await?;
        self.check_base_dn(&mut ldap).await?;
        let users_matched = self
            .count(&mut ldap, self.settings.user_filter.trim())
            .await?;
        let groups_matched = self
            .count(&mut ldap, self.settings.group_filter.trim())
            .await?;
        self.unbind(&mut ldap).await;
        Ok(ConnectionReport {
            checked: "Base DN found",
            counted: "matching the filter",
            bound_as: self.settings.bind_dn.trim().to_owned(),
            users_matched,
            groups_matched,
            elapsed: started.elapsed(),
        })
    }

    async fn list_groups(&self, search: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let s = &self.settings;
        let mut ldap = self.connect().await?;
        let filter = if search.trim().is_empty() {
            s.group_filter.trim().to_owned()
        } else {
            format!(
                "(&{}({}=*{}*))",
                s.group_filter.trim(),
                s.group_name_attribute,
                ldap_escape(search.trim())
            )
        };
        let (name_attr, description_attr) = (
            s.group_name_attribute.clone(),
            s.group_description_attribute.clone(),
        );
        let mut groups = Vec::new();
        self.paged_search(
            &mut ldap,
            &filter,
            vec![name_attr.clone(), description_attr.clone()],
            |entry| {
                let first = |attr: &str| {
                    entry
                        .attrs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                        .and_then(|(_, v)| v.first().cloned())
                };
                groups.push(DirectoryGroup {
                    name: first(&name_attr).unwrap_or_else(|| entry.dn.clone()),
                    description: first(&description_attr).unwrap_or_default(),
                    id: entry.dn.clone(),
                });
            },
        )
        .await?;
        self.unbind(&mut ldap).await;
        groups.sort_by_key(|g| g.name.to_lowercase());
        Ok(groups)
    }

    async fn authenticate(
        &self,
        account: &super::Account<'_>,
        password: &SecretString,
    ) -> Result<PasswordCheck, DirectoryError> {
        let external_id = account.external_id;
        // RFC 4513 §5.1.2: an empty password makes an unauthenticated bind that succeeds.
        if crate::auth::password::is_blank(password.expose_secret()) {
            return Ok(PasswordCheck::Refused {
                reason: "empty password".into(),
            });
        }
        let filter = format!(
            "(&{}({}={}))",
            self.settings.user_filter.trim(),
            self.id_attribute(),
            id_filter_value(self.settings.flavour, external_id)?
        );
        let found = self.find_dn(&filter).await?;
        let [dn] = <[String; 1]>::try_from(found).map_err(|found| DirectoryError::Protocol {
            detail: format!(
                "{} directory entries match the user's id (exactly one is needed)",
                found.len()
            ),
        })?;
        // The user's own bind, on a connection of its own.
        let user = LdapDirectory::new(
            LdapSettings {
                bind_dn: dn,
                bind_password: password.clone(),
                ..self.settings.clone()
            },
            self.tls.clone(),
        );
        match user.connect().await {
            Ok(mut ldap) => {
                self.unbind(&mut ldap).await;
                Ok(PasswordCheck::Accepted)
            }
            Err(DirectoryError::InvalidCredentials { detail, sub_code }) => {
                let reason = match sub_code.as_deref() {
                    Some("52e") => "wrong password".to_owned(),
                    Some("533") => "account disabled in Active Directory".to_owned(),
                    Some("532") => "password expired".to_owned(),
                    Some("701") => "account expired".to_owned(),
                    Some("773") => "password must be changed".to_owned(),
                    Some("775") => "account locked out".to_owned(),
                    _ => format!("invalid credentials: {detail}"),
                };
                Ok(PasswordCheck::Refused { reason })
            }
            Err(other) => Err(other),
        }
    }

    async fn snapshot(&self, progress: &Progress) -> Result<Snapshot, DirectoryError> {
        let s = &self.settings;
        progress.set_phase("connecting");
        let mut ldap = self.connect().await?;
        self.check_base_dn(&mut ldap).await?;
        // One connection, users then groups: reading both at once on two connections was
        // slower (the directory and the decoding share the same cores).
        let mut warnings = Vec::new();
        progress.set_phase("reading users");
        let users = self
            .read_users(&mut ldap, s.user_filter.trim(), &mut warnings, progress)
            .await?;
        progress.set_phase("reading groups");
        let groups = self.read_groups(&mut ldap, &mut warnings, progress).await?;
        self.unbind(&mut ldap).await;

        let matching = if self.member_match_attribute().is_some() {
            members::Matching::Attribute
        } else {
            members::Matching::Dn {
                nested: s.nested_groups,
            }
        };
        let chosen: Vec<String> = s.groups_to_sync.iter().map(|g| g.to_lowercase()).collect();
        for name in &chosen {
            if !groups.iter().any(|g| g.group.name.to_lowercase() == *name) {
                return Err(DirectoryError::Settings(format!(
                    "the group `{name}` chosen for synchronisation does not exist in the directory (or the group filter excludes it)"
                )));
            }
        }
        let resolved = members::resolve(users, groups, &matching, &chosen);
        warnings.extend(resolved.warnings);
        Ok(Snapshot {
            users: resolved.users,
            groups: resolved.groups,
            warnings,
            scope: resolved.scope,
            sign_in_domains: None,
            skip_new_disabled: false,
        })
    }

    async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError> {
        let mut ldap = self.connect().await?;
        let filter = format!(
            "(&{}({}={}))",
            self.settings.user_filter.trim(),
            self.settings.username_attribute,
            ldap_escape(username)
        );
        let mut warnings = Vec::new();
        let found = self
            .read_users(&mut ldap, &filter, &mut warnings, &Progress::default())
            .await?;
        self.unbind(&mut ldap).await;
        if let Some(warning) = warnings.into_iter().next() {
            return Err(DirectoryError::Settings(warning));
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next().map(|read| read.user)),
            n => Err(DirectoryError::Protocol {
                detail: format!("{n} directory entries have the user name `{username}`"),
            }),
        }
    }
}
