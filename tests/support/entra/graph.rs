//! Microsoft Graph v1.0 as the fake serves it: `users`, `groups`, one of either by id, and a
//! group's `transitiveMembers` (or direct `members`), each paged with an opaque
//! `$skiptoken`, with `$select`, `$top`, `$count`, `$search` (which needs
//! `ConsistencyLevel: eventual`) and Graph's error body everywhere.

use serde_json::{Map, Value, json};

use super::objects::{GROUP_PROPERTIES, Rendered, Row, USER_PROPERTIES, members_of};
use super::server::{Call, Reply};
use super::{Shared, State, jose};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 999;

/// What a skiptoken stands for: the query and where its next page starts.
#[derive(Clone)]
pub struct Cursor {
    resource: Resource,
    select: Option<Vec<String>>,
    top: Option<usize>,
    search: Option<String>,
    count: bool,
    offset: usize,
}

#[derive(Clone, PartialEq, Eq)]
enum Resource {
    Users,
    Groups,
    Members {
        group: String,
        transitive: bool,
        /// `…/microsoft.graph.user`: the OData cast to users.
        users_only: bool,
    },
}

impl Resource {
    fn type_name(&self) -> &'static str {
        match self {
            Resource::Users => "microsoft.graph.user",
            Resource::Groups => "microsoft.graph.group",
            Resource::Members { .. } => "microsoft.graph.directoryObject",
        }
    }

    fn context_set(&self) -> &'static str {
        match self {
            Resource::Users
            | Resource::Members {
                users_only: true, ..
            } => "users",
            Resource::Groups => "groups",
            Resource::Members { .. } => "directoryObjects",
        }
    }
}

/// Graph's error body, with its request ids as members and headers.
pub fn error(status: u16, code: &str, message: &str, call: &Call) -> Reply {
    let (request_id, client_request_id) = request_ids(call);
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": jose::graph_date(jose::now()),
            "request-id": request_id,
            "client-request-id": client_request_id,
        },
    }});
    Reply::json(status, &body)
        .header("request-id", &request_id)
        .header("client-request-id", &client_request_id)
}

fn request_ids(call: &Call) -> (String, String) {
    let client = call
        .header("client-request-id")
        .map_or_else(jose::uuid, str::to_owned);
    (jose::uuid(), client)
}

fn bad_request(message: &str, call: &Call) -> Reply {
    error(400, "Request_BadRequest", message, call)
}

fn not_found(id: &str, call: &Call) -> Reply {
    let message = format!(
        "Resource '{id}' does not exist or one of its queried reference-property objects are \
         not present."
    );
    error(404, "Request_ResourceNotFound", &message, call)
}

/// Everything under `/v1.0/`.
pub fn handle(shared: &Shared, call: &Call, truncate: bool) -> Reply {
    let mut state = shared.state();
    if let Err(reply) = check_token(&state, call) {
        return reply;
    }
    if call.method != "GET" {
        return error(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
            call,
        );
    }
    let path = call.path.trim_start_matches("/v1.0").trim_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let members = |group: &str, transitive: bool, users_only: bool| Resource::Members {
        group: group.to_owned(),
        transitive,
        users_only,
    };
    let resource = match segments.as_slice() {
        ["users"] => Resource::Users,
        ["groups"] => Resource::Groups,
        [set @ ("users" | "groups"), "delta"] => {
            return super::delta::handle(shared, &mut state, call, *set == "users");
        }
        [set @ ("users" | "groups"), id] => return single(shared, &state, call, set, id),
        [set @ ("users" | "groups"), id, "transitiveMemberOf"] => {
            return member_of(shared, &state, call, *set == "users", id);
        }
        ["groups", id, "transitiveMembers"] => members(id, true, false),
        ["groups", id, "transitiveMembers", "microsoft.graph.user"] => members(id, true, true),
        ["groups", id, "members"] => members(id, false, false),
        ["groups", id, "members", "microsoft.graph.user"] => members(id, false, true),
        segments => {
            let first = segments.first().copied().unwrap_or("");
            let message = format!("Resource not found for the segment '{first}'.");
            return error(400, "BadRequest", &message, call);
        }
    };
    list(shared, &mut state, call, resource, truncate)
}

