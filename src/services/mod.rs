//! The service layer: what the product does, between the web handlers (which extract input,
//! call one function here and render) and the models and connectors. Each service takes the
//! application state (or a narrower context, as the sync engine's `SyncContext`), returns a
//! typed outcome, and writes its audit event in the transaction of the change it records.
//!
//! By subject: `sessions` (signed-in users, sign-in and the MFA step, sign-out), `account`
//! (My account), `users` (the admin's user actions), `profiles` (directory profiles: save,
//! probe, delete), `runs` (synchronisation runs), `schedules`, `setup` (the first admin),
//! `dashboard`, `groups` and `audit` (the console's read-only lists).

pub mod account;
pub mod audit;
pub mod dashboard;
pub mod groups;
pub mod oidc;
pub mod profiles;
pub mod runs;
pub mod schedules;
pub mod sessions;
pub mod setup;
pub mod users;
