//! From raw `member` values to the users of each group: DNs compared after RFC 4514
//! normalisation (or values matched against an attribute, for `memberUid`-style groups),
//! nested groups expanded in memory (cycles safe), the chosen groups' scope applied, and
//! every value that resolves to no user in scope counted for the run — never dropped
//! silently.

use std::collections::{HashMap, HashSet};

use super::dn;
use crate::directory::{Chunked, SourceGroup, SourceUser};

/// A user entry as read: its normalised DN, the values members are matched by, the user.
pub struct ReadUser {
    pub dn: String,
    pub match_values: Vec<String>,
    pub user: SourceUser,
}

/// The user entries of a read.
pub type ReadUsers = Chunked<ReadUser>;

/// A group entry as read, with its raw member values.
pub struct ReadGroup {
    pub dn: String,
    pub group: SourceGroup,
    pub values: Vec<String>,
}

/// How member values name their members.
pub enum Matching {
    /// Member values are DNs.
    Dn { nested: bool },
    /// Member values are compared (case-insensitively) with an attribute of the users.
    Attribute,
}

pub struct Resolved {
    pub users: Chunked<SourceUser>,
    pub groups: Vec<SourceGroup>,
    pub warnings: Vec<String>,
    /// "N of M users are in the chosen groups", when groups are chosen.
    pub scope: Option<String>,
}

/// Example values a warning names before it says "and N more".
const EXAMPLES: usize = 3;

/// Resolves every group's members and applies `chosen` (lower-cased group names; empty =
/// all groups, all users).
pub fn resolve(
    users: ReadUsers,
    groups: Vec<ReadGroup>,
    matching: &Matching,
    chosen: &[String],
) -> Resolved {
    let mut warnings = Vec::new();
    // The users move out of their entries chunk by chunk, and their DNs (or match values)
    // into the index: nothing else needs those.
    let total = users.len();
    let mut user_index: HashMap<String, usize> = HashMap::with_capacity(total);
    let mut out_users: Chunked<SourceUser> = Chunked::default();
    for (i, read) in users.into_iter().enumerate() {
        match matching {
            Matching::Dn { .. } => {
                user_index.insert(read.dn, i);
            }
            Matching::Attribute => {
                for v in &read.match_values {
                    user_index.insert(v.trim().to_lowercase(), i);
                }
            }
        }
        out_users.push(read.user);
    }
    let group_index: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.dn.as_str(), i))
        .collect();

    // Each group's direct members (user indexes) and direct subgroups (group indexes).
    let mut direct: Vec<(Vec<usize>, Vec<usize>)> = Vec::with_capacity(groups.len());
    for read in &groups {
        let (mut members, mut subgroups, mut unresolved) = (Vec::new(), Vec::new(), Vec::new());
        let mut nested_ignored = 0usize;
        for value in &read.values {
            let key = match matching {
                Matching::Dn { .. } => match dn::normalize(value) {
                    Ok(key) => key,
                    Err(_) => {
                        unresolved.push(value.as_str());
                        continue;
                    }
                },
                Matching::Attribute => value.trim().to_lowercase(),
            };
            if let Some(&user) = user_index.get(&key) {
                members.push(user);
            } else if let Some(&group) = group_index.get(key.as_str()) {
                match matching {
                    Matching::Dn { nested: true } => subgroups.push(group),
                    _ => nested_ignored += 1,
                }
            } else {
                unresolved.push(value.as_str());
            }
        }
        let name = &read.group.name;
        if !unresolved.is_empty() {
            let mut examples: Vec<String> = unresolved
                .iter()
                .take(EXAMPLES)
                .map(|v| v.to_string())
                .collect();
            if unresolved.len() > EXAMPLES {
                examples.push(format!("and {} more", unresolved.len() - EXAMPLES));
            }
            warnings.push(format!(
                "group {name}: {} member value(s) match no user in scope (not a synchronised user, outside the base DN or the user filter): {}",
                unresolved.len(),
                examples.join("; ")
            ));
        }
        if nested_ignored > 0 {
            warnings.push(format!(
                "group {name}: {nested_ignored} member(s) are groups, whose members are not included (turn on \"Include members of nested groups\")"
            ));
        }
        direct.push((members, subgroups));
    }
    // The members are indexes now: the DNs go before their ids are copied into the groups.
    drop(group_index);
    drop(user_index);
    crate::release_freed_memory();

    let expanded: Vec<Vec<usize>> = (0..groups.len())
        .map(|g| transitive_members(&direct, g))
        .collect();

    let mut in_chosen: HashSet<usize> = HashSet::new();
    let mut out_groups = Vec::new();
    for (read, members) in groups.into_iter().zip(expanded) {
        let picked = chosen.is_empty() || chosen.contains(&read.group.name.to_lowercase());
        if !picked {
            continue;
        }
        in_chosen.extend(members.iter().copied());
        let mut group = read.group;
        group.members = members
            .iter()
            .map(|&u| out_users[u].external_id.clone())
            .collect();
        out_groups.push(group);
    }
    if !chosen.is_empty() {
        out_users = out_users
            .into_iter()
            .enumerate()
            .filter(|(i, _)| in_chosen.contains(i))
            .map(|(_, u)| u)
            .collect();
    }
    let scope = (!chosen.is_empty()).then(|| {
        format!(
            "{} of {total} users are in the chosen groups; only they are synchronised",
            out_users.len()
        )
    });
    Resolved {
        users: out_users,
        groups: out_groups,
        warnings,
        scope,
    }
}

/// A group's users, its subgroups' users included (each subgroup once: cycles end).
fn transitive_members(direct: &[(Vec<usize>, Vec<usize>)], start: usize) -> Vec<usize> {
    let mut seen_groups = HashSet::from([start]);
    let mut stack = vec![start];
    let mut seen_users = HashSet::new();
    let mut members = Vec::new();
    while let Some(g) = stack.pop() {
        for &u in &direct[g].0 {
            if seen_users.insert(u) {
                members.push(u);
            }
        }
        for &sub in &direct[g].1 {
            if seen_groups.insert(sub) {
                stack.push(sub);
            }
        }
    }
    members
}
