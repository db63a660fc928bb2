//! The diff between a directory snapshot and what Roster holds for the profile, keyed by
//! stable id: create / update (which fields) / delete / unchanged, for users, groups and
//! memberships. Whether the run is then held is the guard's call (`sync/guard.rs`); how
//! the plan is stored with its run and digested is in `plan/record.rs`; the memberships
//! part of the diff in `plan/memberships.rs`.
//!
//! Pure functions: no database, no directory. The plan is stored with its run (JSON) so a
//! dry run can be shown and a held run approved as it was planned.

mod memberships;
mod order;
mod record;

pub use record::STORED_CHANGES;

use std::collections::HashSet;
use std::sync::Arc;

// Fx hashing: the plan hashes every user several times; SipHash was most of its time at
// 100k users. Keys come from the admin's own directory, not from anonymous input.
use rustc_hash::{FxHashMap as HashMap, FxHashSet};

use serde::{Deserialize, Serialize};

use super::guard::guard;
use crate::db::models::change_cursors::ChangeCursor;
use crate::db::models::directory_groups::SyncedGroup;
use crate::db::models::users::{SyncedUser, username_key};
use crate::directory::names::local_part;
use crate::directory::{Snapshot, SourceUser};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UserChange {
    pub action: Action,
    pub external_id: String,
    /// The Roster user (updates and deletes).
    pub id: Option<i64>,
    pub username: String,
    /// Set when the user name changes (a rename keeps the user, its MFA and privileges).
    pub previous_username: Option<String>,
    /// Which fields an update changes: `user name`, `full name`, `e-mail addresses`, `status`.
    pub fields: Vec<String>,
    pub full_name: String,
    pub emails: Vec<String>,
    pub disabled: bool,
    /// Active Directory's userPrincipalName, also accepted at sign-in.
    #[serde(default)]
    pub sign_in_name: String,
    /// The name as the directory sent it (before "use only the local part").
    #[serde(default)]
    pub directory_name: String,
}

/// (group external id, user external id). A group's id is shared by its memberships: a
/// first sync of 10,000 groups × 100 members held a million copies (40 MB).
pub type Membership = (Arc<str>, String);

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupChange {
    pub action: Action,
    pub external_id: String,
    pub id: Option<i64>,
    pub name: String,
    pub previous_name: Option<String>,
    pub fields: Vec<String>,
    pub description: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub users: Vec<UserChange>,
    pub users_unchanged: usize,
    pub groups: Vec<GroupChange>,
    pub groups_unchanged: usize,
    /// (group external id, user external id)
    pub memberships_added: Vec<Membership>,
    pub memberships_removed: Vec<Membership>,
    /// Entries left out, with the reason.
    pub warnings: Vec<String>,
    /// How the chosen groups narrowed the users, when groups are chosen.
    #[serde(default)]
    pub scope: Option<String>,
    /// Why the run is held for an admin instead of applied.
    pub held: Option<String>,
    pub source_users: usize,
    pub existing_users: usize,
    /// SHA-256 over the changes: a held run is approved only if a fresh plan has the same.
    #[serde(default)]
    pub digest: String,
    /// The stored copy lists only the first `STORED_CHANGES` of each kind of change.
    #[serde(default)]
    pub truncated: bool,
    /// The OpenID domains the snapshot's users have (`Snapshot::sign_in_domains`).
    #[serde(default)]
    pub sign_in_domains: Option<Vec<String>>,
    /// Where the next run reads changes from (directories that report changes), kept
    /// when this plan is applied. Not stored: an approval plans afresh.
    #[serde(skip)]
    pub next_cursor: Option<ChangeCursor>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.users.iter().filter(|c| c.action == action).count()
    }
    pub fn group_count(&self, action: Action) -> usize {
        self.groups.iter().filter(|c| c.action == action).count()
    }
}

/// What the plan needs of the profile.
pub struct PlanOptions {
    pub use_local_part: bool,
    pub delete_users: bool,
    pub delete_groups: bool,
    pub threshold_count: i64,
    pub threshold_percent: i64,
}

pub struct Existing {
    pub users: Vec<SyncedUser>,
    pub groups: Vec<SyncedGroup>,
    /// (group id, user id)
    pub memberships: Vec<(i64, i64)>,
    /// Login keys in the profile's domain that belong to other users.
    pub names_taken: HashSet<String>,
}

/// What the plan does with one source user, decided while the snapshot is borrowed. The
/// user's own strings then move into its change instead of being copied: a 100,000-user
/// first sync held every name twice.
enum Decision {
    Create,
    /// Boxed: a first sync holds 100,000 creates, and few runs hold many updates.
    Update(Box<Update>),
}

struct Update {
    id: i64,
    previous_username: Option<String>,
    fields: Vec<String>,
}

