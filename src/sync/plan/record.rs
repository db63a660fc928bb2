//! How a plan is kept with its run: the JSON record (each change list cut to
//! `STORED_CHANGES`) and the digest a held run is approved against. Apart from the diff
//! because neither changes what the plan says, only how it is stored and compared.

use serde::Serialize;

use super::{GroupChange, Membership, Plan, UserChange};

/// Changes of each kind kept with a run for the run page; the counts are always complete.
pub const STORED_CHANGES: usize = 2_000;

/// Feeds serialised JSON straight into a hash (no 30 MB string for 100k changes).
struct HashWriter(sha2::Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run stores: the plan with each change list cut to `STORED_CHANGES`.
#[derive(Serialize)]
struct StoredPlan<'a> {
    users: &'a [UserChange],
    users_unchanged: usize,
    groups: &'a [GroupChange],
    groups_unchanged: usize,
    memberships_added: &'a [Membership],
    memberships_removed: &'a [Membership],
    warnings: Vec<&'a str>,
    scope: &'a Option<String>,
    held: &'a Option<String>,
    source_users: usize,
    existing_users: usize,
    digest: &'a str,
    truncated: bool,
}

impl Plan {
    /// A hash of the changes only: two plans with the same digest apply the same way.
    pub fn compute_digest(&self) -> String {
        let mut hasher = HashWriter(<sha2::Sha256 as sha2::Digest>::new());
        let changes = (
            &self.users,
            &self.groups,
            &self.memberships_added,
            &self.memberships_removed,
        );
        // Serialising plain structs into a hash cannot fail.
        let _ = serde_json::to_writer(&mut hasher, &changes);
        hex::encode(sha2::Digest::finalize(hasher.0))
    }

    /// The JSON stored with the run.
    pub fn to_record(&self) -> Option<String> {
        let cut = |n: usize| n.min(STORED_CHANGES);
        let left_out = format!(
            "… and {} more entries left out (the counts are complete; the command line's dry run lists them all)",
            self.warnings.len().saturating_sub(STORED_CHANGES)
        );
        let stored = StoredPlan {
            users: &self.users[..cut(self.users.len())],
            users_unchanged: self.users_unchanged,
            groups: &self.groups[..cut(self.groups.len())],
            groups_unchanged: self.groups_unchanged,
            memberships_added: &self.memberships_added[..cut(self.memberships_added.len())],
            memberships_removed: &self.memberships_removed[..cut(self.memberships_removed.len())],
            warnings: self.stored_warnings(&left_out),
            scope: &self.scope,
            held: &self.held,
            source_users: self.source_users,
            existing_users: self.existing_users,
            digest: &self.digest,
            truncated: [
                self.users.len(),
                self.groups.len(),
                self.memberships_added.len(),
                self.memberships_removed.len(),
            ]
            .iter()
            .any(|n| *n > STORED_CHANGES),
        };
        serde_json::to_string(&stored).ok()
    }

    /// The first `STORED_CHANGES` warnings, then `left_out` if there were more: a directory
    /// of a million entries with the same name would otherwise store a million lines.
    fn stored_warnings<'a>(&'a self, left_out: &'a str) -> Vec<&'a str> {
        let mut stored: Vec<&str> = self
            .warnings
            .iter()
            .take(STORED_CHANGES)
            .map(String::as_str)
            .collect();
        if self.warnings.len() > STORED_CHANGES {
            stored.push(left_out);
        }
        stored
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sync::plan::Action;

    fn created(i: usize) -> UserChange {
        UserChange {
            action: Action::Create,
            external_id: format!("uid=u{i},dc=example"),
            id: None,
            username: format!("u{i}"),
            previous_username: None,
            fields: Vec::new(),
            full_name: String::new(),
            emails: Vec::new(),
            disabled: false,
            sign_in_name: String::new(),
            directory_name: format!("u{i}"),
        }
    }

    #[test]
    fn the_stored_record_is_bounded_however_large_the_plan() {
        let plan = Plan {
            users: (0..STORED_CHANGES + 500).map(created).collect(),
            warnings: (0..STORED_CHANGES + 3_000)
                .map(|i| format!("u{i}: another directory entry has the same user name; left out"))
                .collect(),
            ..Plan::default()
        };
        let stored: Plan =
            serde_json::from_str(&plan.to_record().expect("stored")).expect("read back");
        assert!(stored.truncated);
        assert_eq!(stored.users.len(), STORED_CHANGES);
        assert_eq!(stored.warnings.len(), STORED_CHANGES + 1);
        assert_eq!(
            stored.warnings[..STORED_CHANGES],
            plan.warnings[..STORED_CHANGES]
        );
        assert_eq!(
            stored.warnings[STORED_CHANGES],
            "… and 3000 more entries left out (the counts are complete; the command line's dry run lists them all)"
        );
    }

    #[test]
    fn a_small_plan_is_stored_whole() {
        let plan = Plan {
            users: (0..3).map(created).collect(),
            warnings: vec!["x: left out".to_owned()],
            ..Plan::default()
        };
        let stored: Plan =
            serde_json::from_str(&plan.to_record().expect("stored")).expect("read back");
        assert!(!stored.truncated);
        assert_eq!(
            stored,
            Plan {
                digest: String::new(),
                ..plan
            }
        );
    }
}
