//! MailStore's "Application Integration" (PROTOCOLS.md): one URL taking a form `cmd`, with
//! HTTP Basic when the server requires it. `list` is documented (a JSON array of users,
//! sent as `text/json`); the password check (`auth`) and the groups (`groups`) are not, so
//! their command names are settings. Nothing is retried (these are POSTs, and nothing says
//! they are idempotent); only a clear yes to a password is a yes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::rest::{Dialect, Rest, RetryBudget, excerpt};
use super::{
    Account, ConnectionReport, Directory, DirectoryError, DirectoryGroup, PasswordCheck, Progress,
    Snapshot, SourceGroup, SourceUser,
};

/// The command names a server answers to.
#[derive(Clone, Debug)]
pub struct Commands {
    pub list: String,
    pub auth: String,
    pub groups: String,
}

#[derive(Clone)]
pub struct AppIntegrationSettings {
    pub url: String,
    /// HTTP Basic user name and password, when the server requires authentication.
    pub basic: Option<(String, SecretString)>,
    pub commands: Commands,
    /// Group names to synchronise (case-insensitive); empty = all users.
    pub groups_to_sync: Vec<String>,
    pub timeout: Duration,
}

pub struct AppIntegrationDirectory {
    settings: AppIntegrationSettings,
    rest: Rest,
}

const DIALECT: Dialect = Dialect {
    service: "the Application Integration server",
    throttled: |_, _| false,
    describe: http_error,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedUser {
    user_name: Option<String>,
    distinguished_name: Option<String>,
    full_name: Option<String>,
    #[serde(default)]
    email_addresses: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedGroup {
    group_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    // `null` as well as `[]` for none.
    #[serde(default)]
    members: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct AuthAnswer {
    success: Option<bool>,
}

impl AppIntegrationDirectory {
    pub fn new(
        settings: AppIntegrationSettings,
        tls: Arc<ClientConfig>,
    ) -> Result<Self, DirectoryError> {
        let rest = Rest::new(
            tls,
            settings.timeout,
            &settings.url,
            DIALECT,
            RetryBudget::default(),
        )?;
        Ok(AppIntegrationDirectory { settings, rest })
    }

    /// One command, as a form; the status and the whole body.
    async fn call(
        &self,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, Vec<u8>), DirectoryError> {
        self.rest
            .send(|| {
                let request = self.rest.client.post(&self.settings.url).form(form);
                match &self.settings.basic {
                    Some((user, password)) => {
                        request.basic_auth(user, Some(password.expose_secret()))
                    }
                    None => request,
                }
            })
            .await
    }

    /// Every user the server lists (stable id: the DN when there is one, else the name),
    /// and warnings for entries left out.
    async fn list(&self) -> Result<(Vec<SourceUser>, Vec<String>), DirectoryError> {
        let (status, body) = self.call(&[("cmd", &self.settings.commands.list)]).await?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(DirectoryError::InvalidCredentials {
                detail: http_error(status, &body),
                sub_code: None,
            });
        }
        if !status.is_success() {
            return Err(DirectoryError::Protocol {
                detail: http_error(status, &body),
            });
        }
        let listed: Vec<ListedUser> =
            serde_json::from_slice(&body).map_err(|e| DirectoryError::Incomplete {
                detail: format!(
                    "the user list is not a JSON array of users ({e}): {}",
                    excerpt(&body)
                ),
            })?;
        let mut users = Vec::new();
        let mut warnings = Vec::new();
        let mut seen = HashSet::new();
        for (i, u) in listed.into_iter().enumerate() {
            let Some(name) = u.user_name.filter(|n| !n.trim().is_empty()) else {
                warnings.push(format!("entry {}: no userName; left out", i + 1));
                continue;
            };
            let name = name.trim().to_owned();
            // DNs compare after RFC 4514 normalisation (`CN=Ann` and `cn=ann` are one
            // user); a name compares case-insensitively.
            let external_id = match u.distinguished_name.as_deref().map(str::trim) {
                Some(dn) if !dn.is_empty() => match super::ldap::dn::normalize(dn) {
                    Ok(normal) => normal,
                    Err(_) => {
                        warnings.push(format!("{name}: the distinguishedName `{dn}` is not a valid DN; the user name identifies them"));
                        name.to_lowercase()
                    }
                },
                _ => name.to_lowercase(),
            };
            if !seen.insert(external_id.clone()) {
                warnings.push(format!("{name}: listed twice; the first one is kept"));
                continue;
            }
            let mut addresses = HashSet::new();
            let emails = u
                .email_addresses
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty() && addresses.insert(a.to_lowercase()))
                .collect();
            users.push(SourceUser {
                external_id,
                username: name,
                full_name: u.full_name.unwrap_or_default().trim().to_owned(),
                emails,
                disabled: false,
                sign_in_name: String::new(),
            });
        }
        Ok((users, warnings))
    }

    /// The server's groups, or `None` when it does not know the command (the groups
    /// command is optional).
    async fn groups(&self) -> Result<Option<Vec<ListedGroup>>, DirectoryError> {
        let (status, body) = self
            .call(&[("cmd", &self.settings.commands.groups)])
            .await?;
        match status.as_u16() {
            200..=299 => {
                serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| DirectoryError::Incomplete {
                        detail: format!(
                            "the group list is not a JSON array of groups ({e}): {}",
                            excerpt(&body)
                        ),
                    })
            }
            // How a server says it has no such command. A bare 400 or 404 may be a
            // passing fault (a proxy, a busy script): read as "no groups", it would delete
            // every synchronised group, so only an answer that says so counts.
            501 => Ok(None),
            400 | 404 | 405 if says_unknown_command(&body) => Ok(None),
            _ => Err(DirectoryError::Protocol {
                detail: http_error(status, &body),
            }),
        }
    }
}

