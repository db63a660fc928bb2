//! The plan's user changes made from the snapshot in name order, freeing the snapshot as
//! they are made. Apart from the diff because it decides nothing: it only moves data.

use super::{Decision, UserChange};
use crate::directory::{Chunked, SourceUser};

/// Changes made between two returns of freed memory (`changes_in_order`).
const RELEASE_EVERY: usize = 65_536;

/// The decided users' changes, in `decided`'s order (by name), with room for `more`. Each
/// user's strings move from the snapshot into its change, taken from the snapshot's end so
/// its chunks are freed as the changes fill: a million users' snapshot and changes were
/// held whole at once (150 + 216 MB).
pub(super) fn changes_in_order(
    mut sources: Chunked<SourceUser>,
    mut decided: Vec<(usize, String, Decision)>,
    more: usize,
) -> Vec<UserChange> {
    // Where each change goes, in the order they are made (last source first).
    let mut target: Vec<u32> = (0..decided.len() as u32).collect();
    target.sort_unstable_by_key(|&j| std::cmp::Reverse(decided[j as usize].0));
    let mut changes = Vec::with_capacity(decided.len() + more);
    for &j in &target {
        let (index, username, decision) = &mut decided[j as usize];
        while sources.len() > *index + 1 {
            sources.pop();
        }
        // `decided` names each source once, by its place, so it is there.
        let Some(source) = sources.pop() else { break };
        let decision = std::mem::replace(decision, Decision::Create);
        changes.push(decision.into_change(std::mem::take(username), source));
        // The chunks freed so far go back now, not after this loop (it makes no call
        // into the allocator that would return them): else both were held at its end.
        if changes.len() % RELEASE_EVERY == 0 {
            crate::release_freed_memory();
        }
    }
    drop(decided);
    debug_assert_eq!(changes.len(), target.len());
    if changes.len() != target.len() {
        return changes;
    }
    // Into their places by swaps, following each cycle of the permutation.
    for k in 0..target.len() {
        while target[k] as usize != k {
            let t = target[k] as usize;
            changes.swap(k, t);
            target.swap(k, t);
        }
    }
    changes
}
