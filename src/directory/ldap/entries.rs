//! Reading entries: users and groups mapped from their attributes, stable ids, ranged
//! `member` reads (Active Directory), and Active Directory's GUID forms.

use std::collections::HashMap;

use ldap3::{Ldap, Scope, SearchEntry, ldap_escape};

use super::members::{ReadGroup, ReadUser, ReadUsers};
use super::{Flavour, LdapDirectory, RANGE_WINDOW, dn};
use crate::directory::{DirectoryError, Progress, SourceGroup, SourceUser};

impl LdapDirectory {
    /// The attribute that identifies an entry for good: renames and moves keep it.
    pub(super) fn id_attribute(&self) -> &str {
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
    pub(super) fn member_match_attribute(&self) -> Option<String> {
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
    pub(super) async fn read_users(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        warnings: &mut Vec<String>,
        progress: &Progress,
    ) -> Result<ReadUsers, DirectoryError> {
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
            attrs.extend([
                "userAccountControl".into(),
                "proxyAddresses".into(),
                "userPrincipalName".into(),
            ]);
        }
        attrs.extend(match_attr.clone());
        attrs.retain(|a| !a.is_empty());
        let mut users = ReadUsers::default();
        self.paged_search(ldap, filter, attrs, |entry| {
            progress.user_read();
            match self.source_user(&entry, id_attr) {
                Ok(user) => {
                    let match_values = match_attr
                        .as_deref()
                        .map(|a| all(&entry, a))
                        .unwrap_or_default();
                    users.push(ReadUser {
                        dn: normalized_dn(&entry.dn),
                        match_values,
                        user,
                    });
                }
                Err(warning) => warnings.push(warning),
            }
        })
        .await?;
        Ok(users)
    }

    /// An entry as a user, or why it is left out.
    pub(super) fn source_user(
        &self,
        entry: &SearchEntry,
        id_attr: &str,
    ) -> Result<SourceUser, String> {
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
        // Held for the whole run: a pushed-to vector keeps room for four addresses (72 bytes
        // a user more than one needs; 70 MB at a million users).
        emails.shrink_to_fit();
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
            sign_in_name: match flavour {
                Flavour::ActiveDirectory => first(entry, "userPrincipalName").unwrap_or_default(),
                Flavour::GenericLdap => String::new(),
            },
        })
    }

    /// Groups with their raw member values (DNs or names), large `member` attributes read
    /// range by range.
    pub(super) async fn read_groups(
        &self,
        ldap: &mut Ldap,
        warnings: &mut Vec<String>,
        progress: &Progress,
    ) -> Result<Vec<ReadGroup>, DirectoryError> {
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
            groups.push(ReadGroup {
                dn: normalized_dn(&entry.dn),
                group: SourceGroup {
                    external_id,
                    name: first(&entry, &s.group_name_attribute)
                        .unwrap_or_else(|| entry.dn.clone()),
                    description: first(&entry, &s.group_description_attribute).unwrap_or_default(),
                    members: Vec::new(),
                },
                values,
            });
        })
        .await?;
        for (index, dn, mut start) in unfinished {
            loop {
                let request = format!("{members};range={start}-{}", start + RANGE_WINDOW - 1);
                let ldap3::SearchResult(entries, result) = self
                    .bounded(ldap.search(&dn, Scope::Base, "(objectClass=*)", vec![request]))
                    .await?;
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
                groups[index].values.extend(values);
                match next {
                    Some(n) => start = n,
                    None => break,
                }
            }
        }
        Ok(groups)
    }
}

/// An entry's DN as the member index keys it; the server's own DNs always parse, and one
/// that does not is kept lower-cased (it then matches only the same spelling).
fn normalized_dn(entry_dn: &str) -> String {
    dn::normalize(entry_dn).unwrap_or_else(|_| entry_dn.to_lowercase())
}

/// A stable id as an RFC 4515 filter value: text escaped; objectGUID as its 16 bytes, each
/// `\\xx` (the text form is mixed-endian).
pub(super) fn id_filter_value(
    flavour: Flavour,
    external_id: &str,
) -> Result<String, DirectoryError> {
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
