//! Graph's delta queries as the fake serves them: `/v1.0/users/delta` and
//! `/v1.0/groups/delta`. Every change to the directory (through the handle's `set_*`,
//! `upsert_*`, `remove_user`, `generate`) bumps a version; a delta link remembers the
//! version it was issued at and its `$select`, and the next round lists what changed after
//! it — whole objects with the selected properties (or only `id` and `displayName` when
//! told to send partial objects, as Graph may), `@removed` for deletions, groups with
//! `members@delta` — paged by an opaque `$skiptoken`, the last page carrying the new
//! `@odata.deltaLink`. `$deltatoken=latest` answers no objects, just the link; `$top` is
//! refused (PROTOCOLS.md); an expired link answers 410 `resyncRequired`.

use serde_json::{Value, json};

use super::graph::{error, success};
use super::objects::{GROUP_PROPERTIES, Rendered, Row, USER_PROPERTIES};
use super::server::{Call, Reply};
use super::{Shared, State, jose};

/// Graph chooses a delta round's page size; the fake's is small enough to page in tests.
const PAGE: usize = 200;

/// A delta link or a page of a round in progress.
#[derive(Clone)]
pub struct Round {
    users: bool,
    select: Option<Vec<String>>,
    /// Changes after this version are listed…
    since: u64,
    /// …up to this one, where the next link starts.
    until: u64,
    offset: usize,
}

/// An issued delta link: users or groups, its `$select`, the version it stands for
/// (`None`: expired).
pub type Link = (bool, Option<Vec<String>>, Option<u64>);

/// What the fake remembers of issued delta links.
#[derive(Default)]
pub struct DeltaState {
    pub version: u64,
    pub user_versions: std::collections::HashMap<String, u64>,
    pub group_versions: std::collections::HashMap<String, u64>,
    /// (id, version it was removed at)
    pub removed_users: Vec<(String, u64)>,
    pub removed_groups: Vec<(String, u64)>,
    pub links: std::collections::HashMap<String, Link>,
    pub pages: std::collections::HashMap<String, Round>,
    /// Changed users come as `id` and `displayName` only.
    pub partial: bool,
}

impl DeltaState {
    pub fn bump(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    pub fn user_changed(&mut self, id: &str) {
        let v = self.bump();
        self.user_versions.insert(id.to_owned(), v);
    }

    pub fn group_changed(&mut self, id: &str) {
        let v = self.bump();
        self.group_versions.insert(id.to_owned(), v);
    }

    pub fn user_removed(&mut self, id: &str) {
        let v = self.bump();
        self.user_versions.remove(id);
        self.removed_users.push((id.to_owned(), v));
    }

    pub fn group_removed(&mut self, id: &str) {
        let v = self.bump();
        self.group_versions.remove(id);
        self.removed_groups.push((id.to_owned(), v));
    }

    pub fn expire(&mut self) {
        for link in self.links.values_mut() {
            link.2 = None;
        }
    }
}

/// GET `/v1.0/users/delta` (`users`) or `/v1.0/groups/delta`.
pub fn handle(shared: &Shared, state: &mut State, call: &Call, users: bool) -> Reply {
    if call.param("$top").is_some() {
        return error(
            400,
            "Request_UnsupportedQuery",
            "The $top query option is not supported on delta queries.",
            call,
        );
    }
    let round = if let Some(token) = call.param("$skiptoken") {
        match state.delta.pages.get(token) {
            Some(round) if round.users == users => round.clone(),
            _ => {
                return error(
                    400,
                    "Request_BadRequest",
                    "Invalid page token specified.",
                    call,
                );
            }
        }
    } else {
        let select = match call.param("$select") {
            Some(text) => match parse_select(text, users, call) {
                Ok(select) => select,
                Err(reply) => return reply,
            },
            None => None,
        };
        match call.param("$deltatoken") {
            Some("latest") => {
                let until = state.delta.version;
                return page(
                    shared,
                    state,
                    call,
                    &Round {
                        users,
                        select,
                        since: until,
                        until,
                        offset: 0,
                    },
                );
            }
            Some(token) => match state.delta.links.get(token) {
                Some((for_users, select, Some(since))) if *for_users == users => Round {
                    users,
                    select: select.clone(),
                    since: *since,
                    until: state.delta.version,
                    offset: 0,
                },
                Some((for_users, _, None)) if *for_users == users => {
                    return error(
                        410,
                        "resyncRequired",
                        "Resync required. Replace any local cached copy of the data with the result of a full read.",
                        call,
                    );
                }
                _ => {
                    return error(
                        400,
                        "syncStateNotFound",
                        "The delta token is not valid.",
                        call,
                    );
                }
            },
            None => Round {
                users,
                select,
                since: 0,
                until: state.delta.version,
                offset: 0,
            },
        }
    };
    page(shared, state, call, &round)
}

fn parse_select(text: &str, users: bool, call: &Call) -> Result<Option<Vec<String>>, Reply> {
    let known = if users {
        USER_PROPERTIES
    } else {
        GROUP_PROPERTIES
    };
    let mut names = Vec::new();
    for wanted in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let canonical = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(wanted))
            .map(|k| k.to_string())
            .or_else(|| {
                (!users && wanted.eq_ignore_ascii_case("members")).then(|| "members".into())
            });
        let Some(canonical) = canonical else {
            let message = format!(
                "Could not find a property named '{wanted}' on type 'microsoft.graph.{}'.",
                if users { "user" } else { "group" }
            );
            return Err(error(400, "Request_BadRequest", &message, call));
        };
        names.push(canonical);
    }
    Ok((!names.is_empty()).then_some(names))
}

