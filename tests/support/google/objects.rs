//! The Workspace directory the fake serves — users (and deleted users), groups, their
//! members — with the indexes that let 100,000 users page without copying, the member walk
//! of `includeDerivedMembership`, and each resource written as the Directory API writes it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use super::fields::Obj;
use super::{DirectoryGroup, DirectoryUser, GroupMember, jose};

/// Users are all created at the same time: nothing in the fake depends on when.
const CREATION_TIME: &str = "2024-01-15T09:30:00.000Z";
/// What Google reports for a user who never signed in.
const NEVER: &str = "1970-01-01T00:00:00.000Z";

/// One entry of a listing, by index into the directory of its generation.
#[derive(Clone, Debug)]
pub enum Row {
    User(usize),
    Deleted(usize),
    Group(usize),
    Member(&'static str, Who),
}

#[derive(Clone, Debug)]
pub enum Who {
    User(usize),
    Group(usize),
    Customer,
    External(String),
}

pub struct Directory {
    pub domain: String,
    pub customer_id: String,
    pub users: Vec<DirectoryUser>,
    /// Deleted users with when they were deleted.
    pub deleted: Vec<(DirectoryUser, u64)>,
    pub groups: Vec<DirectoryGroup>,
    user_ids: HashMap<String, usize>,
    /// Lower-case primary emails and aliases.
    user_emails: HashMap<String, usize>,
    group_ids: HashMap<String, usize>,
    group_emails: HashMap<String, usize>,
    /// Bumped by every change; listings are cached per generation.
    pub generation: u64,
    listings: HashMap<String, Arc<Vec<Row>>>,
}

impl Directory {
    pub fn new() -> Directory {
        Directory {
            domain: "example.com".into(),
            customer_id: "C03az79cb".into(),
            users: Vec::new(),
            deleted: Vec::new(),
            groups: Vec::new(),
            user_ids: HashMap::new(),
            user_emails: HashMap::new(),
            group_ids: HashMap::new(),
            group_emails: HashMap::new(),
            generation: 0,
            listings: HashMap::new(),
        }
    }

    fn changed(&mut self) {
        self.generation += 1;
        self.listings.clear();
    }

    fn reindex_users(&mut self) {
        self.user_ids.clear();
        self.user_emails.clear();
        for (i, user) in self.users.iter().enumerate() {
            self.user_ids.insert(user.id.clone(), i);
            for email in addresses(user) {
                self.user_emails.insert(email.to_lowercase(), i);
            }
        }
        self.changed();
    }

    fn reindex_groups(&mut self) {
        self.group_ids.clear();
        self.group_emails.clear();
        for (i, group) in self.groups.iter().enumerate() {
            self.group_ids.insert(group.id.clone(), i);
            self.group_emails.insert(group.email.to_lowercase(), i);
        }
        self.changed();
    }

    pub fn set_users(&mut self, users: Vec<DirectoryUser>) {
        self.users = users;
        self.reindex_users();
    }

    pub fn upsert_user(&mut self, user: DirectoryUser) {
        match self.user_ids.get(&user.id) {
            Some(&i) => self.users[i] = user,
            None => self.users.push(user),
        }
        self.reindex_users();
    }

    pub fn remove_user(&mut self, id: &str) -> bool {
        let Some(&i) = self.user_ids.get(id) else {
            return false;
        };
        let user = self.users.remove(i);
        self.deleted.push((user, jose::now()));
        self.reindex_users();
        true
    }

    pub fn set_groups(&mut self, groups: Vec<DirectoryGroup>) {
        self.groups = groups;
        self.reindex_groups();
    }

    pub fn upsert_group(&mut self, group: DirectoryGroup) {
        match self.group_ids.get(&group.id) {
            Some(&i) => self.groups[i] = group,
            None => self.groups.push(group),
        }
        self.reindex_groups();
    }

    pub fn remove_group(&mut self, id: &str) -> bool {
        let Some(&i) = self.group_ids.get(id) else {
            return false;
        };
        self.groups.remove(i);
        self.reindex_groups();
        true
    }

    pub fn user_by_id(&self, id: &str) -> Option<&DirectoryUser> {
        self.user_ids.get(id).map(|&i| &self.users[i])
    }

    /// A `userKey`: the id, or the primary email or an alias in any case.
    pub fn find_user(&self, key: &str) -> Option<usize> {
        let by_id = self.user_ids.get(key);
        by_id
            .or_else(|| self.user_emails.get(&key.to_lowercase()))
            .copied()
    }

    /// A `groupKey`: the id or the email in any case.
    pub fn find_group(&self, key: &str) -> Option<usize> {
        let by_id = self.group_ids.get(key);
        by_id
            .or_else(|| self.group_emails.get(&key.to_lowercase()))
            .copied()
    }

