//! Runs that read only what changed, for directories that report changes (Entra ID's delta
//! links): the profile's change cursor, kept by the last applied run, is asked what changed;
//! the changes are merged into what Roster holds and planned like a complete read, so the
//! guard, dry runs and approval work as ever. Nothing changed: no plan to compute, the run
//! is a couple of requests.
//!
//! Everything is read instead when there is no cursor, the last complete read is a day old
//! (drift heals), the cursor expired, or the changes cannot be merged safely; the profile's
//! settings being saved, or "Full synchronisation", clears the cursor.

use rustc_hash::{FxHashMap, FxHashSet};

use super::execute::load_existing;
use super::plan::{self, Existing, Plan, PlanOptions};
use super::{RunError, SyncContext, SyncError};
use crate::db::ids::ProfileId;
use crate::db::models::change_cursors::{self, ChangeCursor as StoredCursor};
use crate::db::models::directory_profiles::DirectoryProfile;
use crate::db::models::{directory_groups, users};
use crate::directory::{ChangeCursor, Changes, Connector, Delta, GroupPatch, Progress, Snapshot};
use crate::directory::{SourceGroup, SourceUser};

/// A complete read at least this often (seconds), whatever the changes say.
pub const FULL_READ_EVERY: i64 = 24 * 60 * 60;

/// The cursor as kept with the profile.
pub(super) fn stored(
    profile_id: ProfileId,
    cursor: ChangeCursor,
    full_read_at: i64,
) -> StoredCursor {
    StoredCursor {
        profile_id,
        users_link: cursor.users,
        groups_link: cursor.groups,
        full_read_at,
    }
}

/// The plan from the changes since the profile's cursor, or `None`: read everything.
pub(super) async fn plan_changes(
    ctx: &SyncContext,
    profile: &DirectoryProfile,
    directory: &Connector,
    options: &PlanOptions,
    progress: &Progress,
) -> Result<Option<Plan>, RunError> {
    let profile_id = profile.id;
    let kept = ctx
        .db
        .run(move |c| change_cursors::find(c, profile_id).map_err(SyncError::from))
        .await
        .map_err(RunError::ReadExisting)?;
    let Some(kept) = kept else {
        return Ok(None);
    };
    if crate::db::now() - kept.full_read_at >= FULL_READ_EVERY {
        tracing::info!(
            profile = profile_id.0,
            "last complete read a day ago: reading everything"
        );
        return Ok(None);
    }
    let since = ChangeCursor {
        users: kept.users_link,
        groups: kept.groups_link,
    };
    let delta = match directory.changes(&since, progress).await? {
        Changes::Since(delta) => delta,
        Changes::ReadEverything(why) => {
            tracing::info!(profile = profile_id.0, why, "reading everything");
            return Ok(None);
        }
    };
    let next = stored(profile_id, delta.cursor.clone(), kept.full_read_at);
    if delta.is_empty() {
        let mut plan = unchanged(ctx, profile_id).await?;
        plan.next_cursor = Some(next);
        return Ok(Some(plan));
    }
    let existing = load_existing(ctx, profile).await?;
    // Users synchronised before Roster kept the name the directory sent cannot be
    // rebuilt from their row: the complete read gives it to them.
    if existing.users.iter().any(|u| u.directory_name.is_empty()) {
        return Ok(None);
    }
    progress.set_phase("planning");
    let snapshot = merged(directory, &existing, delta, progress).await?;
    let mut plan = plan::plan(options, snapshot, &existing);
    plan.next_cursor = Some(next);
    Ok(Some(plan))
}

/// Nothing changed: a plan of no changes, counted without loading anything.
async fn unchanged(ctx: &SyncContext, profile_id: ProfileId) -> Result<Plan, RunError> {
    let (users, groups) = ctx
        .db
        .run(move |c| {
            Ok::<_, SyncError>((
                users::count_of_profile(c, profile_id)?,
                directory_groups::count_of_profile(c, profile_id)?,
            ))
        })
        .await
        .map_err(RunError::ReadExisting)?;
    let n = |x: i64| usize::try_from(x).unwrap_or(0);
    Ok(Plan {
        users_unchanged: n(users),
        groups_unchanged: n(groups),
        source_users: n(users),
        existing_users: n(users),
        ..Plan::default()
    })
}

