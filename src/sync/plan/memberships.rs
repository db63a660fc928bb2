//! The memberships part of the diff: which (group, user) pairs to add and to remove, found
//! by merging two sorted lists — what the snapshot's groups list and what Roster holds —
//! rather than by hash sets of string pairs (a million memberships cost 67 MB as a set of
//! pairs and 103 MB as a map to where each is, against 32 and 40 MB as lists).

use std::cmp::Ordering;

use rustc_hash::{FxHashMap as HashMap, FxHashSet};

use super::{Existing, Membership};
use crate::directory::Snapshot;

/// A membership (group id, user id) with where it is in the snapshot (group, member).
type Placed<'a> = ((&'a str, &'a str), (u32, u32));

/// Memberships to add, by where they are in the snapshot (group, member); memberships to
/// remove, by (group id, user id).
type Memberships = (Vec<(usize, usize)>, Vec<Membership>);

/// Memberships of the groups in the source between users that will exist (`will_exist`):
/// those to add, as (index in `snapshot.groups`, index in its members), sorted by (group
/// id, user id); those to remove, as (group id, user id), sorted. Only memberships of
/// groups in the source change: a group kept after leaving the directory keeps its
/// members. Deleted users and groups lose theirs by cascade.
pub(super) fn diff(
    snapshot: &Snapshot,
    existing: &Existing,
    source_groups: &FxHashSet<&str>,
    deleted_users: &FxHashSet<&str>,
    will_exist: impl Fn(&str) -> bool,
) -> Memberships {
    let user_external: HashMap<i64, &str> = existing
        .users
        .iter()
        .map(|u| (u.id, u.external_id.as_str()))
        .collect();
    let group_external: HashMap<i64, &str> = existing
        .groups
        .iter()
        .map(|g| (g.id, g.external_id.as_str()))
        .collect();
    let mut current: Vec<(&str, &str)> = existing
        .memberships
        .iter()
        .filter_map(|(g, u)| Some((*group_external.get(g)?, *user_external.get(u)?)))
        .collect();
    current.sort_unstable();
    current.dedup();
    // Each wanted membership with where it is in the snapshot (group, member), the first
    // place of a pair listed twice: the member's id moves from there into the plan.
    let mut wanted: Vec<Placed> =
        Vec::with_capacity(snapshot.groups.iter().map(|g| g.members.len()).sum());
    for (g, group) in snapshot.groups.iter().enumerate() {
        for (m, member) in group.members.iter().enumerate() {
            if will_exist(member) {
                wanted.push(((&group.external_id, member), (g as u32, m as u32)));
            }
        }
    }
    // Stable, so of equal pairs the first place stays first and is the one kept.
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    wanted.dedup_by(|later, kept| later.0 == kept.0);
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let mut remove = |(g, u): (&str, &str)| {
        if source_groups.contains(g) && !deleted_users.contains(u) {
            removed.push((g.into(), u.to_owned()));
        }
    };
    let (mut w, mut c) = (wanted.iter().peekable(), current.iter().peekable());
    loop {
        // One list run out: the rest of the other is all added, or all removed.
        let order = match (w.peek(), c.peek()) {
            (Some((pair, _)), Some(now)) => pair.cmp(now),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        match order {
            Ordering::Less => {
                if let Some((_, at)) = w.next() {
                    added.push((at.0 as usize, at.1 as usize));
                }
            }
            Ordering::Greater => {
                if let Some(now) = c.next() {
                    remove(*now);
                }
            }
            Ordering::Equal => {
                w.next();
                c.next();
            }
        }
    }
    (added, removed)
}