    /// The primary domain and every domain a user's or group's address is in.
    pub fn knows_domain(&self, domain: &str) -> bool {
        let domain = domain.to_lowercase();
        let in_domain = |email: &str| domain_of(email).eq_ignore_ascii_case(&domain);
        domain == self.domain
            || self.users.iter().any(|u| in_domain(&u.primary_email))
            || self.groups.iter().any(|g| in_domain(&g.email))
    }

    /// A listing computed once per generation and query, shared by the pages that read it.
    pub fn listing(
        &mut self,
        binding: &str,
        compute: impl FnOnce(&Directory) -> Vec<Row>,
    ) -> Arc<Vec<Row>> {
        if let Some(rows) = self.listings.get(binding) {
            return rows.clone();
        }
        let rows = Arc::new(compute(self));
        self.listings.insert(binding.to_owned(), rows.clone());
        rows
    }

    /// A group's members, each once in breadth-first order; with `derived`, nested groups
    /// are listed and expanded too, cycles included. Members that no longer exist are left
    /// out, as Google drops a deleted user from every group.
    pub fn members_of(&self, root: usize, derived: bool) -> Vec<Row> {
        let mut users: HashSet<usize> = HashSet::new();
        let mut listed_groups: HashSet<usize> = HashSet::new();
        let mut expanded: HashSet<usize> = HashSet::from([root]);
        let mut others: HashSet<&GroupMember> = HashSet::new();
        let mut queue = VecDeque::from([root]);
        let mut rows = Vec::new();
        while let Some(group) = queue.pop_front() {
            for member in &self.groups[group].members {
                let (role, user) = match member {
                    GroupMember::User(id) => ("MEMBER", Some(id)),
                    GroupMember::Owner(id) => ("OWNER", Some(id)),
                    GroupMember::Manager(id) => ("MANAGER", Some(id)),
                    _ => ("MEMBER", None),
                };
                if let Some(id) = user {
                    if let Some(&i) = self.user_ids.get(id)
                        && users.insert(i)
                    {
                        rows.push(Row::Member(role, Who::User(i)));
                    }
                    continue;
                }
                match member {
                    GroupMember::Group(id) => {
                        let Some(&i) = self.group_ids.get(id) else {
                            continue;
                        };
                        if i != root && listed_groups.insert(i) {
                            rows.push(Row::Member(role, Who::Group(i)));
                        }
                        if derived && expanded.insert(i) {
                            queue.push_back(i);
                        }
                    }
                    GroupMember::Customer if others.insert(member) => {
                        rows.push(Row::Member(role, Who::Customer));
                    }
                    GroupMember::External(email) if others.insert(member) => {
                        rows.push(Row::Member(role, Who::External(email.clone())));
                    }
                    _ => {}
                }
            }
        }
        rows
    }

    fn exists(&self, member: &GroupMember) -> bool {
        match member {
            GroupMember::User(id) | GroupMember::Owner(id) | GroupMember::Manager(id) => {
                self.user_ids.contains_key(id)
            }
            GroupMember::Group(id) => self.group_ids.contains_key(id),
            GroupMember::Customer | GroupMember::External(_) => true,
        }
    }

    // ---- resources as the Directory API writes them ----

    /// `deleted_at`: when a deleted user was deleted.
    pub fn write_user<'s>(
        &self,
        o: &mut Obj<'_, 's>,
        user: &'s DirectoryUser,
        deleted_at: Option<u64>,
        full: bool,
    ) {
        o.shadowed_by(&user.extra);
        o.str("kind", "admin#directory#user");
        o.str("id", &user.id);
        o.str("etag", &user_etag(user));
        o.str("primaryEmail", &user.primary_email);
        o.obj("name", |n| {
            n.str("givenName", &user.given_name);
            n.str("familyName", &user.family_name);
            n.str("fullName", &user.full_name);
        });
        o.bool("isAdmin", user.is_admin);
        o.bool("isDelegatedAdmin", false);
        o.str("lastLoginTime", NEVER);
        o.str("creationTime", CREATION_TIME);
        if let Some(at) = deleted_at {
            o.str("deletionTime", &jose::google_time(at));
        }
        o.bool("agreedToTerms", true);
        o.bool("suspended", user.suspended);
        if user.suspended {
            o.str("suspensionReason", "ADMIN");
        }
        o.bool("archived", user.archived);
        o.bool("changePasswordAtNextLogin", false);
        o.bool("ipWhitelisted", false);
        o.list("emails", addresses(user).enumerate(), |e, (i, address)| {
            e.str("address", address);
            if i == 0 {
                e.bool("primary", true);
            }
        });
        if !user.aliases.is_empty() {
            o.strs("aliases", &user.aliases);
        }
        if !user.non_editable_aliases.is_empty() {
            o.strs("nonEditableAliases", &user.non_editable_aliases);
        }
        o.str("customerId", &self.customer_id);
        o.str("orgUnitPath", &user.org_unit_path);
        o.bool("isMailboxSetup", true);
        o.bool("isEnrolledIn2Sv", false);
        o.bool("isEnforcedIn2Sv", false);
        o.bool("includeInGlobalAddressList", true);
        // Custom schemas come only with projection=full (or custom).
        o.extras(if full { &[] } else { &["customSchemas"] });
    }

