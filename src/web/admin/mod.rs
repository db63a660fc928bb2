//! The admin console. Every handler takes `Admin`, so non-admins get 403 and anonymous
//! visitors are sent to sign in, with or without htmx.

pub mod audit;
pub mod confirm;
pub mod dashboard;
pub mod groups;
pub mod profiles;
pub mod runs;
pub mod schedules;
pub mod users;
