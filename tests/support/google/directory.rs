//! The Admin SDK Directory API as the fake serves it: `users`, `users/{userKey}`, `groups`,
//! `groups/{groupKey}` and `groups/{groupKey}/members`, each behind Google's three checks
//! (a live access token, a scope the method accepts, an administrator to act as), paged
//! with opaque tokens bound to their query, with `fields`, and Google's error bodies
//! (`errors.rs`). What each listing lists is `listings.rs`.

use serde_json::json;

use super::errors::{
    api_error, bad_request, forbidden, insufficient_scopes, invalid_credentials, invalid_input,
    invalid_parameter, login_required, not_found,
};
use super::fields::{
    Fields, GROUP_SCHEMA, GROUPS_PAGE, MEMBERS_PAGE, Obj, Schema, USER_SCHEMA, USERS_PAGE,
};
use super::listings::{group_rows, member_rows, user_rows};
use super::objects::{Directory, Row, etag};
use super::server::{Call, Reply, not_found_page};
use super::{GROUP_READONLY, MEMBER_READONLY, Route, Shared, State, USER_READONLY, jose};

pub const PREFIX: &str = "/admin/directory/v1/";
const USER_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user";
const GROUP_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group";
const MEMBER_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.member";

/// What a page token stands for: the query it was issued for and where its page starts.
pub struct Cursor {
    binding: String,
    offset: usize,
}

// ---- the three checks ----

/// The scopes that open a route (a read-write scope opens its read-only methods too).
fn scopes_for(route: Route) -> &'static [&'static str] {
    match route {
        Route::Users => &[USER_READONLY, USER_SCOPE],
        Route::Groups => &[GROUP_READONLY, GROUP_SCOPE],
        _ => &[MEMBER_READONLY, MEMBER_SCOPE, GROUP_READONLY, GROUP_SCOPE],
    }
}

/// A live token of this fake's, a scope the route accepts, and an administrator behind it.
fn check_caller(state: &State, call: &Call, route: Route, method: &str) -> Result<(), Reply> {
    let Some(header) = call.header("authorization") else {
        return Err(login_required());
    };
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let issued = token.and_then(|t| state.access_tokens.get(t));
    let Some(issued) = issued.filter(|t| t.expires_at > jose::now()) else {
        return Err(invalid_credentials());
    };
    let accepted = scopes_for(route);
    if !issued.scopes.iter().any(|s| accepted.contains(&s.as_str())) {
        return Err(insufficient_scopes(method, accepted));
    }
    // Delegation to a user who is not an administrator gets a token (Google does not check
    // then); the API refuses here.
    let user = issued
        .user
        .as_deref()
        .and_then(|id| state.directory.user_by_id(id));
    if !user.is_some_and(|u| u.is_admin) {
        return Err(forbidden());
    }
    Ok(())
}

// ---- routing ----

enum Op {
    Users,
    User(String),
    Groups,
    Group(String),
    Members(String),
}

impl Op {
    fn method(&self) -> &'static str {
        match self {
            Op::Users => "DirectoryUsers.List",
            Op::User(_) => "DirectoryUsers.Get",
            Op::Groups => "DirectoryGroups.List",
            Op::Group(_) => "DirectoryGroups.Get",
            Op::Members(_) => "DirectoryMembers.List",
        }
    }
}

/// Everything under `/admin/directory/v1/`.
pub fn handle(shared: &Shared, call: &Call, route: Route, bad_page: bool) -> Reply {
    let rest = call.path.strip_prefix(PREFIX).unwrap_or("");
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let op = match segments.as_slice() {
        ["users"] => Op::Users,
        ["users", key] if !key.is_empty() => Op::User(key.to_string()),
        ["groups"] => Op::Groups,
        ["groups", key] if !key.is_empty() => Op::Group(key.to_string()),
        ["groups", key, "members"] if !key.is_empty() => Op::Members(key.to_string()),
        _ => return not_found_page(call),
    };
    if call.method != "GET" {
        let message = "The Google fake serves the Directory API read-only.";
        return api_error(
            405,
            message,
            json!({"message": message, "domain": "global", "reason": "methodNotAllowed"}),
            None,
        );
    }
    let mut state = shared.state();
    if let Err(reply) = check_caller(&state, call, route, op.method()) {
        return reply;
    }
    let answer = match op {
        Op::Users => list(&mut state, call, Kind::Users, bad_page),
        Op::Groups => list(&mut state, call, Kind::Groups, bad_page),
        Op::Members(key) => list(&mut state, call, Kind::Members(key), bad_page),
        Op::User(key) => get(&state.directory, call, &USER_SCHEMA, |d| {
            d.find_user(&key)
                .map(Row::User)
                .ok_or_else(|| not_found("userKey"))
        }),
        Op::Group(key) => get(&state.directory, call, &GROUP_SCHEMA, |d| {
            d.find_group(&key)
                .map(Row::Group)
                .ok_or_else(|| not_found("groupKey"))
        }),
    };
    answer.unwrap_or_else(|refusal| refusal)
}