    pub fn write_group(&self, o: &mut Obj, group: &DirectoryGroup) {
        o.str("kind", "admin#directory#group");
        o.str("id", &group.id);
        // Members that still exist (a deleted user leaves every group), as an int64, which
        // Google's JSON writes as a string.
        let count = group.members.iter().filter(|m| self.exists(m)).count();
        let count = count.to_string();
        let parts = [
            &group.id,
            &group.email,
            &group.name,
            &group.description,
            &count,
        ];
        o.str("etag", &etag(&parts.map(String::as_str)));
        o.str("email", &group.email);
        o.str("name", &group.name);
        o.str("directMembersCount", &count);
        o.str("description", &group.description);
        o.bool("adminCreated", true);
        if let Some((local, domain)) = group.email.split_once('@') {
            o.strs(
                "nonEditableAliases",
                &[format!("{local}@{domain}.test-google-a.com")],
            );
        }
    }

    pub fn write_member(&self, o: &mut Obj, role: &str, who: &Who) {
        o.str("kind", "admin#directory#member");
        let (id, email, kind) = match who {
            Who::User(i) => {
                let user = &self.users[*i];
                (user.id.clone(), Some(user.primary_email.as_str()), "USER")
            }
            Who::Group(i) => {
                let group = &self.groups[*i];
                (group.id.clone(), Some(group.email.as_str()), "GROUP")
            }
            Who::Customer => (self.customer_id.clone(), None, "CUSTOMER"),
            Who::External(email) => (external_id(email), Some(email.as_str()), "EXTERNAL"),
        };
        o.str("etag", &etag(&[&id, role]));
        o.str("id", &id);
        if let Some(email) = email {
            o.str("email", email);
        }
        o.str("role", role);
        o.str("type", kind);
        if !matches!(who, Who::Customer) {
            o.str("status", "ACTIVE");
        }
    }
}

/// The primary email, then aliases and non-editable aliases: the user's `emails`.
fn addresses(user: &DirectoryUser) -> impl Iterator<Item = &String> {
    std::iter::once(&user.primary_email)
        .chain(&user.aliases)
        .chain(&user.non_editable_aliases)
}

fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

fn hash(parts: &[&str]) -> u64 {
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    hasher.finish()
}

/// Changes whenever a property the fake writes does.
fn user_etag(user: &DirectoryUser) -> String {
    let flags = format!(
        "{}{}{}{}",
        user.suspended,
        user.archived,
        user.is_admin,
        user.extra.len()
    );
    let mut parts = vec![
        user.id.as_str(),
        &user.primary_email,
        &user.given_name,
        &user.family_name,
        &user.full_name,
        &user.org_unit_path,
        &flags,
    ];
    parts.extend(user.aliases.iter().map(String::as_str));
    etag(&parts)
}

/// Quoted, as Google's etags are: `"\"…/…\""`.
pub fn etag(parts: &[&str]) -> String {
    let a = hash(parts);
    let b = hash(&[&a.to_string()]);
    format!(
        "\"{}/{}\"",
        jose::b64(&a.to_be_bytes()),
        jose::b64(&b.to_be_bytes())
    )
}

/// A stable 21-digit id for an outside address.
fn external_id(email: &str) -> String {
    format!("1{:020}", hash(&[&email.to_lowercase()]))
}

/// The i-th 21-digit user id: distinct for every i (an odd multiplier is a bijection on u64)
/// and as unordered as Google's.
pub fn generated_user_id(i: usize) -> String {
    format!("1{:020}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The j-th group id, 15 characters like `03rdcrjn1abcdef`: `0` and 14 base-36 digits of
/// a bijection of j.
pub fn generated_group_id(j: usize) -> String {
    let mut n = (j as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let mut digits = [b'0'; 14];
    for slot in digits.iter_mut().rev() {
        *slot = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    format!("0{}", String::from_utf8_lossy(&digits))
}

/// `generate`'s directory: the first user is an administrator, so a benchmark has someone
/// to impersonate.
pub fn generate(
    domain: &str,
    users: usize,
    groups: usize,
    per_group: usize,
) -> (Vec<DirectoryUser>, Vec<DirectoryGroup>) {
    let generated: Vec<DirectoryUser> = (0..users)
        .map(|i| {
            let mut user = DirectoryUser::new(
                &generated_user_id(i),
                &format!("user{i}@{domain}"),
                &format!("User {i}"),
            );
            user.is_admin = i == 0;
            user
        })
        .collect();
    let generated_groups = (0..groups)
        .map(|j| {
            let members = (0..per_group.min(users))
                .map(|k| GroupMember::User(generated_user_id((j * per_group + k) % users)))
                .collect();
            let email = format!("group{j}@{domain}");
            DirectoryGroup::new(
                &generated_group_id(j),
                &email,
                &format!("Group {j}"),
                members,
            )
        })
        .collect();
    (generated, generated_groups)
}
