//! How a plan is kept with its run: the JSON record (each change list cut to
//! `STORED_CHANGES`) and the digest a held run is approved against. Apart from the diff
//! because neither changes what the plan says, only how it is stored and compared.

use serde::Serialize;

use super::{GroupChange, Plan, UserChange};

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
    memberships_added: &'a [(String, String)],
    memberships_removed: &'a [(String, String)],
    warnings: &'a [String],
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
        let stored = StoredPlan {
            users: &self.users[..cut(self.users.len())],
            users_unchanged: self.users_unchanged,
            groups: &self.groups[..cut(self.groups.len())],
            groups_unchanged: self.groups_unchanged,
            memberships_added: &self.memberships_added[..cut(self.memberships_added.len())],
            memberships_removed: &self.memberships_removed[..cut(self.memberships_removed.len())],
            warnings: &self.warnings,
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
}
