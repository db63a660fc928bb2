//! One file per table: row structs, insert/change forms and queries. Models never panic:
//! they return `QueryResult` and leave the policy to the caller.

pub mod audit_events;
pub mod change_cursors;
pub mod dependent_configurations;
pub mod directory_groups;
pub mod directory_profiles;
pub mod master_keys;
pub mod oidc_logins;
pub mod recovery_codes;
pub mod schedules;
pub mod secrets;
pub mod sessions;
pub mod setup_tokens;
pub mod sign_in_domains;
pub mod sign_in_throttle;
pub mod sync_leases;
pub mod sync_memberships;
pub mod sync_runs;
pub mod user_privileges;
pub mod users;
