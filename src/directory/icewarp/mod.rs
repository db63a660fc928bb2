//! IceWarp Server through its administration API (PROTOCOLS.md, "IceWarp API"): XML over
//! HTTPS to `/icewarpapi/`, one session per read (`authenticate` as the admin, its `sid`
//! on every call, `logout` at the end — also when the read fails), domains and then each
//! domain's accounts paged by offset and count up to `overallcount`, group and mailing-list
//! members. Users are accounts of type 0; groups (7) and mailing lists (1) are groups; a
//! state other than 0 is a disabled user. An error answer, a missing `overallcount`, a
//! short page or XML that does not parse fail the whole read. A user's password is checked
//! by signing in as them (and out again at once). Nothing is retried.

mod paging;
mod session;
mod xml;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};

use super::rest::{Dialect, Rest, RetryBudget, excerpt};
use super::{
    Account, ConnectionReport, Directory, DirectoryError, DirectoryGroup, PasswordCheck, Progress,
    Snapshot, SourceGroup, SourceUser,
};
use session::Session;
use xml::{AccountItem, Answer, Domain, MemberItem, Param};

const USER: u32 = 0;
const MAILING_LIST: u32 = 1;
const GROUP: u32 = 7;

#[derive(Clone)]
pub struct IceWarpSettings {
    /// `host[:port]`; Roster talks HTTPS to it.
    pub server: String,
    pub admin_user: String,
    pub password: SecretString,
    /// Domain names and group or mailing-list addresses; empty = everything.
    pub groups_to_sync: Vec<String>,
    pub timeout: Duration,
}

pub struct IceWarpDirectory {
    settings: IceWarpSettings,
    url: String,
    rest: Rest,
}

const DIALECT: Dialect = Dialect {
    service: "IceWarp",
    throttled: |_, _| false,
    describe: |status, body| {
        format!(
            "HTTP {}: {}",
            status.as_u16(),
            xml::without_sid(&excerpt(body))
        )
    },
};

/// Everything read in one session.
struct Read {
    domains: Vec<String>,
    accounts: Vec<(String, AccountItem)>,
}

impl IceWarpDirectory {
    pub fn new(settings: IceWarpSettings, tls: Arc<ClientConfig>) -> Result<Self, DirectoryError> {
        let url = format!("https://{}/icewarpapi/", settings.server.trim());
        let rest = Rest::new(tls, settings.timeout, &url, DIALECT, RetryBudget::default())?;
        Ok(IceWarpDirectory {
            settings,
            url,
            rest,
        })
    }