impl Decision {
    fn into_change(self, username: String, source: SourceUser) -> UserChange {
        let (action, id, previous_username, fields) = match self {
            Decision::Create => (Action::Create, None, None, Vec::new()),
            Decision::Update(update) => {
                let Update {
                    id,
                    previous_username,
                    fields,
                } = *update;
                (Action::Update, Some(id), previous_username, fields)
            }
        };
        UserChange {
            action,
            external_id: source.external_id,
            id,
            username,
            previous_username,
            fields,
            full_name: source.full_name,
            emails: source.emails,
            disabled: source.disabled,
            sign_in_name: source.sign_in_name,
            directory_name: source.username,
        }
    }
}

/// The changes that make the database match `snapshot`, which the plan consumes: its
/// strings move into the changes.
pub fn plan(options: &PlanOptions, mut snapshot: Snapshot, existing: &Existing) -> Plan {
    let clock = std::time::Instant::now();
    let mut plan = Plan {
        warnings: std::mem::take(&mut snapshot.warnings),
        scope: snapshot.scope.take(),
        sign_in_domains: snapshot.sign_in_domains.take(),
        source_users: snapshot.users.len(),
        existing_users: existing.users.len(),
        ..Plan::default()
    };
    // Everything that borrows the snapshot ends with this block; what it returns is owned:
    // (index in `snapshot.users`, user name, decision), the deletions, the memberships to
    // add as (index in `snapshot.groups`, index in its members), those to remove.
    let (decided, deletes, added, removed) = diff(options, &snapshot, existing, &mut plan);
    // The diff's maps are gone; the changes come next.
    crate::release_freed_memory();
    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "plan: diff"
    );
    plan.users =
        order::changes_in_order(std::mem::take(&mut snapshot.users), decided, deletes.len());
    plan.users.extend(deletes);
    let mut shared: Option<(usize, Arc<str>)> = None;
    plan.memberships_added = added
        .into_iter()
        .map(|(g, m)| {
            let group = &mut snapshot.groups[g];
            // A group's memberships come one after another (sorted by group id).
            let id = match &shared {
                Some((at, id)) if *at == g => id.clone(),
                _ => {
                    let id: Arc<str> = Arc::from(group.external_id.as_str());
                    shared = Some((g, id.clone()));
                    id
                }
            };
            (id, std::mem::take(&mut group.members[m]))
        })
        .collect();
    plan.memberships_removed = removed;
    plan.held = guard(options, existing, &plan);
    // Only a held plan is compared later (at approval); hashing 100,000 changes costs 50 ms.
    if plan.held.is_some() {
        plan.digest = plan.compute_digest();
    }
    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "plan: digest"
    );
    plan
}

/// Users decided, users deleted, memberships added (by index), memberships removed.
type Diff = (
    Vec<(usize, String, Decision)>,
    Vec<UserChange>,
    Vec<(usize, usize)>,
    Vec<Membership>,
);

