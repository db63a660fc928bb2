//! The fake's domains and accounts. Both are kept sorted (domains by lower-cased name, each
//! domain's accounts by lower-cased address) in `BTreeMap`s, so a page is a walk over one
//! domain's accounts that clones only the items it writes, and an address finds its
//! account through its domain in two lookups — paging 100,000 accounts stays cheap.

use std::collections::BTreeMap;

use super::{Account, AccountKind};

pub struct Domain {
    /// As first given.
    pub name: String,
    pub description: String,
    /// Lower-cased address → account.
    pub accounts: BTreeMap<String, Account>,
}

#[derive(Default)]
pub struct Directory {
    /// Lower-cased name → domain.
    pub domains: BTreeMap<String, Domain>,
}

/// The lower-cased domain of an address (what follows the last `@`).
pub fn domain_of(email: &str) -> Option<String> {
    email
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_lowercase())
        .filter(|d| !d.is_empty())
}

impl Directory {
    pub fn add_domain(&mut self, name: &str) -> &mut Domain {
        self.domains
            .entry(name.to_lowercase())
            .or_insert_with(|| Domain {
                name: name.to_owned(),
                description: String::new(),
                accounts: BTreeMap::new(),
            })
    }

    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.get(&name.to_lowercase())
    }

    pub fn find(&self, email: &str) -> Option<&Account> {
        let domain = self.domains.get(&domain_of(email)?)?;
        domain.accounts.get(&email.to_lowercase())
    }

    pub fn find_mut(&mut self, email: &str) -> Option<&mut Account> {
        let domain = self.domains.get_mut(&domain_of(email)?)?;
        domain.accounts.get_mut(&email.to_lowercase())
    }

    /// Adds the account to its address's domain (made if missing), or replaces the one
    /// with the same address (in any case).
    pub fn upsert(&mut self, account: Account) {
        let domain = domain_of(&account.email)
            .unwrap_or_else(|| panic!("IceWarp fake: {:?} has no domain", account.email));
        let name = account.email.rsplit_once('@').map_or("", |(_, d)| d);
        let domain = self.domains.entry(domain).or_insert_with(|| Domain {
            name: name.to_owned(),
            description: String::new(),
            accounts: BTreeMap::new(),
        });
        domain
            .accounts
            .insert(account.email.to_lowercase(), account);
    }

    pub fn remove(&mut self, email: &str) -> Option<Account> {
        let domain = self.domains.get_mut(&domain_of(email)?)?;
        domain.accounts.remove(&email.to_lowercase())
    }

    /// Moves the account to its new address (and domain), and makes every group and list
    /// that named the old address name the new one: the fake keeps memberships consistent
    /// so a test that renames need not.
    pub fn rename(&mut self, old: &str, new: &str) -> bool {
        let Some(mut account) = self.remove(old) else {
            return false;
        };
        account.email = new.to_owned();
        self.upsert(account);
        for domain in self.domains.values_mut() {
            for other in domain.accounts.values_mut() {
                for member in &mut other.members {
                    if member.eq_ignore_ascii_case(old) {
                        *member = new.to_owned();
                    }
                }
            }
        }
        true
    }

    /// Replaces everything with `domains` domains of `users` users and `groups` groups
    /// each; group `g` holds `members` of its domain's users, round-robin from user
    /// `g * members`.
    pub fn generate(&mut self, domains: usize, users: usize, groups: usize, members: usize) {
        self.domains.clear();
        for d in 0..domains {
            let name = generated_domain(d);
            let mut accounts = BTreeMap::new();
            for u in 0..users {
                let email = generated_email(d, u);
                let account = Account::user(
                    &email,
                    &format!("User {u} of Domain {d}"),
                    GENERATED_PASSWORD,
                );
                accounts.insert(email, account);
            }
            for g in 0..groups {
                let email = generated_group(d, g);
                let list: Vec<String> = (0..members.min(users))
                    .map(|m| generated_email(d, (g * members + m) % users))
                    .collect();
                let mut group = Account::group(&email, &format!("Group {g} of Domain {d}"), &[]);
                group.members = list;
                accounts.insert(email, group);
            }
            let description = format!("Generated domain {d}");
            self.domains.insert(
                name.clone(),
                Domain {
                    name,
                    description,
                    accounts,
                },
            );
        }
    }
}

/// Every generated user's password.
pub const GENERATED_PASSWORD: &str = "generated-Passw0rd";

// Zero-padded, so that the fake's order (by address) is the order of the indexes.
pub fn generated_domain(d: usize) -> String {
    format!("d{d:03}.example.com")
}

pub fn generated_email(d: usize, u: usize) -> String {
    format!("user{u:06}@{}", generated_domain(d))
}

pub fn generated_group(d: usize, g: usize) -> String {
    format!("group{g:04}@{}", generated_domain(d))
}

impl AccountKind {
    /// `<accounttype>`: 0 user, 1 mailing list, 7 group, 8 resource.
    pub fn code(self) -> u32 {
        match self {
            AccountKind::User => 0,
            AccountKind::MailingList => 1,
            AccountKind::Group => 7,
            AccountKind::Resource => 8,
        }
    }

    /// Groups and mailing lists have members; `getaccountmemberinfolist` lists them.
    pub fn has_members(self) -> bool {
        matches!(self, AccountKind::Group | AccountKind::MailingList)
    }
}
