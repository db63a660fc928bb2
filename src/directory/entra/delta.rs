//! Entra ID's delta queries (PROTOCOLS.md, "Delta"): after a complete read the next run asks
//! Graph only for what changed. The cursor is the pair of `@odata.deltaLink`s of
//! `/users/delta` and `/groups/delta`, taken with `$deltatoken=latest` *before* the complete
//! read, so a change made while it ran comes again in the next round instead of being lost.
//!
//! Users come as whole objects to merge (`@removed` ones are deletions); of groups only
//! which changed is used: membership is transitive here and a change deep in a nesting shows
//! on the inner group only, so a changed group is read again with every group it is nested
//! in (`transitiveMemberOf`), and a user new to Roster has their groups looked up.

use serde_json::{Map, Value};

use super::{Admitted, DirectoryObject, EntraDirectory, GraphGroup, GraphUser, PAGE, USER_FIELDS};
use crate::directory::rest::{Failure, failed};
use crate::directory::{
    ChangeCursor, Changes, Delta, DirectoryError, GroupPatch, Progress, SourceGroup,
};

/// `members` makes membership changes show in the groups' delta.
const GROUP_DELTA_FIELDS: &str = "id,displayName,description,members";
/// Groups read again one by one after a delta (changed ones and their parents), and users
/// new to Roster whose groups are looked up; past this many, every group is read again.
const PATCHED_GROUPS: usize = 50;
/// Past this many changed users a complete read costs no more, and holds less at once
/// than their untyped entries.
const CHANGED_USERS: usize = 20_000;
/// Users Graph sends without every selected property are read one by one; past this many,
/// the run reads everything instead.
const PARTIAL_USERS: usize = 100;

impl EntraDirectory {
    /// Delta links from now on (Graph's `$deltatoken=latest`: no objects, just the link).
    pub async fn latest_cursor(&self) -> Result<ChangeCursor, DirectoryError> {
        let users = self
            .delta_link(&format!(
                "/v1.0/users/delta?$select={USER_FIELDS}&$deltatoken=latest"
            ))
            .await?;
        let groups = self
            .delta_link(&format!(
                "/v1.0/groups/delta?$select={GROUP_DELTA_FIELDS}&$deltatoken=latest"
            ))
            .await?;
        Ok(ChangeCursor { users, groups })
    }

    async fn delta_link(&self, path: &str) -> Result<String, DirectoryError> {
        let link = self
            .all(self.graph(path), false, |_: Value| {})
            .await
            .map_err(failed)?;
        link.ok_or_else(|| no_delta_link(path))
    }

    pub async fn changes(
        &self,
        since: &ChangeCursor,
        progress: &Progress,
    ) -> Result<Changes, DirectoryError> {
        progress.set_phase("connecting");
        self.access_token().await?;
        progress.set_phase("reading changed users");
        let (mut entries, mut overflow): (Vec<Map<String, Value>>, usize) = (Vec::new(), 0);
        let users = match self
            .round(&since.users, |e| {
                if entries.len() < CHANGED_USERS {
                    entries.push(e);
                } else {
                    overflow += 1;
                }
            })
            .await?
        {
            Ok(link) => link,
            Err(why) => return Ok(Changes::ReadEverything(why)),
        };
        if overflow > 0 {
            return Ok(Changes::ReadEverything(format!(
                "more than {CHANGED_USERS} users changed"
            )));
        }
        progress.set_phase("reading changed groups");
        let mut changed_groups: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let groups = match self
            .round(&since.groups, |g: Value| {
                if let Some(id) = g.get("id").and_then(Value::as_str)
                    && seen.insert(id.to_owned())
                {
                    changed_groups.push(id.to_owned());
                }
            })
            .await?
        {
            Ok(link) => link,
            Err(why) => return Ok(Changes::ReadEverything(why)),
        };
        // With chosen groups, who is in scope depends on memberships, which a user's own
        // delta does not show.
        if !self.settings.groups_to_sync.is_empty()
            && (!entries.is_empty() || !changed_groups.is_empty())
        {
            return Ok(Changes::ReadEverything(
                "the profile synchronises chosen groups only, and the directory changed".into(),
            ));
        }
        let mut delta = Delta {
            changed_groups,
            skip_new_disabled: self.settings.enabled_users_only,
            cursor: ChangeCursor { users, groups },
            ..Delta::default()
        };
        let mut partial = Vec::new();
        for entry in entries {
            progress.user_read();
            let Some(id) = entry.get("id").and_then(Value::as_str).map(str::to_owned) else {
                return Err(DirectoryError::Incomplete {
                    detail: "Graph sent a changed user without an id".into(),
                });
            };
            if entry.contains_key("@removed") {
                delta.users.push((id, None));
            } else if USER_FIELDS.split(',').all(|f| entry.contains_key(f)) {
                let user: GraphUser =
                    serde_json::from_value(Value::Object(entry)).map_err(|e| {
                        DirectoryError::Incomplete {
                            detail: format!("a changed user from Graph does not parse: {e}"),
                        }
                    })?;
                self.take(user, &mut delta)?;
            } else {
                // Graph may send only the properties that changed.
                partial.push(id);
            }
        }
        if partial.len() > PARTIAL_USERS {
            return Ok(Changes::ReadEverything(format!(
                "{} changed users came without all their properties",
                partial.len()
            )));
        }
        for id in partial {
            let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
            let url = self.graph(&format!("/v1.0/users/{encoded}?$select={USER_FIELDS}"));
            match self.get::<GraphUser>(&url, false).await {
                Ok(user) => self.take(user, &mut delta)?,
                Err(Failure::NotFound(_)) => delta.users.push((id, None)),
                Err(other) => return Err(failed(other)),
            }
        }
        Ok(Changes::Since(delta))
    }

