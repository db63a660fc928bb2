//! The audit page: every event, filtered and paged newest first, each linked to its subject
//! while that still exists, and the filtered list as CSV.

use std::collections::HashMap;

use crate::audit::{Action, SubjectKind};
use crate::db::DbConnection;
use crate::db::ids::{ProfileId, RunId, ScheduleId, UserId};
use crate::db::models::audit_events::{self, AuditEvent, AuditFilter};
use crate::db::models::user_privileges::Privilege;
use crate::db::models::{directory_profiles, schedules, sync_runs, users};
use crate::db::paging::{Keyset, Window};
use crate::error::AppError;
use crate::state::AppState;

pub const PAGE_SIZE: i64 = 50;
/// An export holds at most this many events (the newest); the page says so.
pub const EXPORT_LIMIT: i64 = 100_000;

/// What an event is about, where it still exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    User(UserId),
    Profile(ProfileId),
    Run(RunId),
    Schedule(ScheduleId),
}

/// An event in words.
pub struct Event {
    pub id: i64,
    pub occurred_at: i64,
    pub actor: String,
    pub actor_user: Option<UserId>,
    /// The action's words ("Sign-in refused"), or its stored name when no longer known.
    pub action: String,
    pub target: String,
    pub subject: Option<Subject>,
    pub detail: String,
    pub client_ip: String,
}

pub struct AuditPage {
    pub window: Window<Event>,
    pub total: i64,
}

/// Where a page starts: the first (newest), after an event (older ones), before it.
#[derive(Clone, Copy, Debug, Default)]
pub enum From {
    #[default]
    Newest,
    Older(i64),
    Newer(i64),
}

pub async fn page(
    state: &AppState,
    filter: AuditFilter,
    from: From,
) -> Result<AuditPage, AppError> {
    state
        .db
        .run(move |c| -> Result<AuditPage, AppError> {
            let at = match from {
                From::Newest => Keyset::First,
                From::Older(id) => Keyset::After((), id),
                From::Newer(id) => Keyset::Before((), id),
            };
            let found = audit_events::page(c, &filter, &at, PAGE_SIZE)?;
            let total = audit_events::count_matching(c, &filter)?;
            let rows = in_words(c, found.rows)?;
            Ok(AuditPage {
                window: Window {
                    rows,
                    has_previous: found.has_previous,
                    has_next: found.has_next,
                },
                total,
            })
        })
        .await
}

/// The filtered events as CSV, newest first (at most `EXPORT_LIMIT`).
pub async fn export(state: &AppState, filter: AuditFilter) -> Result<Vec<u8>, AppError> {
    state
        .db
        .run(move |c| -> Result<Vec<u8>, AppError> {
            let events = audit_events::all_matching(c, &filter, EXPORT_LIMIT)?;
            let mut out = csv::Writer::from_writer(Vec::new());
            let header = [
                "id",
                "time (UTC)",
                "actor",
                "action",
                "subject",
                "detail",
                "client address",
            ];
            let csv_error = |e: csv::Error| AppError::from(anyhow::Error::from(e));
            out.write_record(header).map_err(csv_error)?;
            for e in events {
                out.write_record([
                    e.id.to_string(),
                    crate::time::format_time(e.occurred_at),
                    spreadsheet_safe(&e.actor_name),
                    action_words(&e.action),
                    spreadsheet_safe(&e.target),
                    spreadsheet_safe(&detail_words(&e.detail)),
                    e.client_ip,
                ])
                .map_err(csv_error)?;
            }
            out.into_inner()
                .map_err(|e| AppError::from(anyhow::Error::msg(e.to_string())))
        })
        .await
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a
/// leading `'`: names come from directories and sign-in forms.
fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

pub fn action_words(action: &str) -> String {
    Action::parse(action).map_or_else(|| action.replace('_', " "), |a| a.label().to_owned())
}

/// Privilege names in a detail (`log_on,read_own_archive`) become their labels ("Log on,
/// Read own archive"); the rest stays as written.
pub fn detail_words(detail: &str) -> String {
    detail
        .split(' ')
        .map(|word| {
            let names: Vec<&str> = word.split(',').collect();
            let labels: Option<Vec<&str>> = names
                .iter()
                .map(|n| Privilege::parse(n).map(Privilege::label))
                .collect();
            match labels {
                Some(labels) if !word.is_empty() => labels.join(", "),
                _ => word.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn in_words(
    c: &mut DbConnection,
    events: Vec<AuditEvent>,
) -> Result<Vec<Event>, AppError> {
    let mut subjects: HashMap<(String, String), Option<Subject>> = HashMap::new();
    // One query for the actors that still exist, not one an event.
    let actor_ids: Vec<UserId> = events.iter().filter_map(|e| e.actor_user_id).collect();
    let actors = users::existing(c, &actor_ids)?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let action = Action::parse(&e.action);
        let key = (e.action.clone(), e.target.clone());
        let subject = match subjects.get(&key) {
            Some(s) => *s,
            None => {
                let found = match action {
                    Some(a) => subject_of(c, a.subject(), &e.target)?,
                    None => None,
                };
                subjects.insert(key, found);
                found
            }
        };
        let actor_user = e.actor_user_id.filter(|id| actors.contains(id));
        out.push(Event {
            id: e.id,
            occurred_at: e.occurred_at,
            actor: e.actor_name,
            actor_user,
            action: action_words(&e.action),
            subject,
            target: e.target,
            detail: detail_words(&e.detail),
            client_ip: e.client_ip,
        });
    }
    Ok(out)
}

/// The thing a target names, if it still exists (and is only one).
fn subject_of(
    c: &mut DbConnection,
    kind: SubjectKind,
    target: &str,
) -> Result<Option<Subject>, AppError> {
    let number = |prefix: &str| {
        target
            .strip_prefix(prefix)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<i64>().ok())
    };
    Ok(match kind {
        SubjectKind::User if !target.trim().is_empty() => {
            match users::find_for_login(c, target)?.as_slice() {
                [one] => Some(Subject::User(one.id)),
                _ => None,
            }
        }
        SubjectKind::User => None,
        SubjectKind::Profile => directory_profiles::find_by_name_or_id(c, target)?
            .filter(|p| p.name == target)
            .map(|p| Subject::Profile(p.id)),
        SubjectKind::Run => match number("run ") {
            Some(n) => sync_runs::find(c, RunId(n))?.map(|r| Subject::Run(r.id)),
            None => None,
        },
        SubjectKind::Schedule => match number("schedule ") {
            Some(n) => schedules::find(c, ScheduleId(n))?.map(|s| Subject::Schedule(s.id)),
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_words() {
        assert_eq!(action_words("user_mfa_reset"), "MFA reset");
        assert_eq!(action_words("something_new"), "something new");
        assert_eq!(
            detail_words("privileges: log_on,read_own_archive"),
            "privileges: Log on, Read own archive"
        );
        assert_eq!(detail_words("wrong password"), "wrong password");
    }

    #[test]
    fn cells_that_would_be_formulas_are_quoted() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("ann"), "ann");
    }
}
