//! The audit log: admin actions and sign-ins. Never holds a secret.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::UserId;
use crate::db::paging::{Keyset, Window, contains_pattern, lower};
use crate::db::schema::audit_events;

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: i64,
    pub actor_user_id: Option<UserId>,
    pub actor_name: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub client_ip: String,
}

#[derive(Insertable, Default)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub occurred_at: i64,
    pub actor_user_id: Option<UserId>,
    pub actor_name: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
    pub client_ip: &'a str,
}

pub fn record(conn: &mut DbConnection, event: &NewAuditEvent) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)
        .map(drop)
}

pub fn recent(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditEvent>> {
    audit_events::table
        .order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)
}

/// Which events the audit page shows; empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Part of the actor's name.
    pub actor: String,
    /// One action, by its stored name.
    pub action: String,
    /// Part of the subject.
    pub target: String,
    /// From this instant (inclusive), up to that one (exclusive), Unix seconds.
    pub from: Option<i64>,
    pub until: Option<i64>,
}

/// One page of events, newest first: `After` an id is older than it, `Before` newer.
pub fn page(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    at: &Keyset<()>,
    limit: i64,
) -> QueryResult<Window<AuditEvent>> {
    let mut q = filtered(filter);
    q = match at {
        Keyset::First => q.order(audit_events::id.desc()),
        Keyset::After((), id) => q
            .filter(audit_events::id.lt(*id))
            .order(audit_events::id.desc()),
        Keyset::Before((), id) => q
            .filter(audit_events::id.gt(*id))
            .order(audit_events::id.asc()),
    };
    let rows = q
        .limit(limit + 1)
        .select(AuditEvent::as_select())
        .load(conn)?;
    Ok(Window::of(rows, at, limit))
}

/// Every matching event, newest first, up to `limit`, for an export.
pub fn all_matching(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    filtered(filter)
        .order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)
}

pub fn count_matching(conn: &mut DbConnection, filter: &AuditFilter) -> QueryResult<i64> {
    filtered(filter).count().get_result(conn)
}

type Filtered<'a> = audit_events::BoxedQuery<'a, crate::db::MultiBackend>;

fn filtered(filter: &AuditFilter) -> Filtered<'static> {
    let mut q = audit_events::table.into_boxed();
    if !filter.actor.trim().is_empty() {
        q = q.filter(
            lower(audit_events::actor_name)
                .like(contains_pattern(&filter.actor))
                .escape('\\'),
        );
    }
    if !filter.action.is_empty() {
        q = q.filter(audit_events::action.eq(filter.action.clone()));
    }
    if !filter.target.trim().is_empty() {
        q = q.filter(
            lower(audit_events::target)
                .like(contains_pattern(&filter.target))
                .escape('\\'),
        );
    }
    if let Some(from) = filter.from {
        q = q.filter(audit_events::occurred_at.ge(from));
    }
    if let Some(until) = filter.until {
        q = q.filter(audit_events::occurred_at.lt(until));
    }
    q
}
