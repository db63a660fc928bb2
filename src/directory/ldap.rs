//! Generic LDAP and Active Directory (one connector, two flavours): LDAPS or StartTLS with
//! certificate verification unless the profile explicitly ignores TLS errors, the profile's
//! timeout on every operation, paged searches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};

use std::collections::{HashMap, HashSet};

use super::{
    ConnectionReport, Directory, DirectoryError, DirectoryGroup, PasswordCheck, Progress, Snapshot,
    SourceGroup, SourceUser,
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
        }
    }
}

pub struct LdapDirectory {
    settings: LdapSettings,
    tls: Arc<ClientConfig>,
    /// Where sign-ins find a bound service connection, and under which key.
    pool: Option<(ServicePool, String)>,
}

/// Bound service connections kept between sign-ins, one per profile (keyed by the caller,
/// so changed settings get a new one). ldap3's `Ldap` handle multiplexes operations over one
/// connection, so concurrent sign-ins share it; a connection the server closed is replaced
/// on first failure.
#[derive(Clone, Default)]
pub struct ServicePool {
    connections: Arc<std::sync::Mutex<HashMap<String, Ldap>>>,
}

impl ServicePool {
    fn get(&self, key: &str) -> Option<Ldap> {
        self.connections.lock().ok()?.get(key).cloned()
    }

    /// Keeps `ldap` for `key`, dropping older connections of the same profile (`prefix`).
    fn put(&self, key: &str, prefix: &str, ldap: Ldap) {
        if let Ok(mut map) = self.connections.lock() {
            map.retain(|k, _| !k.starts_with(prefix));
            map.insert(key.to_owned(), ldap);
        }
    }

    fn forget(&self, key: &str) {
        if let Ok(mut map) = self.connections.lock() {
            map.remove(key);
        }
    }
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

    /// The service connection for a sign-in: the pooled one, or a new one (kept).
    async fn service(&self) -> Result<(Ldap, bool), DirectoryError> {
        if let Some((pool, key)) = &self.pool
            && let Some(ldap) = pool.get(key)
        {
            return Ok((ldap, true));
        }
        let ldap = self.connect().await?;
        if let Some((pool, key)) = &self.pool {
            let prefix = key.split(':').take(2).collect::<Vec<_>>().join(":") + ":";
            pool.put(key, &prefix, ldap.clone());
        }
        Ok((ldap, false))
    }