/// The directory as it is now: what Roster holds with the changes on top. Groups that
/// changed are read again with the groups they are nested in, and users new to Roster have
/// their groups looked up — or every group is read again when that is too many.
async fn merged(
    directory: &Connector,
    existing: &Existing,
    delta: Delta,
    progress: &Progress,
) -> Result<Snapshot, RunError> {
    let held: FxHashSet<&str> = existing
        .users
        .iter()
        .map(|u| u.external_id.as_str())
        .collect();
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    let newcomers: Vec<String> = delta
        .users
        .iter()
        .filter(|(id, user)| user.is_some() && !held.contains(id.as_str()))
        .filter(|(id, _)| seen.insert(id.as_str()))
        .map(|(id, _)| id.clone())
        .collect();
    let users = merged_users(existing, delta.users);
    let mut warnings = delta.warnings;
    let ids: FxHashSet<&str> = users.iter().map(|u| u.external_id.as_str()).collect();
    let known = |id: &str| ids.contains(id);
    let groups = if delta.changed_groups.is_empty() && newcomers.is_empty() {
        kept_groups(existing, &users)
    } else {
        progress.set_phase("reading changed groups");
        match directory
            .group_patch(&delta.changed_groups, &newcomers, &known)
            .await?
        {
            Some(patch) => {
                warnings.extend(patch.warnings.iter().cloned());
                patched(kept_groups(existing, &users), patch)
            }
            None => {
                progress.set_phase("reading groups");
                let (groups, more) = directory.groups(&known, progress).await?;
                warnings.extend(more);
                groups
            }
        }
    };
    Ok(Snapshot::narrowed(
        users,
        groups,
        warnings,
        None,
        delta.skip_new_disabled,
    ))
}

/// The groups as synchronised with the ones read again in their place (or gone), and users
/// new to Roster added to the groups they are in.
fn patched(mut groups: Vec<SourceGroup>, patch: GroupPatch) -> Vec<SourceGroup> {
    let reread: FxHashSet<String> = patch.groups.iter().map(|(id, _)| id.clone()).collect();
    groups.retain(|g| !reread.contains(&g.external_id));
    groups.extend(patch.groups.into_iter().filter_map(|(_, group)| group));
    for (user, of) in patch.newcomers {
        for group in groups.iter_mut() {
            let listed = of.contains(&group.external_id);
            if listed && !reread.contains(&group.external_id) && !group.members.contains(&user) {
                group.members.push(user.clone());
            }
        }
    }
    groups
}

/// Roster's users of the profile as the directory sent them, with the changes applied in
/// order (a later entry for the same user wins).
fn merged_users(
    existing: &Existing,
    changes: Vec<(String, Option<SourceUser>)>,
) -> Vec<SourceUser> {
    let mut users: Vec<Option<SourceUser>> = existing
        .users
        .iter()
        .map(|u| {
            Some(SourceUser {
                external_id: u.external_id.clone(),
                username: u.directory_name.clone(),
                full_name: u.full_name.clone(),
                emails: u.emails.clone(),
                disabled: u.directory_disabled,
                sign_in_name: u.sign_in_name_key.clone(),
            })
        })
        .collect();
    let mut at: FxHashMap<String, usize> = existing
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.external_id.clone(), i))
        .collect();
    for (id, user) in changes {
        match at.get(&id) {
            Some(&i) => users[i] = user,
            None => {
                at.insert(id, users.len());
                users.push(user);
            }
        }
    }
    users.into_iter().flatten().collect()
}

/// The groups as synchronised, their members still in the directory.
fn kept_groups(existing: &Existing, users: &[SourceUser]) -> Vec<SourceGroup> {
    let present: FxHashSet<&str> = users.iter().map(|u| u.external_id.as_str()).collect();
    let user_external: FxHashMap<i64, &str> = existing
        .users
        .iter()
        .map(|u| (u.id, u.external_id.as_str()))
        .filter(|(_, external)| present.contains(external))
        .collect();
    let mut members: FxHashMap<i64, Vec<String>> = FxHashMap::default();
    for (group, user) in &existing.memberships {
        if let Some(external) = user_external.get(user) {
            members
                .entry(*group)
                .or_default()
                .push((*external).to_owned());
        }
    }
    existing
        .groups
        .iter()
        .map(|g| SourceGroup {
            external_id: g.external_id.clone(),
            name: g.name.clone(),
            description: g.description.clone(),
            members: members.remove(&g.id).unwrap_or_default(),
        })
        .collect()
}