    /// One command; its `<result>` as an `R`, or IceWarp's error uid.
    async fn call<R: serde::de::DeserializeOwned>(
        &self,
        sid: Option<&str>,
        command: &str,
        params: &[Param<'_>],
    ) -> Result<Answer<R>, DirectoryError> {
        xml::answer(&self.call_raw(sid, command, params).await?)
    }

    /// One command; the answer's body.
    async fn call_raw(
        &self,
        sid: Option<&str>,
        command: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<u8>, DirectoryError> {
        let body = xml::request(sid, command, params)?;
        let (status, answer) = self
            .rest
            .send(|| {
                self.rest
                    .client
                    .post(&self.url)
                    .header(reqwest::header::CONTENT_TYPE, "text/xml")
                    .body(body.clone())
            })
            .await?;
        if !status.is_success() {
            return Err(DirectoryError::Protocol {
                detail: (DIALECT.describe)(status, &answer),
            });
        }
        Ok(answer)
    }

    /// A session for `email` (logged out when dropped), or why IceWarp refused it.
    async fn sign_in(
        &self,
        email: &str,
        password: &SecretString,
    ) -> Result<Result<Session, String>, DirectoryError> {
        let params = [
            Param::Text("authtype", "0"),
            Param::Text("email", email),
            Param::Text("password", password.expose_secret()),
            Param::Text("digest", ""),
            Param::Text("persistentlogin", "0"),
        ];
        let body = match self.call_raw(None, "authenticate", &params).await {
            Ok(body) => body,
            Err(DirectoryError::Timeout {
                server, timeout, ..
            }) => {
                return Err(DirectoryError::Timeout {
                    server,
                    timeout,
                    hint: "; IceWarp delays a refused sign-in by several seconds, so a timeout shorter than that reads as no answer",
                });
            }
            Err(e) => return Err(e),
        };
        // Whatever the rest says, a session that came back is closed again.
        let session = xml::sid_of(&body)
            .filter(|s| !s.is_empty())
            .map(|sid| self.session(sid));
        match (xml::answer::<String>(&body)?, session) {
            (Answer::Result { result, .. }, Some(session)) if result.trim() == "1" => {
                Ok(Ok(session))
            }
            (Answer::Result { result, .. }, None) if result.trim() == "1" => {
                Err(DirectoryError::Protocol {
                    detail: "IceWarp signed in but sent no session id".into(),
                })
            }
            (Answer::Result { result, .. }, _) => {
                Ok(Err(format!("authenticate answered {}", result.trim())))
            }
            (Answer::Error(uid), _) => Ok(Err(uid)),
        }
    }

    fn session(&self, sid: String) -> Session {
        Session {
            sid,
            client: self.rest.client.clone(),
            url: self.url.clone(),
            open: true,
        }
    }

    /// Runs `work` in an admin session, and signs out whatever `work` did (or when the
    /// run is cancelled and `work` is dropped).
    async fn admin_session<T>(
        &self,
        work: impl AsyncFnOnce(&str) -> Result<T, DirectoryError>,
    ) -> Result<T, DirectoryError> {
        let session = match self
            .sign_in(&self.settings.admin_user, &self.settings.password)
            .await?
        {
            Ok(session) => session,
            Err(uid) => {
                return Err(DirectoryError::InvalidCredentials {
                    detail: format!("IceWarp refused the admin sign-in ({uid})"),
                    sub_code: None,
                });
            }
        };
        let done = work(&session.sid).await;
        session.close().await;
        done
    }

    /// The domains, and every account of each.
    async fn read(&self, sid: &str, progress: &Progress) -> Result<Read, DirectoryError> {
        let filter = || Param::Nested("filter", vec![("namemask", ""), ("typemask", "")]);
        let domains: Vec<Domain> = self.all(sid, "getdomainsinfolist", &[filter()]).await?;
        let domains: Vec<String> = domains.into_iter().map(|d| d.name).collect();
        let mut accounts = Vec::new();
        for domain in &domains {
            let found: Vec<AccountItem> = self
                .all(
                    sid,
                    "getaccountsinfolist",
                    &[Param::Text("domainstr", domain), filter()],
                )
                .await?;
            for a in found {
                if a.accounttype == USER {
                    // Without a state a disabled account could come in enabled.
                    if a.accountstate.is_none() {
                        return Err(DirectoryError::Incomplete {
                            detail: format!(
                                "IceWarp sent the account {} without its state",
                                a.email
                            ),
                        });
                    }
                    progress.user_read();
                }
                if a.email.trim().is_empty() {
                    continue;
                }
                accounts.push((domain.clone(), a));
            }
        }
        Ok(Read { domains, accounts })
    }

    async fn members(&self, sid: &str, group: &str) -> Result<Vec<String>, DirectoryError> {
        let found: Vec<MemberItem> = self
            .all(
                sid,
                "getaccountmemberinfolist",
                &[
                    Param::Text("who", group),
                    Param::Nested("filter", vec![("namemask", "")]),
                ],
            )
            .await?;
        Ok(found
            .into_iter()
            .map(|m| m.val.trim().to_lowercase())
            .collect())
    }
}

/// A user account as Roster keeps it (the address is its id: IceWarp has no other).
fn source_user(domain: &str, a: &AccountItem) -> SourceUser {
    let email = a.email.trim().to_owned();
    let mut seen = HashSet::new();
    let emails = std::iter::once(email.clone())
        .chain(
            a.aliases
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|alias| {
                    if alias.contains('@') {
                        alias.to_owned()
                    } else {
                        format!("{alias}@{domain}")
                    }
                }),
        )
        .filter(|e| seen.insert(e.to_lowercase()))
        .collect();
    SourceUser {
        external_id: email.to_lowercase(),
        username: email,
        full_name: a.name.trim().to_owned(),
        emails,
        disabled: a.accountstate.as_ref().is_some_and(|s| s.state != 0),
        sign_in_name: String::new(),
    }
}

impl Directory for IceWarpDirectory {
    async fn test_connection(&self) -> Result<ConnectionReport, DirectoryError> {
        let started = Instant::now();
        let read = self
            .admin_session(async |sid| self.read(sid, &Progress::default()).await)
            .await?;
        let users = read
            .accounts
            .iter()
            .filter(|(_, a)| a.accounttype == USER)
            .count();
        let groups = read
            .accounts
            .iter()
            .filter(|(_, a)| matches!(a.accounttype, GROUP | MAILING_LIST))
            .count();
        Ok(ConnectionReport {
            checked: "signed in as the admin; domains and accounts read",
            counted: "in all domains (groups: groups and mailing lists)",
            bound_as: format!(
                "{} ({} domain(s))",
                self.settings.admin_user,
                read.domains.len()
            ),
            users_matched: users,
            groups_matched: groups,
            elapsed: started.elapsed(),
        })
    }

