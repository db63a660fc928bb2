//! What each listing lists, in which order: the checks of users.list's, groups.list's and
//! members.list's own parameters (`customer`/`domain`, `orderBy`, `showDeleted`, `userKey`,
//! `includeDerivedMembership`, `roles`), each listing's binding (the query a page token
//! belongs to) and its rows, computed once per directory generation. Where Google
//! documents no message for a refused parameter, the answer is its generic
//! `invalidParameter` one ("Invalid value '…'").

use std::sync::Arc;

use super::errors::{
    bad_request, forbidden, invalid_input, invalid_parameter, not_found, unsupported,
};
use super::objects::{Directory, Row};
use super::server::{Call, Reply};
use super::{DirectoryGroup, DirectoryUser, GroupMember};

fn order(call: &Call, allowed: &[&str]) -> Result<(String, bool), Reply> {
    let order_by = call.param("orderBy").unwrap_or("");
    if !order_by.is_empty() && !allowed.contains(&order_by) {
        let message = format!(
            "Invalid value '{order_by}'. Values must be one of: {}",
            allowed.join(", ")
        );
        return Err(invalid_parameter("orderBy", &message));
    }
    let descending = match call
        .param("sortOrder")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(other) => {
            let message =
                format!("Invalid value '{other}'. Values must be one of: ASCENDING, DESCENDING");
            return Err(invalid_parameter("sortOrder", &message));
        }
    };
    Ok((order_by.to_owned(), descending))
}

/// `customer` (`my_customer` or the customer id) and/or `domain`, as users.list and
/// groups.list take them; at least one is required (unless `allow_neither`).
fn scope_of_listing(
    directory: &Directory,
    call: &Call,
    allow_neither: bool,
) -> Result<Option<String>, Reply> {
    let (customer, domain) = (call.param("customer"), call.param("domain"));
    if customer.is_none() && domain.is_none() && !allow_neither {
        return Err(bad_request());
    }
    if customer.is_some_and(|c| c != "my_customer" && c != directory.customer_id) {
        return Err(bad_request());
    }
    if call.param("query").is_some() {
        return Err(unsupported("the query parameter"));
    }
    match domain {
        Some(domain) if !directory.knows_domain(domain) => Err(forbidden()),
        Some(domain) => Ok(Some(domain.to_lowercase())),
        None => Ok(None),
    }
}

fn in_domain(email: &str, domain: &Option<String>) -> bool {
    domain.as_ref().is_none_or(|d| {
        email
            .rsplit_once('@')
            .is_some_and(|(_, e)| e.eq_ignore_ascii_case(d))
    })
}

fn flag(call: &Call, name: &str) -> Result<bool, Reply> {
    match call.param(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(invalid_parameter(
            name,
            &format!("Invalid value '{other}'. Values must be true or false"),
        )),
    }
}

pub fn user_rows(directory: &mut Directory, call: &Call) -> Result<(String, Arc<Vec<Row>>), Reply> {
    let domain = scope_of_listing(directory, call, false)?;
    match call.param("viewType") {
        None | Some("admin_view") => {}
        Some("domain_public") => return Err(unsupported("viewType=domain_public")),
        Some(other) => {
            return Err(invalid_parameter(
                "viewType",
                &format!("Invalid value '{other}'"),
            ));
        }
    }
    let (order_by, descending) = order(call, &["email", "givenName", "familyName"])?;
    let deleted = flag(call, "showDeleted")?;
    let binding = format!(
        "users|{}|{domain:?}|{order_by}|{descending}|{deleted}",
        call.param("customer").unwrap_or("")
    );
    let rows = directory.listing(&binding, |d| {
        let mut rows: Vec<(usize, &DirectoryUser)> = if deleted {
            d.deleted.iter().map(|(u, _)| u).enumerate().collect()
        } else {
            d.users.iter().enumerate().collect()
        };
        rows.retain(|(_, u)| in_domain(&u.primary_email, &domain));
        match order_by.as_str() {
            "email" => rows.sort_by_cached_key(|(_, u)| u.primary_email.to_lowercase()),
            "givenName" => rows.sort_by_cached_key(|(_, u)| u.given_name.to_lowercase()),
            "familyName" => rows.sort_by_cached_key(|(_, u)| u.family_name.to_lowercase()),
            _ => {}
        }
        if descending && !order_by.is_empty() {
            rows.reverse();
        }
        let row = |i| {
            if deleted {
                Row::Deleted(i)
            } else {
                Row::User(i)
            }
        };
        rows.into_iter().map(|(i, _)| row(i)).collect()
    });
    Ok((binding, rows))
}

pub fn group_rows(
    directory: &mut Directory,
    call: &Call,
) -> Result<(String, Arc<Vec<Row>>), Reply> {
    let user_key = call.param("userKey");
    let domain = scope_of_listing(directory, call, user_key.is_some())?;
    let member = match user_key {
        None => None,
        Some(key) => match directory.find_user(key) {
            Some(i) => Some(directory.users[i].id.clone()),
            None => return Err(not_found("userKey")),
        },
    };
    let (order_by, descending) = order(call, &["email"])?;
    let binding = format!(
        "groups|{}|{domain:?}|{member:?}|{order_by}|{descending}",
        call.param("customer").unwrap_or("")
    );
    let rows = directory.listing(&binding, |d| {
        let has_member = |g: &DirectoryGroup| {
            member.as_ref().is_none_or(|id| {
                g.members.iter().any(|m| {
                    matches!(m, GroupMember::User(u) | GroupMember::Owner(u)
                        | GroupMember::Manager(u) if u == id)
                })
            })
        };
        let mut rows: Vec<(usize, &DirectoryGroup)> = d
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| in_domain(&g.email, &domain) && has_member(g))
            .collect();
        if order_by == "email" {
            rows.sort_by_cached_key(|(_, g)| g.email.to_lowercase());
            if descending {
                rows.reverse();
            }
        }
        rows.into_iter().map(|(i, _)| Row::Group(i)).collect()
    });
    Ok((binding, rows))
}

pub fn member_rows(
    directory: &mut Directory,
    call: &Call,
    group_key: &str,
) -> Result<(String, Arc<Vec<Row>>), Reply> {
    let Some(group) = directory.find_group(group_key) else {
        return Err(not_found("groupKey"));
    };
    let derived = flag(call, "includeDerivedMembership")?;
    let mut roles: Vec<&str> = match call.param("roles") {
        None => Vec::new(),
        Some(text) => text.split(',').map(str::trim).collect(),
    };
    if roles
        .iter()
        .any(|r| !matches!(*r, "OWNER" | "MANAGER" | "MEMBER"))
    {
        return Err(invalid_input());
    }
    roles.sort_unstable();
    roles.dedup();
    let id = directory.groups[group].id.clone();
    let binding = format!("members|{id}|{derived}|{}", roles.join(","));
    let rows = directory.listing(&binding, |d| {
        let mut rows = d.members_of(group, derived);
        if !roles.is_empty() {
            rows.retain(|row| matches!(row, Row::Member(role, _) if roles.contains(role)));
        }
        rows
    });
    Ok((binding, rows))
}
