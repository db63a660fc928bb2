//! The deletion guard: decides whether a plan is held for an admin instead of applied
//! (`Plan::held`). It is the safety step between plan and apply (DESIGN.md: snapshot →
//! plan → guard → apply), kept apart from the diff so the rule reads on its own. Pure: it
//! only looks at the database's side and the plan.

use super::plan::{Action, Existing, Plan, PlanOptions};

/// Microsoft Entra Connect's "prevent accidental deletes": an empty source, or more
/// deletions of users, groups or memberships than the profile allows, holds the run for an
/// admin.
pub(super) fn guard(options: &PlanOptions, existing: &Existing, plan: &Plan) -> Option<String> {
    if plan.source_users == 0 && !existing.users.is_empty() {
        return Some(format!(
            "the directory returned no users, while {} are synchronised from it",
            existing.users.len()
        ));
    }
    [
        ("users", plan.count(Action::Delete), existing.users.len()),
        (
            "groups",
            plan.group_count(Action::Delete),
            existing.groups.len(),
        ),
        (
            "group memberships",
            plan.memberships_removed.len(),
            existing.memberships.len(),
        ),
    ]
    .into_iter()
    .find_map(|(what, deletes, of)| over_threshold(options, what, deletes, of))
}

/// Why `deletes` of `of` existing `what` are more than the profile's threshold, if they are.
fn over_threshold(options: &PlanOptions, what: &str, deletes: usize, of: usize) -> Option<String> {
    let (deletes, of) = (deletes as i64, of as i64);
    if deletes > options.threshold_count {
        return Some(format!(
            "{deletes} {what} would be deleted, more than the profile's threshold of {}",
            options.threshold_count
        ));
    }
    if of > 0 && deletes * 100 > options.threshold_percent * of {
        return Some(format!(
            "{deletes} of {of} {what} would be deleted, more than the profile's threshold of {} %",
            options.threshold_percent
        ));
    }
    None
}
