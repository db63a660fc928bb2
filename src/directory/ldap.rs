//! Generic LDAP and Active Directory (one connector, two flavours): LDAPS or StartTLS with
//! certificate verification unless the profile explicitly ignores TLS errors, the profile's
//! timeout on every operation, paged searches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};

use super::{ConnectionReport, Directory, DirectoryError, DirectoryGroup};

/// AD caps a page at 1,000 entries; 500 keeps both servers happy.
const PAGE_SIZE: i32 = 500;

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
}

impl LdapSettings {
    /// The defaults a new profile of this flavour starts with.
    pub fn defaults(flavour: Flavour) -> LdapSettings {
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
        }
    }
}

pub struct LdapDirectory {
    settings: LdapSettings,
    tls: Arc<ClientConfig>,
}

impl LdapDirectory {
    /// `tls` is Roster's trust (system roots plus `tls_ca_file`), see `crate::tls`.
    pub fn new(settings: LdapSettings, tls: Arc<ClientConfig>) -> LdapDirectory {
        LdapDirectory { settings, tls }
    }

    fn url(&self) -> Result<String, DirectoryError> {
        let server = self.settings.server.trim();
        if server.is_empty() || server.contains("://") || server.contains(char::is_whitespace) {
            return Err(DirectoryError::Settings(format!(
                "server `{server}` must be a host name or address, optionally with :port"
            )));
        }
        let has_port = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.ends_with(':') && port.parse::<u16>().is_ok())
            && !(server.starts_with('[') && server.ends_with(']'));
        let (scheme, port) = match self.settings.protocol {
            Protocol::StartTls => ("ldap", 389),
            Protocol::Ldaps => ("ldaps", 636),
        };
        Ok(if has_port {
            format!("{scheme}://{server}")
        } else {
            format!("{scheme}://{server}:{port}")
        })
    }

    /// Connects and binds with the service credentials.
    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let s = &self.settings;
        // RFC 4513 §5.1.2: a DN with an empty password is an anonymous bind that many
        // servers answer with success.
        if s.bind_password.expose_secret().trim().is_empty() {
            return Err(DirectoryError::Settings(
                "the bind password is empty".into(),
            ));
        }
        let url = self.url()?;
        let mut conn_settings = LdapConnSettings::new()
            .set_conn_timeout(s.timeout)
            .set_starttls(s.protocol == Protocol::StartTls);
        conn_settings = if s.ignore_tls_errors {
            conn_settings.set_no_tls_verify(true)
        } else {
            conn_settings.set_config(self.tls.clone())
        };
        let (conn, mut ldap) =
            tokio::time::timeout(s.timeout, LdapConnAsync::with_settings(conn_settings, &url))
                .await
                .map_err(|_| self.timeout())?
                .map_err(|e| self.classify(e))?;
        ldap3::drive!(conn);
        ldap.with_timeout(s.timeout);
        let bind = ldap
            .simple_bind(s.bind_dn.trim(), s.bind_password.expose_secret())
            .await
            .map_err(|e| self.classify(e))?;
        match bind.rc {
            0 => Ok(ldap),
            49 => Err(DirectoryError::InvalidCredentials {
                sub_code: ad_sub_code(&bind.text),
                detail: non_empty(&bind.text, "invalidCredentials (49)"),
            }),
            rc => Err(DirectoryError::Protocol {
                detail: format!("bind failed with result code {rc}: {}", bind.text),
            }),
        }
    }

    fn timeout(&self) -> DirectoryError {
        DirectoryError::Timeout {
            server: self.settings.server.clone(),
            timeout: self.settings.timeout,
        }
    }

    /// Sorts ldap3's errors into what an admin can act on, keeping the original text.
    fn classify(&self, error: LdapError) -> DirectoryError {
        let server = self.settings.server.clone();
        match error {
            LdapError::Timeout { .. } => self.timeout(),
            LdapError::Io { source } => {
                let detail = source.to_string();
                let is_tls = source
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
                if is_tls {
                    DirectoryError::Tls { server, detail }
                } else if source.kind() == std::io::ErrorKind::TimedOut {
                    self.timeout()
                } else if detail.contains("lookup address") || detail.contains("not known") {
                    DirectoryError::ServerUnknown { server, detail }
                } else {
                    DirectoryError::Unreachable { server, detail }
                }
            }
            LdapError::FilterParsing => {
                DirectoryError::Settings("a search filter is not valid LDAP filter syntax".into())
            }
            other => DirectoryError::Protocol {
                detail: other.to_string(),
            },
        }
    }

    /// Checks the base DN exists (a base-scope search of it).
    async fn check_base_dn(&self, ldap: &mut Ldap) -> Result<(), DirectoryError> {
        let base = self.settings.base_dn.trim();
        let ldap3::SearchResult(_, result) = ldap
            .search(base, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| self.classify(e))?;
        match result.rc {
            0 => Ok(()),
            32 | 34 => Err(DirectoryError::BaseDnNotFound {
                base_dn: base.to_owned(),
                detail: non_empty(&result.text, &format!("result code {}", result.rc)),
            }),
            rc => Err(DirectoryError::Protocol {
                detail: format!(
                    "searching the base DN failed with result code {rc}: {}",
                    result.text
                ),
            }),
        }
    }

    /// Runs a paged subtree search under the base DN and hands each entry to `each`.
    /// The read is complete or an error: a failed page, a missing cookie or a lost
    /// connection all end in `Err`.
    async fn paged_search(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        attributes: Vec<String>,
        mut each: impl FnMut(SearchEntry),
    ) -> Result<(), DirectoryError> {
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE_SIZE)),
        ];
        let mut stream = ldap
            .streaming_search_with(
                adapters,
                self.settings.base_dn.trim(),
                Scope::Subtree,
                filter,
                attributes,
            )
            .await
            .map_err(|e| self.classify(e))?;
        while let Some(entry) = stream.next().await.map_err(|e| self.classify(e))? {
            each(SearchEntry::construct(entry));
        }
        let result = stream.finish().await;
        match result.rc {
            0 => Ok(()),
            32 => Err(DirectoryError::BaseDnNotFound {
                base_dn: self.settings.base_dn.clone(),
                detail: result.text,
            }),
            rc => Err(DirectoryError::Protocol {
                detail: format!(
                    "search `{filter}` failed with result code {rc}: {}",
                    result.text
                ),
            }),
        }
    }

    async fn count(&self, ldap: &mut Ldap, filter: &str) -> Result<usize, DirectoryError> {
        let mut n = 0;
        self.paged_search(ldap, filter, vec!["1.1".into()], |_| n += 1)
            .await?;
        Ok(n)
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
        let _ = ldap.unbind().await;
        Ok(ConnectionReport {
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
        let _ = ldap.unbind().await;
        groups.sort_by_key(|g| g.name.to_lowercase());
        Ok(groups)
    }
}

/// Active Directory puts a sub-code in its bind errors: `… data 52e, v4563`.
pub fn ad_sub_code(text: &str) -> Option<String> {
    let rest = text.split("data ").nth(1)?;
    let code: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (!code.is_empty()).then_some(code)
}

fn non_empty(text: &str, fallback: &str) -> String {
    if text.trim().is_empty() {
        fallback.to_owned()
    } else {
        text.trim().to_owned()
    }
}
