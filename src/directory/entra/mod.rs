//! Microsoft Entra ID through Microsoft Graph (PROTOCOLS.md, "Microsoft Entra ID"): an
//! app-only token from a client assertion signed with the profile's certificate key, users
//! and groups read page by page following `@odata.nextLink` to the end, members through
//! `transitiveMembers`. Throttling (429, 503) is retried within a budget per run; anything
//! else that goes wrong — an error, a page that does not parse, a cut-off answer, a stall
//! past the timeout — fails the whole read, so a run never applies half a directory.
//!
//! `http` holds the requests (token, paging, retries, errors in Entra's and Graph's words),
//! `assertion` the signed client assertion, which the OpenID sign-in uses too. Entra's users
//! sign in with Microsoft (`auth::oidc`), so `authenticate` refuses.

mod assertion;
mod delta;
mod http;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use secrecy::SecretString;
use serde::Deserialize;

use super::rest::{Failure, failed};
pub use assertion::{ASSERTION_TYPE, client_assertion, token_url};
use http::Page;

use super::rest::{Rest, RetryBudget};
use super::{
    ConnectionReport, Directory, DirectoryError, DirectoryGroup, PasswordCheck, Progress, Snapshot,
    SourceGroup, SourceUser,
};

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// Microsoft's clouds (global, US Government, China): a profile's authority and Graph URL
/// must be among these (or on this machine), so a tenant-wide token never goes elsewhere.
pub const AUTHORITIES: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];
pub const GRAPHS: &[&str] = &[
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];

/// What Roster needs of a user; without `$select` Graph leaves most of it out.
const USER_FIELDS: &str =
    "id,accountEnabled,mail,userPrincipalName,proxyAddresses,displayName,assignedPlans,userType";
/// Graph's largest page.
const PAGE: usize = 999;
/// Member lists of this many groups are read at once: enough to hide the round trips,
/// few enough not to be throttled for it.
pub const MEMBER_CONCURRENCY: usize = 8;

#[derive(Clone)]
pub struct EntraSettings {
    pub tenant_id: String,
    pub client_id: String,
    /// `https://login.microsoftonline.com`, or a local server in tests.
    pub authority: String,
    /// `https://graph.microsoft.com`, or a local server in tests.
    pub graph_url: String,
    /// The certificate registered with the app (PEM) and its private key (PKCS#8 PEM).
    pub certificate_pem: String,
    pub private_key_pem: SecretString,
    pub enabled_users_only: bool,
    pub mailbox_users_only: bool,
    pub include_guests: bool,
    /// Group names to synchronise (case-insensitive); empty = all groups.
    pub groups_to_sync: Vec<String>,
    /// Each request (connect, answer, whole body) must finish within this.
    pub timeout: Duration,
    pub retry: RetryBudget,
}

