//! Google Workspace through the Admin SDK Directory API (PROTOCOLS.md, "Google Workspace"):
//! a service account with domain-wide delegation acts as the profile's admin user; users
//! and groups are read page by page to the end, members with `includeDerivedMembership`
//! so that nested groups count. Throttling is retried within a budget per run; any other
//! error, a page that does not parse, a cut-off answer or a stall fails the whole read, so
//! a run never applies half a directory. Workspace users sign in with Google
//! (`auth::oidc`), so `authenticate` refuses.

mod http;
mod objects;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::rest::{Failure, failed};
use super::rest::{Rest, RetryBudget};
use super::{
    ConnectionReport, Directory, DirectoryError, DirectoryGroup, PasswordCheck, Progress, Snapshot,
    SourceGroup, SourceUser,
};
pub use http::{GRANT_TYPE, assertion};
use objects::{GoogleGroup, GoogleUser, GroupsPage, MembersPage, Unusable, UsersPage};

pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_API_URL: &str = "https://admin.googleapis.com";
pub const DEFAULT_ISSUER: &str = "https://accounts.google.com";
/// Google's hosts for each advanced setting: the service account's token and the
/// directory's data go nowhere else (or to this machine, for tests).
pub const TOKEN_HOSTS: &[&str] = &[
    "oauth2.googleapis.com",
    "www.googleapis.com",
    "accounts.google.com",
];
pub const API_HOSTS: &[&str] = &["admin.googleapis.com", "www.googleapis.com"];
pub const ISSUER_HOSTS: &[&str] = &["accounts.google.com"];
/// Where Google's discovery document puts the OpenID endpoints (token, keys, user info).
pub const OIDC_ENDPOINT_HOSTS: &[&str] = &[
    "accounts.google.com",
    "oauth2.googleapis.com",
    "www.googleapis.com",
    "openidconnect.googleapis.com",
];

/// Read-only access to users, groups and memberships: what domain-wide delegation must
/// allow, and all Roster asks for.
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// Google's largest pages; only the fields Roster uses (`kind` proves each page is the
/// list asked for).
const USERS: &str = "/admin/directory/v1/users?customer=my_customer&maxResults=500&projection=basic&fields=kind,nextPageToken,users(id,primaryEmail,name/fullName,suspended,archived,aliases,nonEditableAliases)";
const GROUPS: &str = "/admin/directory/v1/groups?customer=my_customer&maxResults=200&fields=kind,nextPageToken,groups(id,email,name,description)";
/// Test connection reads one small page of each.
const FEW_USERS: &str =
    "/admin/directory/v1/users?customer=my_customer&maxResults=100&fields=kind,users(id)";
const FEW_GROUPS: &str =
    "/admin/directory/v1/groups?customer=my_customer&maxResults=100&fields=kind,groups(id)";
/// Member lists of this many groups are read at once: enough to hide the round trips,
/// few enough to stay clear of the Directory API's per-user rate limit.
pub const MEMBER_CONCURRENCY: usize = 8;

/// The parts of the JSON key file the connector signs with.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub client_id: String,
    pub private_key_id: String,
    pub private_key_pem: SecretString,
}

impl ServiceAccountKey {
    /// Reads the stored key file (checked when it was imported; unknown fields ignored).
    pub fn from_json(json: &SecretString) -> Result<ServiceAccountKey, DirectoryError> {
        #[derive(Deserialize)]
        struct File {
            client_email: String,
            #[serde(default)]
            client_id: String,
            #[serde(default)]
            private_key_id: String,
            private_key: String,
        }
        let file: File = serde_json::from_str(json.expose_secret()).map_err(|_| {
            DirectoryError::Settings(
                "no readable service-account key is stored: import the JSON key file".into(),
            )
        })?;
        Ok(ServiceAccountKey {
            client_email: file.client_email,
            client_id: file.client_id,
            private_key_id: file.private_key_id,
            private_key_pem: SecretString::from(file.private_key),
        })
    }
}

#[derive(Clone)]
pub struct GoogleSettings {
    /// The Workspace administrator the service account acts as.
    pub admin_user: String,
    pub key: ServiceAccountKey,
    /// `https://oauth2.googleapis.com/token`, or a local server in tests.
    pub token_url: String,
    /// `https://admin.googleapis.com`, or a local server in tests.
    pub api_url: String,
    /// Group names (or addresses) to synchronise, case-insensitive; empty = all groups.
    pub groups_to_sync: Vec<String>,
    pub timeout: Duration,
    pub retry: RetryBudget,
}