/// Graph takes only access tokens this fake issued, until they expire.
fn check_token(state: &State, call: &Call) -> Result<(), Reply> {
    let refuse = |message: &str| {
        Err(error(401, "InvalidAuthenticationToken", message, call).header(
            "www-authenticate",
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
        ))
    };
    let header = call.header("authorization").unwrap_or("");
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or("")
        .trim();
    if token.is_empty() {
        return refuse("Access token is empty.");
    }
    match state.access_tokens.get(token) {
        None => refuse("Access token validation failure. Invalid audience."),
        Some(issued) if issued.expires_at <= jose::now() => {
            refuse("Lifetime validation failed, the token is expired.")
        }
        Some(_) => Ok(()),
    }
}

/// GET `/v1.0/{users|groups}/{id}/transitiveMemberOf`: every group the object is in,
/// nesting included, in one page (the fake's directories are small enough).
fn member_of(shared: &Shared, state: &State, call: &Call, user: bool, id: &str) -> Reply {
    let exists = if user {
        state.user_index.contains_key(id)
    } else {
        state.group_index.contains_key(id)
    };
    if !exists {
        return not_found(id, call);
    }
    let containing: Vec<Row> = state
        .groups
        .iter()
        .filter(|g| {
            members_of(state, g, true).iter().any(|row| match row {
                Row::User(u) => user && u.id == id,
                Row::Group(inner) => !user && inner.id == id,
                Row::Other(..) => false,
            })
        })
        .map(Row::Group)
        .collect();
    let mut body = format!(
        "{{\"@odata.context\":\"{}/v1.0/$metadata#directoryObjects\",\"value\":[",
        shared.base_url
    );
    for (i, row) in containing.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let rendered = Rendered {
            row,
            select: None,
            typed: true,
        };
        body.push_str(&serde_json::to_string(&rendered).expect("serialise a group"));
    }
    body.push_str("]}");
    success(body.into_bytes(), call)
}

/// GET `/v1.0/users/{id}` or `/v1.0/groups/{id}`.
fn single(shared: &Shared, state: &State, call: &Call, set: &str, id: &str) -> Reply {
    let resource = if set == "users" {
        Resource::Users
    } else {
        Resource::Groups
    };
    let select = match call.param("$select") {
        Some(text) => match parse_select(state, &resource, text, call) {
            Ok(select) => select,
            Err(reply) => return reply,
        },
        None => None,
    };
    let row = match resource {
        Resource::Users => state
            .user_index
            .get(id)
            .map(|&i| Row::User(&state.users[i])),
        _ => state
            .group_index
            .get(id)
            .map(|&i| Row::Group(&state.groups[i])),
    };
    let Some(row) = row else {
        return not_found(id, call);
    };
    let rendered = Rendered {
        row,
        select: select.as_deref(),
        typed: false,
    };
    let mut object = serde_json::to_value(&rendered).expect("serialise a directory object");
    let entity = format!("{}/$entity", context(shared, &resource, select.as_deref()));
    object["@odata.context"] = json!(entity);
    success(object.to_string().into_bytes(), call)
}

fn context(shared: &Shared, resource: &Resource, select: Option<&[String]>) -> String {
    let set = resource.context_set();
    match select {
        Some(names) => format!(
            "{}/v1.0/$metadata#{set}({})",
            shared.base_url,
            names.join(",")
        ),
        None => format!("{}/v1.0/$metadata#{set}", shared.base_url),
    }
}

pub fn success(body: Vec<u8>, call: &Call) -> Reply {
    let (request_id, client_request_id) = request_ids(call);
    Reply::json_bytes(200, body)
        .header(
            "content-type",
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
        )
        .header("odata-version", "4.0")
        .header("request-id", &request_id)
        .header("client-request-id", &client_request_id)
}

