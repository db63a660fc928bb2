//! The audit log: admin actions and sign-ins. Never holds a secret.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::ids::UserId;
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