pub struct GoogleDirectory {
    settings: GoogleSettings,
    rest: Rest,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl GoogleDirectory {
    pub fn new(settings: GoogleSettings, tls: Arc<ClientConfig>) -> Result<Self, DirectoryError> {
        let rest = Rest::new(
            tls,
            settings.timeout,
            &settings.api_url,
            http::DIRECTORY_API,
            settings.retry,
        )?;
        Ok(GoogleDirectory {
            settings,
            rest,
            token: tokio::sync::Mutex::new(None),
        })
    }

    fn api(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.settings.api_url.trim_end_matches('/')
        )
    }

    async fn read_users(
        &self,
        warnings: &mut Vec<String>,
        progress: &Progress,
    ) -> Result<Vec<SourceUser>, DirectoryError> {
        let mut users = Vec::new();
        let mut no_status = Vec::new();
        self.all(&self.api(USERS), |page: UsersPage| {
            for u in page.users {
                progress.user_read();
                match u.into_source() {
                    Ok(user) => users.push(user),
                    Err((Unusable::NoStatus, id)) => no_status.push(id),
                    Err((Unusable::NoEmail, id)) => {
                        warnings.push(format!("user {id}: no primaryEmail; left out"))
                    }
                }
            }
        })
        .await
        .map_err(failed)?;
        if let Some(id) = no_status.first() {
            return Err(DirectoryError::Incomplete {
                detail: format!(
                    "Google sent {} user(s) without `suspended` (the first: {id})",
                    no_status.len()
                ),
            });
        }
        Ok(users)
    }

    async fn read_groups(&self) -> Result<Vec<GoogleGroup>, DirectoryError> {
        let mut groups = Vec::new();
        self.all(&self.api(GROUPS), |page: GroupsPage| {
            groups.extend(page.groups)
        })
        .await
        .map_err(failed)?;
        Ok(groups)
    }

    /// A group's members, nested groups' users included, or `None` when Google says the
    /// group no longer exists.
    async fn members(&self, group_id: &str) -> Result<Option<Members>, DirectoryError> {
        let id: String = url::form_urlencoded::byte_serialize(group_id.as_bytes()).collect();
        let first = self.api(&format!(
            "/admin/directory/v1/groups/{id}/members?includeDerivedMembership=true&maxResults=200&fields=kind,nextPageToken,members(id,type)"
        ));
        let mut members = Members::default();
        let read = self
            .all(&first, |page: MembersPage| {
                for m in page.members {
                    match m.kind.as_str() {
                        "USER" if !m.id.is_empty() => members.users.push(m.id),
                        // Nested groups are listed too; their users come as well.
                        "GROUP" => {}
                        // "Everyone in the organisation", which Google does not expand.
                        "CUSTOMER" => members.everyone = true,
                        _ => members.other += 1,
                    }
                }
            })
            .await;
        match read {
            Ok(()) => Ok(Some(members)),
            Err(Failure::NotFound(_)) => Ok(None),
            Err(other) => Err(failed(other)),
        }
    }
}

/// A group's members as Google lists them.
#[derive(Default)]
struct Members {
    users: Vec<String>,
    /// Members of no type Roster knows, or without an id: counted, not dropped unseen.
    other: usize,
    everyone: bool,
}

impl Directory for GoogleDirectory {
    async fn test_connection(&self) -> Result<ConnectionReport, DirectoryError> {
        let started = Instant::now();
        self.access_token().await?;
        let users: UsersPage = self.get(&self.api(FEW_USERS)).await.map_err(failed)?;
        let groups: GroupsPage = self.get(&self.api(FEW_GROUPS)).await.map_err(failed)?;
        let domain = self
            .settings
            .admin_user
            .rsplit_once('@')
            .map(|(_, d)| d.to_owned())
            .unwrap_or_default();
        Ok(ConnectionReport {
            checked: "token issued; users and groups readable through the Directory API",
            counted: "on the first page (up to 100)",
            bound_as: format!(
                "service account {} acting as {} in {domain}",
                self.settings.key.client_email, self.settings.admin_user
            ),
            users_matched: users.users.len(),
            groups_matched: groups.groups.len(),
            elapsed: started.elapsed(),
        })
    }