/// The entries of a round: objects changed in (since, until] (an object changed since 0 is
/// every object: the initial round), then removals, in a stable order.
fn entries(state: &State, round: &Round) -> Vec<Value> {
    let d = &state.delta;
    let in_round = |v: u64| v > round.since && v <= round.until;
    let select = round.select.as_deref();
    let mut out: Vec<(u64, Value)> = Vec::new();
    if round.users {
        for user in &state.users {
            let v = d.user_versions.get(&user.id).copied().unwrap_or(0);
            if !(in_round(v) || (round.since == 0 && v == 0)) {
                continue;
            }
            let mut value = serde_json::to_value(Rendered {
                row: Row::User(user),
                select,
                typed: false,
            })
            .unwrap_or_default();
            if d.partial {
                value = json!({"id": user.id, "displayName": user.display_name});
            }
            out.push((v, value));
        }
        for (id, v) in d.removed_users.iter().filter(|(_, v)| in_round(*v)) {
            out.push((*v, json!({"id": id, "@removed": {"reason": "changed"}})));
        }
    } else {
        let members = select.is_some_and(|s| s.iter().any(|n| n == "members"));
        for group in &state.groups {
            let v = d.group_versions.get(&group.id).copied().unwrap_or(0);
            if !(in_round(v) || (round.since == 0 && v == 0)) {
                continue;
            }
            let mut value = serde_json::to_value(Rendered {
                row: Row::Group(group),
                select,
                typed: false,
            })
            .unwrap_or_default();
            if members {
                let listed: Vec<Value> = group
                    .members
                    .iter()
                    .map(|m| match m {
                        super::Member::User(id) => {
                            json!({"@odata.type": "#microsoft.graph.user", "id": id})
                        }
                        super::Member::Group(id) => {
                            json!({"@odata.type": "#microsoft.graph.group", "id": id})
                        }
                        super::Member::Device(id)
                        | super::Member::Contact(id)
                        | super::Member::ServicePrincipal(id) => json!({"id": id}),
                    })
                    .collect();
                value["members@delta"] = Value::Array(listed);
            }
            out.push((v, value));
        }
        for (id, v) in d.removed_groups.iter().filter(|(_, v)| in_round(*v)) {
            out.push((*v, json!({"id": id, "@removed": {"reason": "deleted"}})));
        }
    }
    out.sort_by_key(|(v, _)| *v);
    out.into_iter().map(|(_, value)| value).collect()
}

fn page(shared: &Shared, state: &mut State, call: &Call, round: &Round) -> Reply {
    let all = entries(state, round);
    let rest = all.get(round.offset..).unwrap_or(&[]);
    let value: Vec<Value> = rest.iter().take(PAGE).cloned().collect();
    let set = if round.users { "users" } else { "groups" };
    let base = format!("{}/v1.0/{set}/delta", shared.base_url);
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#{set}", shared.base_url),
        "value": value,
    });
    let token = jose::random_token(48);
    if rest.len() > PAGE {
        state.delta.pages.insert(
            token.clone(),
            Round {
                offset: round.offset + PAGE,
                ..round.clone()
            },
        );
        body["@odata.nextLink"] = json!(format!("{base}?$skiptoken={token}"));
    } else {
        state.delta.links.insert(
            token.clone(),
            (round.users, round.select.clone(), Some(round.until)),
        );
        body["@odata.deltaLink"] = json!(format!("{base}?$deltatoken={token}"));
    }
    success(body.to_string().into_bytes(), call)
}