/// A listing page: the first from the query, later ones from the skiptoken's cursor.
fn list(
    shared: &Shared,
    state: &mut State,
    call: &Call,
    resource: Resource,
    truncate: bool,
) -> Reply {
    let cursor = match call.param("$skiptoken") {
        Some(token) => match state.cursors.get(token) {
            Some(cursor) if cursor.resource == resource => cursor.clone(),
            _ => return bad_request("Invalid page token specified.", call),
        },
        None => match parse_query(state, &resource, call) {
            Ok(cursor) => cursor,
            Err(reply) => return reply,
        },
    };
    let eventual = call
        .header("consistencylevel")
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    for (used, option) in [
        (cursor.search.is_some(), "$search"),
        (cursor.count, "$count"),
    ] {
        if used && !eventual {
            let message = format!(
                "Request with {option} query parameter only works through MSGraph with a \
                 special request header: 'ConsistencyLevel: eventual'"
            );
            return error(400, "Request_UnsupportedQuery", &message, call);
        }
    }
    let search = cursor.search.as_deref().map(str::to_lowercase);
    let matches = |row: &Row| match &search {
        None => true,
        Some(term) => row
            .display_name()
            .is_some_and(|name| name.to_lowercase().contains(term)),
    };
    let top = cursor.top.unwrap_or(DEFAULT_PAGE);
    let member_rows;
    let (page, has_more, total) = match &resource {
        // Without $search a page is a slice: no walk over the users before it.
        Resource::Users if search.is_none() => {
            let rest = state.users.get(cursor.offset..).unwrap_or(&[]);
            let page: Vec<Row> = rest.iter().take(top).map(Row::User).collect();
            (page, rest.len() > top, state.users.len())
        }
        Resource::Groups if search.is_none() => {
            let rest = state.groups.get(cursor.offset..).unwrap_or(&[]);
            let page: Vec<Row> = rest.iter().take(top).map(Row::Group).collect();
            (page, rest.len() > top, state.groups.len())
        }
        Resource::Users => paged(state.users.iter().map(Row::User), &matches, &cursor, top),
        Resource::Groups => paged(state.groups.iter().map(Row::Group), &matches, &cursor, top),
        Resource::Members {
            group,
            transitive,
            users_only,
        } => {
            let Some(&index) = state.group_index.get(group) else {
                return not_found(group, call);
            };
            member_rows = members_of(state, &state.groups[index], *transitive);
            let rows = member_rows
                .iter()
                .copied()
                .filter(|row| !*users_only || matches!(row, Row::User(_)));
            paged(rows, &matches, &cursor, top)
        }
    };
    let typed = matches!(
        resource,
        Resource::Members {
            users_only: false,
            ..
        }
    );
    // The page borrows the directory, so the next page's cursor is registered after it is
    // written. A truncated page links to a token that is never registered.
    let next_token = (truncate || has_more).then(|| jose::random_token(48));
    let next_cursor = (has_more && !truncate).then(|| Cursor {
        offset: cursor.offset + top,
        ..cursor.clone()
    });
    let serialise = "serialise a Graph page";
    let mut body = Vec::with_capacity(256 + page.len() * 320);
    body.extend_from_slice(b"{\"@odata.context\":");
    let context = context(shared, &resource, cursor.select.as_deref());
    serde_json::to_writer(&mut body, &context).expect(serialise);
    if cursor.count {
        body.extend_from_slice(format!(",\"@odata.count\":{total}").as_bytes());
    }
    if let Some(token) = &next_token {
        body.extend_from_slice(b",\"@odata.nextLink\":");
        let link = next_link(shared, call, &cursor, token);
        serde_json::to_writer(&mut body, &link).expect(serialise);
    }
    body.extend_from_slice(b",\"value\":[");
    for (i, row) in page.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let rendered = Rendered {
            row: *row,
            select: cursor.select.as_deref(),
            typed,
        };
        serde_json::to_writer(&mut body, &rendered).expect(serialise);
    }
    body.extend_from_slice(b"]}");
    if let (Some(token), Some(next)) = (next_token, next_cursor) {
        state.cursors.insert(token, next);
    }
    success(body, call)
}

/// Skips to the cursor's offset in a filtered listing; also counts it for `$count`.
fn paged<'a>(
    rows: impl Iterator<Item = Row<'a>>,
    matches: &dyn Fn(&Row) -> bool,
    cursor: &Cursor,
    top: usize,
) -> (Vec<Row<'a>>, bool, usize) {
    let mut page = Vec::new();
    let (mut seen, mut has_more) = (0, false);
    for row in rows.filter(|row| matches(row)) {
        if seen >= cursor.offset && page.len() < top {
            page.push(row);
        } else if seen >= cursor.offset {
            has_more = true;
        }
        seen += 1;
    }
    (page, has_more, seen)
}

fn next_link(shared: &Shared, call: &Call, cursor: &Cursor, token: &str) -> String {
    let mut query = Vec::new();
    if let Some(select) = &cursor.select {
        query.push(format!("$select={}", select.join(",")));
    }
    if let Some(search) = &cursor.search {
        let quoted = format!("\"displayName:{search}\"");
        let encoded: String = url::form_urlencoded::byte_serialize(quoted.as_bytes()).collect();
        query.push(format!("$search={encoded}"));
    }
    if cursor.count {
        query.push("$count=true".into());
    }
    if let Some(top) = cursor.top {
        query.push(format!("$top={top}"));
    }
    query.push(format!("$skiptoken={token}"));
    format!("{}{}?{}", shared.base_url, call.path, query.join("&"))
}