    /// The changed groups and the groups they are nested in, read again, and the groups of
    /// users new to Roster; `None` past `PATCHED_GROUPS` of either.
    pub async fn group_patch(
        &self,
        changed: &[String],
        newcomers: &[String],
        known: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Option<GroupPatch>, DirectoryError> {
        if changed.len() > PATCHED_GROUPS || newcomers.len() > PATCHED_GROUPS {
            return Ok(None);
        }
        // A deleted group's parents changed too: Graph lists them in the delta themselves.
        let mut reread: Vec<String> = changed.to_vec();
        for id in changed {
            for parent in self.member_of("groups", id).await?.unwrap_or_default() {
                if !reread.contains(&parent) {
                    reread.push(parent);
                }
            }
        }
        if reread.len() > PATCHED_GROUPS {
            return Ok(None);
        }
        let mut patch = GroupPatch::default();
        for id in reread {
            let group = self.group_now(&id, known, &mut patch.warnings).await?;
            patch.groups.push((id, group));
        }
        for id in newcomers {
            if let Some(groups) = self.member_of("users", id).await? {
                patch.newcomers.push((id.clone(), groups));
            }
        }
        Ok(Some(patch))
    }

    /// A group as it is now with its member users among `known`; `None` if it is gone or
    /// has no name (left out, as a complete read would).
    async fn group_now(
        &self,
        id: &str,
        known: &(dyn Fn(&str) -> bool + Sync),
        warnings: &mut Vec<String>,
    ) -> Result<Option<SourceGroup>, DirectoryError> {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let url = self.graph(&format!(
            "/v1.0/groups/{encoded}?$select=id,displayName,description"
        ));
        let group: GraphGroup = match self.get(&url, false).await {
            Ok(group) => group,
            Err(Failure::NotFound(_)) => return Ok(None),
            Err(other) => return Err(failed(other)),
        };
        let Some(name) = group.display_name.filter(|n| !n.trim().is_empty()) else {
            warnings.push(format!("group {id}: no displayName; left out"));
            return Ok(None);
        };
        let Some(members) = self.members(id).await? else {
            return Ok(None);
        };
        Ok(Some(SourceGroup {
            external_id: group.id,
            name,
            description: group.description.unwrap_or_default(),
            members: members.into_iter().filter(|m| known(m)).collect(),
        }))
    }

    /// The groups (ids) a user or group is in, nesting included; `None` if it is gone.
    async fn member_of(&self, set: &str, id: &str) -> Result<Option<Vec<String>>, DirectoryError> {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let first = self.graph(&format!(
            "/v1.0/{set}/{encoded}/transitiveMemberOf?$select=id&$top={PAGE}"
        ));
        let mut groups = Vec::new();
        match self
            .all(first, false, |o: DirectoryObject| {
                // Directory roles and administrative units are listed too.
                if o.kind == "#microsoft.graph.group" {
                    groups.push(o.id);
                }
            })
            .await
        {
            Ok(_) => Ok(Some(groups)),
            Err(Failure::NotFound(_)) => Ok(None),
            Err(other) => Err(failed(other)),
        }
    }

    /// One delta round from `link` to its new delta link; `Err(why)` when Graph no longer
    /// knows the link.
    async fn round<T: serde::de::DeserializeOwned>(
        &self,
        link: &str,
        each: impl FnMut(T),
    ) -> Result<Result<String, String>, DirectoryError> {
        match self.all(link.to_owned(), false, each).await {
            Ok(Some(next)) => Ok(Ok(next)),
            Ok(None) => Err(no_delta_link(link)),
            Err(Failure::Resync(why)) => Ok(Err(format!("the delta link expired: {why}"))),
            Err(other) => Err(failed(other)),
        }
    }

    fn take(&self, user: GraphUser, delta: &mut Delta) -> Result<(), DirectoryError> {
        let id = user.id.clone();
        match self.admit(user, &mut delta.warnings) {
            Admitted::In(user) => delta.users.push((id, Some(user))),
            Admitted::Out => delta.users.push((id, None)),
            Admitted::NoStatus => {
                return Err(DirectoryError::Incomplete {
                    detail: format!("Graph sent user {id} without accountEnabled"),
                });
            }
        }
        Ok(())
    }
}

fn no_delta_link(what: &str) -> DirectoryError {
    DirectoryError::Incomplete {
        detail: format!("Graph's delta answer ended without an @odata.deltaLink ({what})"),
    }
}