impl Directory for AppIntegrationDirectory {
    async fn test_connection(&self) -> Result<ConnectionReport, DirectoryError> {
        let started = Instant::now();
        let (users, _) = self.list().await?;
        let groups = self.groups().await?;
        Ok(ConnectionReport {
            checked: if groups.is_some() {
                "the user list was read; the server offers groups"
            } else {
                "the user list was read; the server offers no groups (its answer to the groups command: unknown)"
            },
            counted: "listed by the server",
            bound_as: match &self.settings.basic {
                Some((user, _)) => format!("{user} (HTTP Basic)"),
                None => "no authentication".into(),
            },
            users_matched: users.len(),
            groups_matched: groups.map_or(0, |g| g.len()),
            elapsed: started.elapsed(),
        })
    }

    async fn list_groups(&self, search: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let Some(groups) = self.groups().await? else {
            return Err(DirectoryError::Protocol {
                detail: format!(
                    "the server offers no groups (it does not know the command `{}`)",
                    self.settings.commands.groups
                ),
            });
        };
        let needle = search.trim().to_lowercase();
        let mut found: Vec<DirectoryGroup> = groups
            .into_iter()
            .filter_map(|g| {
                let name = g.group_name?.trim().to_owned();
                (!name.is_empty() && name.to_lowercase().contains(&needle)).then(|| {
                    DirectoryGroup {
                        id: name.clone(),
                        name,
                        description: g.description.unwrap_or_default(),
                    }
                })
            })
            .collect();
        found.sort_by_key(|g| g.name.to_lowercase());
        Ok(found)
    }

