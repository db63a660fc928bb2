//! The connection to the directory: connect and bind, every operation bounded by the
//! profile's timeout, paged searches that are complete or an error (`errors` words them).

use std::collections::HashMap;
use std::sync::Arc;

use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use secrecy::ExposeSecret;

use super::errors::{ad_sub_code, detail, incomplete, non_empty};
use super::{LdapDirectory, PAGE_SIZE, Protocol};
use crate::directory::DirectoryError;

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
    pub(super) async fn service(&self) -> Result<(Ldap, bool), DirectoryError> {
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
    pub(super) async fn find_dn(&self, filter: &str) -> Result<Vec<String>, DirectoryError> {
        let (mut service, reused) = self.service().await?;
        let base = self.settings.base_dn.trim();
        let search = self
            .bounded(service.search(base, Scope::Subtree, filter, vec!["1.1"]))
            .await;
        let ldap3::SearchResult(entries, result) = match search {
            Ok(found) => found,
            // The server may have closed (or stopped answering on) an idle pooled
            // connection: one fresh try.
            Err(_) if reused => {
                if let Some((pool, key)) = &self.pool {
                    pool.forget(key);
                }
                let (mut fresh, _) = self.service().await?;
                self.bounded(fresh.search(base, Scope::Subtree, filter, vec!["1.1"]))
                    .await?
            }
            Err(e) => {
                if let Some((pool, key)) = &self.pool {
                    pool.forget(key);
                }
                return Err(e);
            }
        };
        if self.pool.is_none() {
            self.unbind(&mut service).await;
        }
        if result.rc != 0 {
            return Err(DirectoryError::Protocol {
                detail: format!(
                    "searching the user failed with result code {}: {}",
                    result.rc, result.text
                ),
            });
        }
        // A referral is not a user entry here: the lookup then finds no one and fails.
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(|e| SearchEntry::construct(e).dn)
            .collect())
    }

    /// One directory operation, bounded by the profile's timeout (ldap3's own timeout lasts
    /// for one operation only, and a stalled server would otherwise hold a run for ever).
    pub(super) async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, LdapError>>,
    ) -> Result<T, DirectoryError> {
        match tokio::time::timeout(self.settings.timeout, operation).await {
            Ok(result) => result.map_err(|e| self.classify(e)),
            Err(_) => Err(self.timeout()),
        }
    }

    /// Says goodbye, but waits no longer than the timeout for a server that may be gone.
    pub(super) async fn unbind(&self, ldap: &mut Ldap) {
        let _ = self.bounded(ldap.unbind()).await;
    }

    pub(super) fn url(&self) -> Result<String, DirectoryError> {
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
    pub(super) async fn connect(&self) -> Result<Ldap, DirectoryError> {
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
        } else if !s.trusted_certificate_pem.trim().is_empty() {
            let trust = crate::tls::trusting(&s.trusted_certificate_pem).map_err(|e| {
                DirectoryError::Settings(format!("the profile's trusted certificate {e}"))
            })?;
            conn_settings.set_config(trust)
        } else {
            conn_settings.set_config(self.tls.clone())
        };
        let (conn, mut ldap) =
            tokio::time::timeout(s.timeout, LdapConnAsync::with_settings(conn_settings, &url))
                .await
                .map_err(|_| self.connect_failure(self.timeout()))?
                .map_err(|e| self.connect_failure(self.classify(e)))?;
        ldap3::drive!(conn);
        let bind = self
            .bounded(ldap.simple_bind(s.bind_dn.trim(), s.bind_password.expose_secret()))
            .await?;
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

    /// Checks the base DN exists (a base-scope search of it).
    pub(super) async fn check_base_dn(&self, ldap: &mut Ldap) -> Result<(), DirectoryError> {
        let base = self.settings.base_dn.trim();
        let ldap3::SearchResult(_, result) = self
            .bounded(ldap.search(base, Scope::Base, "(objectClass=*)", vec!["1.1"]))
            .await?;
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
    /// The read is complete or an error: each page and each entry arrives within the
    /// timeout, and a failed page, a referral, a size limit, a page without the paging
    /// control or a lost connection all end in `Err` — never in a shorter list.
    pub(super) async fn paged_search(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        attributes: Vec<String>,
        mut each: impl FnMut(SearchEntry),
    ) -> Result<(), DirectoryError> {
        let base = self.settings.base_dn.trim();
        let mut cookie = Vec::new();
        let mut own_contexts: Option<Vec<String>> = None;
        for page in 1u64.. {
            let mut referrals = Vec::new();
            ldap.with_controls(PagedResults {
                size: PAGE_SIZE,
                cookie: std::mem::take(&mut cookie),
            });
            let mut stream = self
                .bounded(ldap.streaming_search(base, Scope::Subtree, filter, attributes.clone()))
                .await?;
            while let Some(entry) = self.bounded(stream.next()).await? {
                if entry.is_ref() {
                    referrals.extend(ldap3::parse_refs(entry.0));
                    continue;
                }
                if !entry.is_intermediate() {
                    each(SearchEntry::construct(entry));
                }
            }
            let result = self.bounded(async { Ok(stream.finish().await) }).await?;
            if !referrals.is_empty() {
                // Active Directory refers a search from the domain root to its own other
                // partitions (Configuration, DNS zones), which hold no users: those are no
                // gap. A reference anywhere else is part of the directory Roster cannot see.
                if own_contexts.is_none() {
                    own_contexts = Some(self.naming_contexts(ldap).await?);
                }
                let own = own_contexts.as_deref().unwrap_or_default();
                let elsewhere: Vec<&String> = referrals
                    .iter()
                    .filter(|url| !referral_dn(url).is_some_and(|dn| own.contains(&dn)))
                    .collect();
                if !elsewhere.is_empty() {
                    let to = elsewhere
                        .iter()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(incomplete(format!(
                        "the directory referred part of the search to another server ({to}); Roster does not follow referrals: narrow the base DN or search a global catalog"
                    )));
                }
            }
            match result.rc {
                0 => {}
                4 => {
                    return Err(incomplete(format!(
                        "the directory stopped the search at its size limit (sizeLimitExceeded){}",
                        detail(&result.text)
                    )));
                }
                11 => {
                    return Err(incomplete(format!(
                        "the directory stopped the search at an administrative limit (adminLimitExceeded){}",
                        detail(&result.text)
                    )));
                }
                10 => {
                    return Err(incomplete(format!(
                        "the directory referred the search to another server ({}); Roster does not follow referrals",
                        result.refs.join(", ")
                    )));
                }
                32 => {
                    return Err(DirectoryError::BaseDnNotFound {
                        base_dn: base.to_owned(),
                        detail: result.text,
                    });
                }
                rc => {
                    return Err(DirectoryError::Protocol {
                        detail: format!(
                            "search `{filter}` failed with result code {rc}: {}",
                            result.text
                        ),
                    });
                }
            }
            let paging = result.ctrls.into_iter().find_map(|c| match c {
                Control(Some(ControlType::PagedResults), raw) => Some(raw.parse::<PagedResults>()),
                _ => None,
            });
            match paging {
                Some(paging) if paging.cookie.is_empty() => return Ok(()),
                Some(paging) => cookie = paging.cookie,
                None => {
                    return Err(incomplete(format!(
                        "page {page} of the search came back without the paged-results control, so the read may be incomplete"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The naming contexts this server holds (its root DSE), normalised.
    async fn naming_contexts(&self, ldap: &mut Ldap) -> Result<Vec<String>, DirectoryError> {
        let ldap3::SearchResult(entries, _) = self
            .bounded(ldap.search("", Scope::Base, "(objectClass=*)", vec!["namingContexts"]))
            .await?;
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref())
            .flat_map(|e| {
                SearchEntry::construct(e)
                    .attrs
                    .into_iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("namingContexts"))
                    .flat_map(|(_, v)| v)
            })
            .filter_map(|dn| super::dn::normalize(&dn).ok())
            .collect())
    }

    pub(super) async fn count(
        &self,
        ldap: &mut Ldap,
        filter: &str,
    ) -> Result<usize, DirectoryError> {
        let mut n = 0;
        self.paged_search(ldap, filter, vec!["1.1".into()], |_| n += 1)
            .await?;
        Ok(n)
    }
}

/// Active Directory puts a sub-code in its bind errors: `… data 52e, v4563`.
/// The DN an LDAP URL refers to (`ldap://host/DN?…`), normalised.
fn referral_dn(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let dn = path.split('?').next()?;
    let dn = percent_encoding::percent_decode_str(dn)
        .decode_utf8()
        .ok()?;
    super::dn::normalize(&dn).ok()
}