/// The first page's query, checked as Graph checks it.
fn parse_query(state: &State, resource: &Resource, call: &Call) -> Result<Cursor, Reply> {
    let mut cursor = Cursor {
        resource: resource.clone(),
        select: None,
        top: None,
        search: None,
        count: false,
        offset: 0,
    };
    for (name, value) in &call.query {
        match name.as_str() {
            "$select" => cursor.select = parse_select(state, resource, value, call)?,
            "$top" => match value.trim().parse::<usize>() {
                Ok(top) if (1..=MAX_PAGE).contains(&top) => cursor.top = Some(top),
                _ => {
                    let message = format!(
                        "Invalid page size specified: '{value}'. Must be between 1 and \
                         {MAX_PAGE} inclusive."
                    );
                    return Err(bad_request(&message, call));
                }
            },
            "$search" => cursor.search = Some(parse_search(value, call)?),
            "$count" => match value.as_str() {
                "true" => cursor.count = true,
                "false" => cursor.count = false,
                _ => {
                    return Err(bad_request(
                        &format!("Invalid $count value '{value}'."),
                        call,
                    ));
                }
            },
            "$filter" | "$orderby" | "$expand" | "$skip" | "$format" => {
                let message = format!("The Entra fake does not implement the {name} query option.");
                return Err(error(400, "Request_UnsupportedQuery", &message, call));
            }
            other if other.starts_with('$') => {
                let message = format!(
                    "The query specified in the URI is not valid. Unknown system query option \
                     '{other}'."
                );
                return Err(error(400, "BadRequest", &message, call));
            }
            _ => {}
        }
    }
    Ok(cursor)
}

/// `"displayName:term"`, quotes included: the term.
fn parse_search(value: &str, call: &Call) -> Result<String, Reply> {
    let inner = value
        .trim()
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'));
    let Some(inner) = inner else {
        return Err(bad_request(
            "Syntax error: the $search clause must be quoted, as in $search=\"displayName:term\".",
            call,
        ));
    };
    match inner.split_once(':') {
        Some((property, term)) if property.eq_ignore_ascii_case("displayName") => Ok(term.into()),
        _ => {
            let message = format!("The Entra fake searches displayName only, not '{inner}'.");
            Err(error(400, "Request_UnsupportedQuery", &message, call))
        }
    }
}

/// The canonical names `$select` asks for (case-insensitive, as Graph reads them).
fn parse_select(
    state: &State,
    resource: &Resource,
    text: &str,
    call: &Call,
) -> Result<Option<Vec<String>>, Reply> {
    let mut names: Vec<String> = Vec::new();
    for wanted in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let known: Vec<&[&str]> = match resource {
            Resource::Users => vec![USER_PROPERTIES],
            Resource::Groups => vec![GROUP_PROPERTIES],
            Resource::Members { .. } => vec![USER_PROPERTIES, GROUP_PROPERTIES],
        };
        let canonical = known
            .iter()
            .flat_map(|list| list.iter())
            .find(|name| name.eq_ignore_ascii_case(wanted))
            .map(|name| name.to_string())
            .or_else(|| extra_property(state, resource, wanted));
        let Some(canonical) = canonical else {
            let message = format!(
                "Could not find a property named '{wanted}' on type '{}'.",
                resource.type_name()
            );
            return Err(bad_request(&message, call));
        };
        if !names.contains(&canonical) {
            names.push(canonical);
        }
    }
    Ok(if names.is_empty() { None } else { Some(names) })
}

/// A property outside the known lists that some object carries in `extra`.
fn extra_property(state: &State, resource: &Resource, wanted: &str) -> Option<String> {
    let in_map = |extra: &Map<String, Value>| {
        extra
            .keys()
            .find(|k| k.eq_ignore_ascii_case(wanted))
            .cloned()
    };
    let users = || state.users.iter().find_map(|u| in_map(&u.extra));
    let groups = || state.groups.iter().find_map(|g| in_map(&g.extra));
    match resource {
        Resource::Users => users(),
        Resource::Groups => groups(),
        Resource::Members { .. } => users().or_else(groups),
    }
}