    async fn snapshot(&self, progress: &Progress) -> Result<Snapshot, DirectoryError> {
        progress.set_phase("reading users");
        let (all_users, mut warnings) = self.list().await?;
        for _ in &all_users {
            progress.user_read();
        }
        progress.set_phase("reading groups");
        let chosen: HashSet<String> = self
            .settings
            .groups_to_sync
            .iter()
            .map(|g| g.trim().to_lowercase())
            .collect();
        let listed = match self.groups().await? {
            Some(groups) => groups,
            None if chosen.is_empty() => {
                warnings.push("the server offers no groups: only users are synchronised".into());
                Vec::new()
            }
            None => {
                return Err(DirectoryError::Settings(
                    "groups are chosen for synchronisation, but the server offers no groups".into(),
                ));
            }
        };
        let by_name: HashMap<String, usize> = all_users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.username.to_lowercase(), i))
            .collect();
        let mut in_chosen = HashSet::new();
        let mut groups = Vec::new();
        let mut found = HashSet::new();
        for g in listed {
            let Some(name) = g.group_name.map(|n| n.trim().to_owned()) else {
                warnings.push("a group without groupName; left out".into());
                continue;
            };
            if name.is_empty() || !found.insert(name.to_lowercase()) {
                continue;
            }
            if !chosen.is_empty() && !chosen.contains(&name.to_lowercase()) {
                continue;
            }
            progress.group_read();
            let mut members = Vec::new();
            let mut unknown = 0usize;
            for member in g.members.iter().flatten() {
                match by_name.get(&member.trim().to_lowercase()) {
                    Some(&i) => {
                        in_chosen.insert(i);
                        members.push(all_users[i].external_id.clone());
                    }
                    None => unknown += 1,
                }
            }
            if unknown > 0 {
                warnings.push(format!(
                    "group {name}: {unknown} member(s) are not users the server listed"
                ));
            }
            members.sort();
            members.dedup();
            groups.push(SourceGroup {
                external_id: name.clone(),
                name,
                description: g.description.unwrap_or_default(),
                members,
            });
        }
        if let Some(missing) = chosen.iter().find(|c| !found.contains(*c)) {
            return Err(DirectoryError::Settings(format!(
                "the group `{missing}` chosen for synchronisation does not exist on the server"
            )));
        }
        let in_chosen = (!chosen.is_empty()).then_some(in_chosen);
        let mut snapshot = Snapshot::narrowed(all_users, groups, warnings, in_chosen, false);
        // Passwords are checked here, not at an OpenID provider.
        snapshot.sign_in_domains = None;
        Ok(snapshot)
    }

    async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError> {
        let (users, _) = self.list().await?;
        Ok(super::one_named(users.iter(), username)?.cloned())
    }

    async fn authenticate(
        &self,
        account: &Account<'_>,
        password: &SecretString,
    ) -> Result<PasswordCheck, DirectoryError> {
        if crate::auth::password::is_blank(password.expose_secret()) {
            return Ok(PasswordCheck::Refused {
                reason: "empty password".into(),
            });
        }
        let c = &self.settings.commands;
        let (status, body) = self
            .call(&[
                ("cmd", c.auth.as_str()),
                ("user", account.name),
                ("password", password.expose_secret()),
            ])
            .await?;
        let answer = serde_json::from_slice::<AuthAnswer>(&body).ok();
        match (status.as_u16(), answer.and_then(|a| a.success)) {
            (200, Some(true)) => Ok(PasswordCheck::Accepted),
            (200, Some(false)) | (401 | 403, _) => Ok(PasswordCheck::Refused {
                reason: format!("the server refused the password ({})", status.as_u16()),
            }),
            // Anything else is no answer to the question: fail closed, say why — without
            // the body, which may echo the password.
            _ => Err(DirectoryError::Protocol {
                detail: format!(
                    "the server could not check the password (HTTP {}, not a yes or no)",
                    status.as_u16()
                ),
            }),
        }
    }
}

/// Whether an error body says the command is not known ("Unknown command 'groups'.",
/// "unsupported command", "invalid cmd").
fn says_unknown_command(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_lowercase();
    [
        "unknown",
        "unsupported",
        "not supported",
        "invalid",
        "not implemented",
    ]
    .iter()
    .any(|w| text.contains(w))
        && ["command", "cmd", "action"]
            .iter()
            .any(|w| text.contains(w))
}

/// `HTTP 500: the first line of the body`.
fn http_error(status: reqwest::StatusCode, body: &[u8]) -> String {
    let text = excerpt(body);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    format!("HTTP {}: {first}", status.as_u16())
}