    async fn list_groups(&self, search: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let needle = search.trim().to_lowercase();
        let mut groups: Vec<DirectoryGroup> = self
            .read_groups()
            .await?
            .into_iter()
            .filter(|g| {
                g.shown_name().to_lowercase().contains(&needle)
                    || g.email.to_lowercase().contains(&needle)
            })
            .map(|g| DirectoryGroup {
                name: g.shown_name().to_owned(),
                id: g.id,
                description: g.description,
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
        let listed = self.read_groups().await?;
        let chosen: HashSet<String> = self
            .settings
            .groups_to_sync
            .iter()
            .map(|g| g.trim().to_lowercase())
            .collect();
        let is_chosen = |g: &GoogleGroup| {
            chosen.contains(&g.shown_name().to_lowercase())
                || chosen.contains(&g.email.trim().to_lowercase())
        };
        for name in &chosen {
            let found = listed.iter().any(|g| {
                g.shown_name().to_lowercase() == *name || g.email.trim().to_lowercase() == *name
            });
            if !found {
                return Err(DirectoryError::Settings(format!(
                    "the group `{name}` chosen for synchronisation does not exist in the directory"
                )));
            }
        }
        let wanted: Vec<GoogleGroup> = listed
            .into_iter()
            .filter(|g| chosen.is_empty() || is_chosen(g))
            .collect();

        progress.set_phase("reading members");
        let permits = tokio::sync::Semaphore::new(MEMBER_CONCURRENCY);
        let reads: Vec<_> = wanted
            .iter()
            .map(|g| {
                let permits = &permits;
                async move {
                    let _permit = permits.acquire().await;
                    self.members(&g.id).await
                }
            })
            .collect();
        // The first failure ends the read: the rest would be thrown away.
        let read = futures_util::future::try_join_all(reads).await?;
        let known: HashMap<&str, usize> = all_users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.external_id.as_str(), i))
            .collect();
        let mut in_chosen = HashSet::new();
        let mut groups = Vec::new();
        for (g, members) in wanted.iter().zip(read) {
            let name = g.shown_name().to_owned();
            let Some(members) = members else {
                warnings.push(format!(
                    "group {name}: deleted in Google Workspace while it was being read; left out"
                ));
                continue;
            };
            progress.group_read();
            let mut seen = HashSet::new();
            if members.everyone {
                warnings.push(format!(
                    "group {name}: has everyone in the organisation as a member, which Google does not list; only its other members are synchronised"
                ));
            }
            if members.other > 0 {
                warnings.push(format!(
                    "group {name}: {} member(s) are not users and are left out",
                    members.other
                ));
            }
            let (inside, outside): (Vec<String>, Vec<String>) = members
                .users
                .into_iter()
                .filter(|id| seen.insert(id.clone()))
                .partition(|id| known.contains_key(id.as_str()));
            if !outside.is_empty() {
                warnings.push(format!(
                    "group {name}: {} member user(s) are not synchronised (created after the users were read, or outside this Workspace)",
                    outside.len()
                ));
            }
            in_chosen.extend(
                inside
                    .iter()
                    .filter_map(|id| known.get(id.as_str()).copied()),
            );
            groups.push(SourceGroup {
                external_id: g.id.clone(),
                name,
                description: g.description.clone(),
                members: inside,
            });
        }
        let in_chosen = (!chosen.is_empty()).then_some(in_chosen);
        Ok(Snapshot::narrowed(
            all_users, groups, warnings, in_chosen, false,
        ))
    }

    async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError> {
        let key: String = url::form_urlencoded::byte_serialize(username.trim().as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let url = self.api(&format!(
            "/admin/directory/v1/users/{key}?projection=basic&fields=id,primaryEmail,name/fullName,suspended,archived,aliases,nonEditableAliases"
        ));
        match self.get::<GoogleUser>(&url).await {
            Ok(u) => u
                .into_source()
                .map(Some)
                .map_err(|(_, id)| DirectoryError::Incomplete {
                    detail: format!("Google sent user {id} without primaryEmail or suspended"),
                }),
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
            reason: "Google Workspace users sign in with Google, not with a password".into(),
        })
    }
}