pub struct EntraDirectory {
    settings: EntraSettings,
    rest: Rest,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphUser {
    id: String,
    user_principal_name: Option<String>,
    display_name: Option<String>,
    mail: Option<String>,
    // Graph sends `null` as well as `[]` for none.
    proxy_addresses: Option<Vec<String>>,
    account_enabled: Option<bool>,
    user_type: Option<String>,
    assigned_plans: Option<Vec<AssignedPlan>>,
}

impl GraphUser {
    /// The user as Roster keeps them, named `upn`.
    fn into_source(self, upn: String, enabled: bool) -> SourceUser {
        SourceUser {
            emails: emails(
                self.mail.as_deref(),
                self.proxy_addresses.as_deref().unwrap_or_default(),
            ),
            external_id: self.id,
            full_name: self.display_name.unwrap_or_default(),
            username: upn,
            disabled: !enabled,
            sign_in_name: String::new(),
        }
    }
}

/// What the profile makes of a user Graph sent.
enum Admitted {
    In(SourceUser),
    /// Not synchronised (guest, no mailbox, no name): left out.
    Out,
    /// Sent without `accountEnabled`: the answer is incomplete.
    NoStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedPlan {
    #[serde(default)]
    service: String,
    #[serde(default)]
    capability_status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphGroup {
    id: String,
    display_name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct DirectoryObject {
    #[serde(rename = "@odata.type", default)]
    kind: String,
    id: String,
}

impl EntraDirectory {
    pub fn new(settings: EntraSettings, tls: Arc<ClientConfig>) -> Result<Self, DirectoryError> {
        let rest = Rest::new(
            tls,
            settings.timeout,
            &settings.graph_url,
            http::GRAPH,
            settings.retry,
        )?;
        Ok(EntraDirectory {
            settings,
            rest,
            token: tokio::sync::Mutex::new(None),
        })
    }

    fn graph(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.settings.graph_url.trim_end_matches('/')
        )
    }

    async fn read_users(
        &self,
        warnings: &mut Vec<String>,
        progress: &Progress,
    ) -> Result<Vec<SourceUser>, DirectoryError> {
        let mut users = Vec::new();
        let mut missing_status = 0usize;
        let first = self.graph(&format!("/v1.0/users?$select={USER_FIELDS}&$top={PAGE}"));
        self.all(first, false, |u: GraphUser| {
            progress.user_read();
            match self.admit(u, warnings) {
                Admitted::In(user) => users.push(user),
                Admitted::Out => {}
                Admitted::NoStatus => missing_status += 1,
            }
        })
        .await
        .map_err(failed)?;
        // Graph leaves out what was not selected: no status is a wrong answer, and
        // guessing "enabled" could let a disabled account in.
        if missing_status > 0 {
            return Err(DirectoryError::Incomplete {
                detail: format!("Graph sent {missing_status} user(s) without accountEnabled"),
            });
        }
        Ok(users)
    }

    /// Whether the profile takes this user (guests, mailbox), as Roster keeps them.
    fn admit(&self, mut u: GraphUser, warnings: &mut Vec<String>) -> Admitted {
        let s = &self.settings;
        let upn = u.user_principal_name.take();
        let Some(upn) = upn.filter(|n| !n.trim().is_empty()) else {
            warnings.push(format!("user {}: no userPrincipalName; left out", u.id));
            return Admitted::Out;
        };
        let guest = u.user_type.as_deref() == Some("Guest") || upn.contains("#EXT#");
        if guest && !s.include_guests {
            return Admitted::Out;
        }
        let Some(enabled) = u.account_enabled else {
            return Admitted::NoStatus;
        };
        let mailbox = u.assigned_plans.iter().flatten().any(|p| {
            p.service.eq_ignore_ascii_case("exchange") && p.capability_status == "Enabled"
        });
        if s.mailbox_users_only && !mailbox {
            return Admitted::Out;
        }
        Admitted::In(u.into_source(upn, enabled))
    }

    async fn read_groups(
        &self,
        eventual_search: Option<&str>,
    ) -> Result<Vec<GraphGroup>, DirectoryError> {
        let mut query = format!("/v1.0/groups?$select=id,displayName,description&$top={PAGE}");
        if let Some(term) = eventual_search {
            let term: String = term.chars().filter(|c| !matches!(c, '"' | '\\')).collect();
            let search = format!("\"displayName:{term}\"");
            query.push_str("&$search=");
            query.extend(url::form_urlencoded::byte_serialize(search.as_bytes()));
        }
        let mut groups = Vec::new();
        self.all(
            self.graph(&query),
            eventual_search.is_some(),
            |g: GraphGroup| groups.push(g),
        )
        .await
        .map_err(failed)?;
        Ok(groups)
    }

    /// A group's member users (nested groups' users included), or `None` when Graph says
    /// the group no longer exists.
    async fn members(&self, group_id: &str) -> Result<Option<Vec<String>>, DirectoryError> {
        let id: String = url::form_urlencoded::byte_serialize(group_id.as_bytes()).collect();
        let first = self.graph(&format!(
            "/v1.0/groups/{id}/transitiveMembers?$select=id&$top={PAGE}"
        ));
        let mut members = Vec::new();
        match self
            .all(first, false, |o: DirectoryObject| {
                // Devices, contacts and service principals are members too; groups inside
                // are how nesting shows, their users are listed themselves. An object of no
                // stated type is kept and then counted as a member that is not a user here.
                if o.kind == "#microsoft.graph.user" || o.kind.is_empty() {
                    members.push(o.id);
                }
            })
            .await
        {
            Ok(_) => Ok(Some(members)),
            Err(Failure::NotFound(_)) => Ok(None),
            Err(other) => Err(failed(other)),
        }
    }

    /// The groups in scope (all, or the chosen ones, which must exist) with their member
    /// users (nested groups' included), kept to the users `known` says are synchronised.
    pub async fn groups_of(
        &self,
        chosen: &HashSet<String>,
        known: &(dyn Fn(&str) -> bool + Sync),
        warnings: &mut Vec<String>,
        progress: &Progress,
    ) -> Result<Vec<SourceGroup>, DirectoryError> {
        let listed = self.read_groups(None).await?;
        for name in chosen {
            if !listed
                .iter()
                .any(|g| g.display_name.as_deref().map(str::to_lowercase).as_ref() == Some(name))
            {
                return Err(DirectoryError::Settings(format!(
                    "the group `{name}` chosen for synchronisation does not exist in the directory"
                )));
            }
        }
        let mut wanted = Vec::new();
        for g in listed {
            let Some(name) = g.display_name.clone().filter(|n| !n.trim().is_empty()) else {
                warnings.push(format!("group {}: no displayName; left out", g.id));
                continue;
            };
            if chosen.is_empty() || chosen.contains(&name.to_lowercase()) {
                wanted.push((g, name));
            }
        }

        progress.set_phase("reading members");
        // All member reads are started, a few at a time get to send (a semaphore, not a
        // stream: its borrowed futures would make the run's future not `Send`).
        let permits = tokio::sync::Semaphore::new(MEMBER_CONCURRENCY);
        let reads: Vec<_> = wanted
            .iter()
            .map(|(g, _)| {
                let permits = &permits;
                async move {
                    let _permit = permits.acquire().await;
                    self.members(&g.id).await
                }
            })
            .collect();
        let read = futures_util::future::join_all(reads).await;
        let mut groups = Vec::new();
        for ((g, name), members) in wanted.iter().zip(read) {
            let Some(members) = members? else {
                warnings.push(format!(
                    "group {name}: deleted in Entra ID while it was being read; left out"
                ));
                continue;
            };
            progress.group_read();
            let (inside, outside): (Vec<String>, Vec<String>) =
                members.into_iter().partition(|id| known(id));
            if !outside.is_empty() {
                warnings.push(format!(
                    "group {name}: {} member user(s) are not synchronised (disabled, guests, without a mailbox, or created after the users were read)",
                    outside.len()
                ));
            }
            groups.push(SourceGroup {
                external_id: g.id.clone(),
                name: name.clone(),
                description: g.description.clone().unwrap_or_default(),
                members: inside,
            });
        }
        Ok(groups)
    }
}

impl Directory for EntraDirectory {
    async fn test_connection(&self) -> Result<ConnectionReport, DirectoryError> {
        let started = Instant::now();
        self.access_token().await?;
        let users: Page<DirectoryObject> = self
            .get(
                &self.graph(&format!("/v1.0/users?$select=id&$top={PAGE}")),
                false,
            )
            .await
            .map_err(failed)?;
        let groups: Page<DirectoryObject> = self
            .get(
                &self.graph(&format!("/v1.0/groups?$select=id&$top={PAGE}")),
                false,
            )
            .await
            .map_err(failed)?;
        Ok(ConnectionReport {
            checked: "token issued; users and groups readable through Microsoft Graph",
            counted: "on the first page (up to 999)",
            bound_as: format!(
                "application {} in tenant {}",
                self.settings.client_id, self.settings.tenant_id
            ),
            users_matched: users.value.len(),
            groups_matched: groups.value.len(),
            elapsed: started.elapsed(),
        })
    }

    async fn list_groups(&self, search: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let search = search.trim();
        let found = self
            .read_groups((!search.is_empty()).then_some(search))
            .await?;
        let needle = search.to_lowercase();
        let mut groups: Vec<DirectoryGroup> = found
            .into_iter()
            .filter_map(|g| {
                let name = g.display_name?;
                // Graph's $search matches words; the picker promises a substring.
                name.to_lowercase()
                    .contains(&needle)
                    .then(|| DirectoryGroup {
                        id: g.id,
                        name,
                        description: g.description.unwrap_or_default(),
                    })
            })
            .collect();
        groups.sort_by_key(|g| g.name.to_lowercase());
        Ok(groups)
    }

    async fn snapshot(&self, progress: &Progress) -> Result<Snapshot, DirectoryError> {
        progress.set_phase("connecting");
        self.access_token().await?;
        let mut warnings = Vec::new();
        progress.set_phase("reading users");
        let all_users = self.read_users(&mut warnings, progress).await?;
        progress.set_phase("reading groups");
        let known: HashMap<&str, usize> = all_users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.external_id.as_str(), i))
            .collect();
        let chosen: HashSet<String> = self
            .settings
            .groups_to_sync
            .iter()
            .map(|g| g.to_lowercase())
            .collect();
        let groups = self
            .groups_of(
                &chosen,
                &|id| known.contains_key(id),
                &mut warnings,
                progress,
            )
            .await?;
        let in_chosen = (!chosen.is_empty()).then(|| {
            groups
                .iter()
                .flat_map(|g| g.members.iter())
                .filter_map(|id| known.get(id.as_str()).copied())
                .collect()
        });
        // "Enabled users only": disabled accounts are read all the same, so that a user
        // disabled in Entra ID is disabled here too (and signed out).
        Ok(Snapshot::narrowed(
            all_users,
            groups,
            warnings,
            in_chosen,
            self.settings.enabled_users_only,
        ))
    }