    /// Finds the DN of the user with this stable id, through the service connection.
    async fn find_dn(&self, filter: &str) -> Result<Vec<String>, DirectoryError> {
        let (mut service, reused) = self.service().await?;
        let search = service
            .search(
                self.settings.base_dn.trim(),
                Scope::Subtree,
                filter,
                vec!["1.1"],
            )
            .await;
        let ldap3::SearchResult(entries, result) = match search {
            Ok(found) => found,
            // The server may have closed an idle pooled connection: one fresh try.
            Err(_) if reused => {
                if let Some((pool, key)) = &self.pool {
                    pool.forget(key);
                }
                let (mut fresh, _) = self.service().await?;
                fresh
                    .search(
                        self.settings.base_dn.trim(),
                        Scope::Subtree,
                        filter,
                        vec!["1.1"],
                    )
                    .await
                    .map_err(|e| self.classify(e))?
            }
            Err(e) => return Err(self.classify(e)),
        };
        if self.pool.is_none() {
            let _ = service.unbind().await;
        }
        if result.rc != 0 {
            return Err(DirectoryError::Protocol {
                detail: format!(
                    "searching the user failed with result code {}: {}",
                    result.rc, result.text
                ),
            });
        }
        Ok(entries
            .into_iter()
            .map(|e| SearchEntry::construct(e).dn)
            .collect())
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
        // Our own socket, for TCP_NODELAY: ldap3's leaves Nagle on, and the small writes of
        // StartTLS and bind then wait for delayed ACKs (≈40 ms per sign-in, measured by
        // `cargo bench --bench sign_in`).
        let host_port = url.split_once("://").map(|(_, h)| h).unwrap_or(&url);
        let stream = tokio::time::timeout(s.timeout, tokio::net::TcpStream::connect(host_port))
            .await
            .map_err(|_| self.timeout())?
            .map_err(|source| self.classify(LdapError::Io { source }))?;
        let stream = stream
            .set_nodelay(true)
            .and_then(|()| stream.into_std())
            .map_err(|source| self.classify(LdapError::Io { source }))?;
        let mut conn_settings = LdapConnSettings::new()
            .set_conn_timeout(s.timeout)
            .set_std_stream(ldap3::StdStream::Tcp(stream))
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

    async fn authenticate(
        &self,
        external_id: &str,
        password: &SecretString,
    ) -> Result<PasswordCheck, DirectoryError> {
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
                let _ = ldap.unbind().await;
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
        let _ = ldap.unbind().await;

        // Member values → user external ids: by DN, or by the members search filter's attribute.
        let by_match = self.member_match_attribute().is_some();
        let mut index: HashMap<String, &str> = HashMap::new();
        for (dn, match_values, user) in &users {
            if by_match {
                for v in match_values {
                    index.insert(v.to_lowercase(), &user.external_id);
                }
            } else {
                index.insert(dn.clone(), &user.external_id);
            }
        }
        let chosen: Vec<String> = s.groups_to_sync.iter().map(|g| g.to_lowercase()).collect();
        for name in &chosen {
            if !groups.iter().any(|(g, _)| g.name.to_lowercase() == *name) {
                return Err(DirectoryError::Settings(format!(
                    "the group `{name}` chosen for synchronisation does not exist in the directory (or the group filter excludes it)"
                )));
            }
        }
        let mut out_groups = Vec::new();
        for (mut group, values) in groups {
            if !chosen.is_empty() && !chosen.contains(&group.name.to_lowercase()) {
                continue;
            }
            let mut seen = HashSet::new();
            group.members = values
                .iter()
                .filter_map(|v| index.get(&v.trim().to_lowercase()).copied())
                .filter(|id| seen.insert(*id))
                .map(str::to_owned)
                .collect();
            out_groups.push(group);
        }
        let mut out_users: Vec<SourceUser> = users.into_iter().map(|(_, _, u)| u).collect();
        if !chosen.is_empty() {
            // Only members of the chosen groups are in scope.
            let members: HashSet<&str> = out_groups
                .iter()
                .flat_map(|g| g.members.iter().map(String::as_str))
                .collect();
            out_users.retain(|u| members.contains(u.external_id.as_str()));
        }
        Ok(Snapshot {
            users: out_users,
            groups: out_groups,
            warnings,
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
        let _ = ldap.unbind().await;
        if let Some(warning) = warnings.into_iter().next() {
            return Err(DirectoryError::Settings(warning));
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next().map(|(_, _, user)| user)),
            n => Err(DirectoryError::Protocol {
                detail: format!("{n} directory entries have the user name `{username}`"),
            }),
        }
    }
}

impl LdapDirectory {
    /// The attribute that identifies an entry for good: renames and moves keep it.
    fn id_attribute(&self) -> &str {
        match self.settings.flavour {
            Flavour::ActiveDirectory => "objectGUID",
            Flavour::GenericLdap => match self.settings.id_attribute.trim() {
                "" => "entryUUID",
                attr => attr,
            },
        }
    }

    /// With a members search filter like `(&(objectClass=posixAccount)(uid=%s))`, members
    /// are the users whose `uid` equals the member value.
    fn member_match_attribute(&self) -> Option<String> {
        let filter = self.settings.group_members_search_filter.trim();
        let before = filter
            .split("=%s")
            .next()
            .filter(|_| filter.contains("=%s"))?;
        let attr: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        (!attr.is_empty()).then_some(attr)
    }

    /// The users matching `filter` (the profile's user filter, or a narrower one), with
    /// their DNs and the values members are matched by.
    async fn read_users(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        warnings: &mut Vec<String>,
        progress: &Progress,
    ) -> Result<Vec<(String, Vec<String>, SourceUser)>, DirectoryError> {
        let s = &self.settings;
        let id_attr = self.id_attribute();
        let match_attr = self.member_match_attribute();
        let mut attrs = vec![
            id_attr.to_owned(),
            s.username_attribute.clone(),
            s.full_name_attribute.clone(),
            s.email_attribute.clone(),
        ];
        if s.flavour == Flavour::ActiveDirectory {
            attrs.extend(["userAccountControl".into(), "proxyAddresses".into()]);
        }
        attrs.extend(match_attr.clone());
        attrs.retain(|a| !a.is_empty());
        let mut users = Vec::new();
        self.paged_search(ldap, filter, attrs, |entry| {
            progress.user_read();
            match self.source_user(&entry, id_attr) {
                Ok(user) => {
                    let match_values = match_attr
                        .as_deref()
                        .map(|a| all(&entry, a))
                        .unwrap_or_default();
                    users.push((entry.dn.to_lowercase(), match_values, user));
                }
                Err(warning) => warnings.push(warning),
            }
        })
        .await?;
        Ok(users)
    }

    /// An entry as a user, or why it is left out.
    fn source_user(&self, entry: &SearchEntry, id_attr: &str) -> Result<SourceUser, String> {
        let s = &self.settings;
        let flavour = s.flavour;
        let external_id = stable_id(flavour, id_attr, entry)
            .ok_or_else(|| format!("{} has no {id_attr}: left out", entry.dn))?;
        let username = first(entry, &s.username_attribute)
            .ok_or_else(|| format!("{} has no {}: left out", entry.dn, s.username_attribute))?;
        let mut emails: Vec<String> = Vec::new();
        let mut add = |address: &str| {
            let address = address.trim();
            if !address.is_empty() && !emails.iter().any(|e| e.eq_ignore_ascii_case(address)) {
                emails.push(address.to_owned());
            }
        };
        all(entry, &s.email_attribute).iter().for_each(|a| add(a));
        for proxy in all(entry, "proxyAddresses") {
            // `SMTP:` marks the primary address, `smtp:` the others; x500: etc. are not mail.
            if let Some(address) = proxy
                .get(5..)
                .filter(|_| proxy[..5].eq_ignore_ascii_case("smtp:"))
            {
                add(address);
            }
        }
        let disabled = flavour == Flavour::ActiveDirectory
            && first(entry, "userAccountControl")
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|uac| uac & 2 != 0);
        Ok(SourceUser {
            external_id,
            username,
            full_name: first(entry, &s.full_name_attribute).unwrap_or_default(),
            emails,
            disabled,
        })
    }

    /// Groups with their raw member values (DNs or names), large `member` attributes read
    /// range by range.
    async fn read_groups(
        &self,
        ldap: &mut Ldap,
        warnings: &mut Vec<String>,
        progress: &Progress,
    ) -> Result<Vec<(SourceGroup, Vec<String>)>, DirectoryError> {
        let s = &self.settings;
        let id_attr = self.id_attribute();
        let members = s.group_members_attribute.clone();
        let ranged = s.flavour == Flavour::ActiveDirectory;
        let member_request = if ranged {
            format!("{members};range=0-{}", RANGE_WINDOW - 1)
        } else {
            members.clone()
        };
        let attrs = vec![
            id_attr.to_owned(),
            s.group_name_attribute.clone(),
            s.group_description_attribute.clone(),
            member_request,
        ];
        let flavour = s.flavour;
        let mut groups = Vec::new();
        let mut unfinished = Vec::new();
        self.paged_search(ldap, s.group_filter.trim(), attrs, |entry| {
            progress.group_read();
            let Some(external_id) = stable_id(flavour, id_attr, &entry) else {
                warnings.push(format!("{} has no {id_attr}: left out", entry.dn));
                return;
            };
            let (values, next) = ranged_values(&entry.attrs, &members);
            if let Some(start) = next {
                unfinished.push((groups.len(), entry.dn.clone(), start));
            }
            groups.push((
                SourceGroup {
                    external_id,
                    name: first(&entry, &s.group_name_attribute)
                        .unwrap_or_else(|| entry.dn.clone()),
                    description: first(&entry, &s.group_description_attribute).unwrap_or_default(),
                    members: Vec::new(),
                },
                values,
            ));
        })
        .await?;
        for (index, dn, mut start) in unfinished {
            loop {
                let request = format!("{members};range={start}-{}", start + RANGE_WINDOW - 1);
                let ldap3::SearchResult(entries, result) = ldap
                    .search(&dn, Scope::Base, "(objectClass=*)", vec![request])
                    .await
                    .map_err(|e| self.classify(e))?;
                if result.rc != 0 {
                    return Err(DirectoryError::Protocol {
                        detail: format!(
                            "reading the members of {dn} from {start} failed with result code {}: {}",
                            result.rc, result.text
                        ),
                    });
                }
                let entry = entries
                    .into_iter()
                    .next()
                    .map(SearchEntry::construct)
                    .ok_or_else(|| DirectoryError::Protocol {
                        detail: format!("{dn} disappeared while its members were read"),
                    })?;
                let (values, next) = ranged_values(&entry.attrs, &members);
                if values.is_empty() && next.is_some() {
                    return Err(DirectoryError::Protocol {
                        detail: format!("{dn}: an empty member range before the end"),
                    });
                }
                groups[index].1.extend(values);
                match next {
                    Some(n) => start = n,
                    None => break,
                }
            }
        }
        Ok(groups)
    }
}

/// A stable id as an RFC 4515 filter value: text escaped; objectGUID as its 16 bytes, each
/// `\\xx` (the text form is mixed-endian).
fn id_filter_value(flavour: Flavour, external_id: &str) -> Result<String, DirectoryError> {
    match flavour {
        Flavour::GenericLdap => Ok(ldap_escape(external_id).into_owned()),
        Flavour::ActiveDirectory => {
            let hex: String = external_id.chars().filter(|c| *c != '-').collect();
            let bytes = hex::decode(&hex)
                .ok()
                .filter(|b| b.len() == 16)
                .ok_or_else(|| {
                    DirectoryError::Settings(format!("`{external_id}` is not an objectGUID"))
                })?;
            // Back to wire order: the first three groups are little-endian.
            let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
            Ok(order
                .iter()
                .map(|i| format!("\\{:02x}", bytes[*i]))
                .collect())
        }
    }
}

/// The values of a possibly ranged attribute in one answer — `member`, `member;range=0-1499`
/// (AD's forced form comes with an empty `member`), `member;range=1500-*` — and where the
/// next range starts, `None` once the answer ends in `*` or was not ranged.
pub fn ranged_values(
    attrs: &HashMap<String, Vec<String>>,
    attribute: &str,
) -> (Vec<String>, Option<usize>) {
    let prefix = format!("{};range=", attribute.to_lowercase());
    let mut values = Vec::new();
    let mut next = None;
    for (name, vals) in attrs {
        let lower = name.to_lowercase();
        if lower == attribute.to_lowercase() {
            values.extend(vals.iter().cloned());
        } else if let Some(range) = lower.strip_prefix(&prefix) {
            values.extend(vals.iter().cloned());
            if let Some((_, end)) = range.split_once('-')
                && end != "*"
            {
                next = end.parse::<usize>().ok().map(|e| e + 1);
            }
        }
    }
    (values, next)
}

fn all(entry: &SearchEntry, attr: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    all(entry, attr)
        .into_iter()
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// objectGUID as AD shows it (mixed-endian text); entryUUID as it is.
fn stable_id(flavour: Flavour, attr: &str, entry: &SearchEntry) -> Option<String> {
    match flavour {
        // A configured id attribute may be binary (e.g. eDirectory's GUID): hex then.
        Flavour::GenericLdap => first(entry, attr).map(|v| v.to_lowercase()).or_else(|| {
            entry
                .bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .and_then(|(_, v)| v.first().map(hex::encode))
        }),
        Flavour::ActiveDirectory => {
            // ldap3 keeps values that happen to be valid UTF-8 as text: same bytes.
            let bytes = entry
                .bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .and_then(|(_, v)| v.first().cloned())
                .or_else(|| {
                    entry
                        .attrs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                        .and_then(|(_, v)| v.first().map(|s| s.as_bytes().to_vec()))
                })?;
            format_guid(&bytes)
        }
    }
}

/// `objectGUID` bytes → `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (the first three groups
/// little-endian, as Windows prints GUIDs).
pub fn format_guid(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
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
