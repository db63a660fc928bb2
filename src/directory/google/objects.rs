//! What the Directory API sends, as Roster reads it: pages of users, groups and members,
//! and a Google user as a `SourceUser`.

use std::collections::HashSet;

use serde::Deserialize;

use crate::directory::SourceUser;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsersPage {
    /// Required: a page that is JSON but no list of Google's (`{}`, a proxy's answer)
    /// would otherwise read as the last, empty page.
    kind: String,
    // Google leaves the list out when it is empty.
    #[serde(default)]
    pub(super) users: Vec<GoogleUser>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GoogleUser {
    pub(super) id: String,
    primary_email: Option<String>,
    name: Option<UserName>,
    suspended: Option<bool>,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    aliases: Vec<String>,
    /// Addresses at the Workspace's domain aliases.
    #[serde(default)]
    non_editable_aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserName {
    full_name: Option<String>,
}

/// Why a user from Google cannot be kept.
pub(super) enum Unusable {
    /// Left out, with a warning.
    NoEmail,
    /// Without `suspended` a suspended account could come in enabled: the read fails
    /// rather than guess.
    NoStatus,
}

impl GoogleUser {
    /// The user as Roster keeps them.
    pub(super) fn into_source(self) -> Result<SourceUser, (Unusable, String)> {
        let Some(email) = self.primary_email.filter(|e| !e.trim().is_empty()) else {
            return Err((Unusable::NoEmail, self.id));
        };
        let Some(suspended) = self.suspended else {
            return Err((Unusable::NoStatus, self.id));
        };
        let mut seen = HashSet::new();
        let emails = std::iter::once(email.trim().to_owned())
            .chain(self.aliases.iter().map(|a| a.trim().to_owned()))
            .chain(
                self.non_editable_aliases
                    .iter()
                    .map(|a| a.trim().to_owned()),
            )
            .filter(|a| !a.is_empty() && seen.insert(a.to_lowercase()))
            .collect();
        Ok(SourceUser {
            external_id: self.id,
            username: email.trim().to_owned(),
            full_name: self.name.and_then(|n| n.full_name).unwrap_or_default(),
            emails,
            disabled: suspended || self.archived,
            sign_in_name: String::new(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GroupsPage {
    kind: String,
    #[serde(default)]
    pub(super) groups: Vec<GoogleGroup>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Clone)]
pub(super) struct GoogleGroup {
    pub(super) id: String,
    #[serde(default)]
    pub(super) email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    pub(super) description: String,
}

impl GoogleGroup {
    /// The group's name in Roster: its name, else its address.
    pub(super) fn shown_name(&self) -> &str {
        if self.name.trim().is_empty() {
            self.email.trim()
        } else {
            self.name.trim()
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MembersPage {
    kind: String,
    #[serde(default)]
    pub(super) members: Vec<Member>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Member {
    #[serde(default)]
    pub(super) id: String,
    /// `USER`, `GROUP`, `CUSTOMER` (everyone in the organisation), …
    #[serde(rename = "type", default)]
    pub(super) kind: String,
}

/// A page of one of Google's lists.
pub(super) trait Listing: serde::de::DeserializeOwned {
    /// What Google calls the list (`admin#directory#users`, …).
    const KIND: &'static str;
    fn kind(&self) -> &str;
    fn next_page_token(&mut self) -> Option<String>;
}

macro_rules! listing {
    ($page:ty, $kind:literal) => {
        impl Listing for $page {
            const KIND: &'static str = $kind;
            fn kind(&self) -> &str {
                &self.kind
            }
            fn next_page_token(&mut self) -> Option<String> {
                self.next_page_token.take()
            }
        }
    };
}

listing!(UsersPage, "admin#directory#users");
listing!(GroupsPage, "admin#directory#groups");
listing!(MembersPage, "admin#directory#members");