/// The diff, with group changes, counts and warnings written to `plan`.
fn diff(options: &PlanOptions, snapshot: &Snapshot, existing: &Existing, plan: &mut Plan) -> Diff {
    let clock = std::time::Instant::now();
    let mut decided = Vec::new();
    let mut deletes = Vec::new();
    let by_external: HashMap<&str, &SyncedUser> = existing
        .users
        .iter()
        .map(|u| (u.external_id.as_str(), u))
        .collect();

    // Users: names first (local part), then duplicates and names used by others —
    // including users of this profile that left the directory but are kept (delete off).
    // Each source id with where it is in the snapshot; whether it is accepted is kept by
    // that place (a set of a million ids each cost 34 MB).
    let source_ids: HashMap<&str, usize> = snapshot
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.external_id.as_str(), i))
        .collect();
    let mut accepted = vec![false; snapshot.users.len()];
    let is_accepted =
        |accepted: &[bool], id: &str| source_ids.get(id).is_some_and(|&i| accepted[i]);
    let kept_keys: FxHashSet<String> = if options.delete_users {
        FxHashSet::default()
    } else {
        existing
            .users
            .iter()
            .filter(|u| !source_ids.contains_key(u.external_id.as_str()))
            .map(|u| username_key(&u.username))
            .collect()
    };
    let mut seen_keys: FxHashSet<String> = FxHashSet::default();
    let mut sorted: Vec<usize> = (0..snapshot.users.len()).collect();
    sorted.sort_by(|&a, &b| {
        let (a, b) = (&snapshot.users[a], &snapshot.users[b]);
        a.username
            .cmp(&b.username)
            .then(a.external_id.cmp(&b.external_id))
    });
    decided.reserve_exact(sorted.len());
    for index in sorted {
        let source = &snapshot.users[index];
        let username = if options.use_local_part {
            match local_part(&source.username) {
                Ok(name) => name,
                Err(e) => {
                    plan.warnings
                        .push(format!("{}: {e}; left out", source.username));
                    continue;
                }
            }
        } else {
            source.username.trim().to_owned()
        };
        let key = username_key(&username);
        if seen_keys.contains(&key) {
            plan.warnings.push(format!(
                "{username}: another directory entry has the same user name; left out"
            ));
            continue;
        }
        let taken = existing.names_taken.contains(&key) || kept_keys.contains(&key);
        // A name taken elsewhere is still this entry's: a later one with it is a duplicate.
        seen_keys.insert(key);
        if taken {
            plan.warnings.push(format!(
                "{username}: the user name is already used by another user; left out"
            ));
            continue;
        }
        // An account disabled at the source that the profile does not bring in (Entra ID's
        // "enabled users only"): one already here is updated to disabled, no new one made.
        if source.disabled
            && snapshot.skip_new_disabled
            && !by_external.contains_key(source.external_id.as_str())
        {
            continue;
        }
        if let Some(&at) = source_ids.get(source.external_id.as_str()) {
            accepted[at] = true;
        }
        match by_external.get(source.external_id.as_str()) {
            None => decided.push((index, username, Decision::Create)),
            Some(current) => {
                let mut fields = Vec::new();
                if current.username != username {
                    fields.push("user name".to_owned());
                }
                if current.full_name != source.full_name {
                    fields.push("full name".to_owned());
                }
                if current.emails != source.emails {
                    fields.push("e-mail addresses".to_owned());
                }
                if current.directory_disabled != source.disabled {
                    fields.push("status".to_owned());
                }
                if current.sign_in_name_key != username_key(&source.sign_in_name) {
                    fields.push("sign-in name".to_owned());
                }
                // (Users synchronised before the name was kept get it with their next
                // change.)
                if !current.directory_name.is_empty() && current.directory_name != source.username {
                    fields.push("directory name".to_owned());
                }
                if fields.is_empty() {
                    plan.users_unchanged += 1;
                } else {
                    let previous_username =
                        (current.username != username).then(|| current.username.clone());
                    let decision = Decision::Update(Box::new(Update {
                        id: current.id,
                        previous_username,
                        fields,
                    }));
                    decided.push((index, username, decision));
                }
            }
        }
    }
    // The names are decided: a million of them are 66 MB the memberships need room for.
    drop(seen_keys);
    drop(kept_keys);
    crate::release_freed_memory();
    // A user that left the directory or the scope counts as removed. Entries still in the
    // source but left out (a warning says why) are kept as they are.
    for current in &existing.users {
        if source_ids.contains_key(current.external_id.as_str()) {
            if !is_accepted(&accepted, &current.external_id) {
                plan.users_unchanged += 1;
            }
            continue;
        }
        if options.delete_users {
            deletes.push(UserChange {
                action: Action::Delete,
                external_id: current.external_id.clone(),
                id: Some(current.id),
                username: current.username.clone(),
                previous_username: None,
                fields: Vec::new(),
                full_name: current.full_name.clone(),
                emails: current.emails.clone(),
                disabled: current.directory_disabled,
                sign_in_name: String::new(),
                directory_name: current.directory_name.clone(),
            });
        } else {
            plan.users_unchanged += 1;
        }
    }

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "plan: users"
    );
    // Groups.
    let groups_by_external: HashMap<&str, &SyncedGroup> = existing
        .groups
        .iter()
        .map(|g| (g.external_id.as_str(), g))
        .collect();
    let source_groups: FxHashSet<&str> = snapshot
        .groups
        .iter()
        .map(|g| g.external_id.as_str())
        .collect();
    for source in &snapshot.groups {
        match groups_by_external.get(source.external_id.as_str()) {
            None => plan.groups.push(GroupChange {
                action: Action::Create,
                external_id: source.external_id.clone(),
                id: None,
                name: source.name.clone(),
                previous_name: None,
                fields: Vec::new(),
                description: source.description.clone(),
            }),
            Some(current) => {
                let mut fields = Vec::new();
                if current.name != source.name {
                    fields.push("name".to_owned());
                }
                if current.description != source.description {
                    fields.push("description".to_owned());
                }
                if fields.is_empty() {
                    plan.groups_unchanged += 1;
                } else {
                    plan.groups.push(GroupChange {
                        action: Action::Update,
                        external_id: source.external_id.clone(),
                        id: Some(current.id),
                        previous_name: (current.name != source.name).then(|| current.name.clone()),
                        name: source.name.clone(),
                        fields,
                        description: source.description.clone(),
                    });
                }
            }
        }
    }
    for current in &existing.groups {
        if source_groups.contains(current.external_id.as_str()) {
            continue;
        }
        if options.delete_groups {
            plan.groups.push(GroupChange {
                action: Action::Delete,
                external_id: current.external_id.clone(),
                id: Some(current.id),
                name: current.name.clone(),
                previous_name: None,
                fields: Vec::new(),
                description: current.description.clone(),
            });
        } else {
            plan.groups_unchanged += 1;
        }
    }

    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "plan: groups"
    );
    let deleted_users: FxHashSet<&str> = deletes.iter().map(|c| c.external_id.as_str()).collect();
    let will_exist = |u: &str| {
        (is_accepted(&accepted, u) || by_external.contains_key(u)) && !deleted_users.contains(u)
    };
    let (added, removed) = memberships::diff(
        snapshot,
        existing,
        &source_groups,
        &deleted_users,
        will_exist,
    );
    tracing::debug!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        "plan: memberships"
    );
    (decided, deletes, added, removed)
}