fn parse_fields(call: &Call, schema: &Schema) -> Result<Option<Fields>, Reply> {
    let Some(text) = call.param("fields").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let invalid = |selection: &str| {
        invalid_parameter("fields", &format!("Invalid field selection {selection}"))
    };
    let fields = Fields::parse(text).map_err(|t| invalid(&t))?;
    match fields.unknown(schema) {
        Some(bad) => Err(invalid(&bad)),
        None => Ok(Some(fields)),
    }
}

/// `projection=full` (or `custom`) adds custom schemas.
fn full_projection(call: &Call) -> Result<bool, Reply> {
    match call.param("projection") {
        None | Some("basic") => Ok(false),
        Some("full") => Ok(true),
        Some("custom") if call.param("customFieldMask").is_some() => Ok(true),
        Some("custom") => Err(bad_request()),
        Some(other) => Err(invalid_parameter(
            "projection",
            &format!("Invalid value '{other}'. Values must be one of: basic, custom, full"),
        )),
    }
}

fn write_row<'s>(directory: &'s Directory, o: &mut Obj<'_, 's>, row: &Row, full: bool) {
    match row {
        Row::User(i) => directory.write_user(o, &directory.users[*i], None, full),
        Row::Deleted(i) => {
            let (user, at) = &directory.deleted[*i];
            directory.write_user(o, user, Some(*at), full);
        }
        Row::Group(i) => directory.write_group(o, &directory.groups[*i]),
        Row::Member(role, who) => directory.write_member(o, role, who),
    }
}

/// `users/{userKey}` and `groups/{groupKey}`.
fn get(
    directory: &Directory,
    call: &Call,
    schema: &Schema,
    find: impl FnOnce(&Directory) -> Result<Row, Reply>,
) -> Result<Reply, Reply> {
    let fields = parse_fields(call, schema)?;
    let full = full_projection(call)?;
    let row = find(directory)?;
    let mut body = Vec::with_capacity(1024);
    let mut object = Obj::new(&mut body, fields.as_ref());
    write_row(directory, &mut object, &row, full);
    object.finish();
    Ok(Reply::json_bytes(200, body))
}

// ---- listings ----

enum Kind {
    Users,
    Groups,
    Members(String),
}

fn list(state: &mut State, call: &Call, kind: Kind, bad_page: bool) -> Result<Reply, Reply> {
    // (member name, resource kind, page schema, maxResults limit, default)
    let (key, list_kind, schema, limit, default) = match kind {
        Kind::Users => ("users", "admin#directory#users", &USERS_PAGE, 500, 100),
        Kind::Groups => ("groups", "admin#directory#groups", &GROUPS_PAGE, 200, 200),
        Kind::Members(_) => (
            "members",
            "admin#directory#members",
            &MEMBERS_PAGE,
            200,
            200,
        ),
    };
    let max = match call.param("maxResults") {
        None => default,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=limit).contains(&n) => n,
            _ => {
                let message = format!(
                    "Invalid value '{text}'. Values must be within the range: [1, {limit}]"
                );
                return Err(invalid_parameter("maxResults", &message));
            }
        },
    };
    let fields = parse_fields(call, schema)?;
    let full = full_projection(call)?;
    let directory = &mut state.directory;
    let (binding, rows) = match &kind {
        Kind::Users => user_rows(directory, call)?,
        Kind::Groups => group_rows(directory, call)?,
        Kind::Members(group) => member_rows(directory, call, group)?,
    };
    let offset = match call.param("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match state.cursors.get(token) {
            Some(cursor) if cursor.binding == binding => cursor.offset,
            _ => return Err(invalid_input()),
        },
    };
    let start = offset.min(rows.len());
    let end = (start + max).min(rows.len());
    let has_more = end < rows.len();
    let token = (has_more || bad_page).then(|| jose::random_token(60));
    let directory = &state.directory;
    let mut body = Vec::with_capacity(256 + (end - start) * 700);
    let mut page = Obj::new(&mut body, fields.as_ref());
    page.str("kind", list_kind);
    page.str(
        "etag",
        &etag(&[&binding, &directory.generation.to_string()]),
    );
    // An empty listing has no member at all, not an empty array.
    if end > start {
        page.list(key, &rows[start..end], |o, row| {
            write_row(directory, o, row, full)
        });
    }
    if let Some(token) = &token {
        page.str("nextPageToken", token);
    }
    page.finish();
    // A BadPageToken page links to a token that is never registered.
    if let (Some(token), true, false) = (token, has_more, bad_page) {
        state.cursors.insert(
            token,
            Cursor {
                binding,
                offset: end,
            },
        );
    }
    Ok(Reply::json_bytes(200, body))
}
