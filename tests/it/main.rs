//! Roster's one integration-test binary. Database tests run on SQLite and on PostgreSQL
//! (`<test>::sqlite`, `<test>::postgres`); external servers are real and shared per run.

#[path = "../support/mod.rs"]
mod support;

mod app_integration;
mod app_integration_fake;
mod architecture;
mod browser;
mod browser_console;
mod browser_entra;
mod browser_google;
mod browser_http_kinds;
mod cli;
mod config;
mod console_feedback;
mod console_lists;
mod database;
mod directory;
mod directory_sign_in;
mod entra;
mod entra_delta;
mod entra_fake;
mod entra_sign_in;
mod google;
mod google_fake;
mod google_sign_in;
mod harness;
mod icewarp;
mod icewarp_fake;
mod mfa;
mod profile_pages;
mod profile_trust;
mod profiles;
mod schedules;
mod secrets;
mod security;
mod sign_in;
mod sign_in_trust;
mod sync;
mod sync_integrity;
mod users;