    async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError> {
        let name: String = url::form_urlencoded::byte_serialize(username.trim().as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let url = self.graph(&format!("/v1.0/users/{name}?$select={USER_FIELDS}"));
        match self.get::<GraphUser>(&url, false).await {
            Ok(mut u) => {
                let upn = u.user_principal_name.take().unwrap_or_default();
                let enabled = u.account_enabled.unwrap_or(false);
                Ok(Some(u.into_source(upn, enabled)))
            }
            Err(Failure::NotFound(_)) => Ok(None),
            Err(other) => Err(failed(other)),
        }
    }

    async fn authenticate(
        &self,
        _account: &super::Account<'_>,
        _password: &SecretString,
    ) -> Result<PasswordCheck, DirectoryError> {
        Ok(PasswordCheck::Refused {
            reason: "Entra ID users sign in with Microsoft, not with a password".into(),
        })
    }
}

/// The addresses of a user: the primary (`SMTP:`) first, then `mail`, then the other
/// `smtp:` proxy addresses, each once.
fn emails(mail: Option<&str>, proxies: &[String]) -> Vec<String> {
    let smtp = |p: &String, primary: bool| {
        let (prefix, rest) = p.split_at_checked(5)?;
        let wanted = if primary {
            prefix == "SMTP:"
        } else {
            prefix.eq_ignore_ascii_case("smtp:") && prefix != "SMTP:"
        };
        wanted.then(|| rest.trim().to_owned())
    };
    let primary = proxies.iter().filter_map(|p| smtp(p, true));
    let others = proxies.iter().filter_map(|p| smtp(p, false));
    let mut seen = HashSet::new();
    primary
        .chain(mail.map(|m| m.trim().to_owned()))
        .chain(others)
        .filter(|a| !a.is_empty() && seen.insert(a.to_lowercase()))
        .collect()
}
