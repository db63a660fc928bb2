//! Roster: a directory-synced sign-in portal. One binary; SQLite by default, PostgreSQL
//! when several instances share a database.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod db;
pub mod directory;
pub mod error;
pub mod jobs;
pub mod profiles;
pub mod schedules;
pub mod secrets;
pub mod services;
pub mod startup;
pub mod state;
pub mod sync;
pub mod time;
pub mod tls;
pub mod validation;
pub mod web;

/// rustls needs one crypto provider for the whole process (ring, see DEPENDENCIES.md).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// mimalloc instead of glibc's allocator: a sync decodes and drops millions of small strings,
/// and glibc's malloc/free showed up at the top of the profile (`cargo bench --bench sync`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