    async fn list_groups(&self, search: &str) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let read = self
            .admin_session(async |sid| self.read(sid, &Progress::default()).await)
            .await?;
        let needle = search.trim().to_lowercase();
        let domains = read.domains.iter().map(|d| DirectoryGroup {
            id: d.clone(),
            name: d.clone(),
            description: "domain".into(),
        });
        let groups = read
            .accounts
            .iter()
            .filter(|(_, a)| matches!(a.accounttype, GROUP | MAILING_LIST))
            .map(|(_, a)| DirectoryGroup {
                id: a.email.to_lowercase(),
                name: a.email.to_lowercase(),
                description: format!(
                    "{}{}",
                    if a.accounttype == GROUP {
                        "group"
                    } else {
                        "mailing list"
                    },
                    if a.name.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", a.name)
                    }
                ),
            });
        let mut found: Vec<DirectoryGroup> = domains
            .chain(groups)
            .filter(|g| {
                g.name.to_lowercase().contains(&needle)
                    || g.description.to_lowercase().contains(&needle)
            })
            .collect();
        found.sort_by_key(|g| g.name.to_lowercase());
        Ok(found)
    }

    async fn snapshot(&self, progress: &Progress) -> Result<Snapshot, DirectoryError> {
        progress.set_phase("connecting");
        self.admin_session(async |sid| {
            progress.set_phase("reading users");
            let read = self.read(sid, progress).await?;
            let chosen: HashSet<String> = self
                .settings
                .groups_to_sync
                .iter()
                .map(|g| g.trim().to_lowercase())
                .collect();
            let domains: HashSet<String> = read.domains.iter().map(|d| d.to_lowercase()).collect();
            let group_accounts: Vec<&AccountItem> = read
                .accounts
                .iter()
                .filter(|(_, a)| matches!(a.accounttype, GROUP | MAILING_LIST))
                .map(|(_, a)| a)
                .collect();
            let group_addresses: HashSet<String> =
                group_accounts.iter().map(|a| a.email.to_lowercase()).collect();
            if let Some(missing) = chosen
                .iter()
                .find(|c| !domains.contains(*c) && !group_addresses.contains(*c))
            {
                return Err(DirectoryError::Settings(format!(
                    "`{missing}`, chosen for synchronisation, is neither a domain nor a group or mailing list on the server"
                )));
            }
            // A chosen domain holds the accounts its listing returned (whatever their
            // addresses' domain: an alias domain's accounts list under their own).
            let mut all_users = Vec::new();
            let mut in_chosen: HashSet<usize> = HashSet::new();
            for (domain, a) in read.accounts.iter().filter(|(_, a)| a.accounttype == USER) {
                if chosen.contains(&domain.to_lowercase()) {
                    in_chosen.insert(all_users.len());
                }
                all_users.push(source_user(domain, a));
            }
            let index: HashMap<String, usize> = all_users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.external_id.clone(), i))
                .collect();
            progress.set_phase("reading members");
            let mut warnings = Vec::new();
            let mut groups = Vec::new();
            for (domain, a) in read.accounts.iter().filter(|(_, a)| matches!(a.accounttype, GROUP | MAILING_LIST)) {
                let address = a.email.to_lowercase();
                let wanted = chosen.is_empty()
                    || chosen.contains(&address)
                    || chosen.contains(&domain.to_lowercase());
                if !wanted {
                    continue;
                }
                let members = self.members(sid, &a.email).await?;
                progress.group_read();
                let mut inside = Vec::new();
                let mut outside = 0usize;
                for m in members {
                    match index.get(&m) {
                        Some(&i) => {
                            if chosen.contains(&address) {
                                in_chosen.insert(i);
                            }
                            inside.push(all_users[i].external_id.clone());
                        }
                        None => outside += 1,
                    }
                }
                if outside > 0 {
                    warnings.push(format!(
                        "{address}: {outside} member(s) are not users of the server (other groups, lists or outside addresses)"
                    ));
                }
                inside.sort();
                inside.dedup();
                groups.push(SourceGroup {
                    external_id: address.clone(),
                    name: address,
                    description: a.name.trim().to_owned(),
                    members: inside,
                });
            }
            let in_chosen = (!chosen.is_empty()).then_some(in_chosen);
            let mut snapshot = Snapshot::narrowed(all_users, groups, warnings, in_chosen, false);
            // Passwords are checked here, not at an OpenID provider.
            snapshot.sign_in_domains = None;
            Ok(snapshot)
        })
        .await
    }

    async fn find_user(&self, username: &str) -> Result<Option<SourceUser>, DirectoryError> {
        let read = self
            .admin_session(async |sid| self.read(sid, &Progress::default()).await)
            .await?;
        let users: Vec<SourceUser> = read
            .accounts
            .iter()
            .filter(|(_, a)| a.accounttype == USER)
            .map(|(domain, a)| source_user(domain, a))
            .collect();
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
        match self.sign_in(account.name, password).await? {
            Ok(session) => {
                session.close().await;
                Ok(PasswordCheck::Accepted)
            }
            Err(why)
                if why.starts_with("auth_")
                    || why.starts_with("account_")
                    || why == "authenticate answered 0" =>
            {
                Ok(PasswordCheck::Refused {
                    reason: format!("IceWarp refused the sign-in ({why})"),
                })
            }
            Err(why) => Err(DirectoryError::Protocol {
                detail: format!("IceWarp could not check the password ({why})"),
            }),
        }
    }
}
