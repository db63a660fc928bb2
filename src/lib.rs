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

/// Gives what a phase of a run freed back to the system now. mimalloc returns freed memory
/// only from a later call into it, after a delay; the phase after a read or a diff fills
/// large blocks it allocated at once, with no such calls, so a million-user run held the
/// freed maps and its new plan together (100 MB more at each phase, `cargo bench --bench
/// sync -- --users 1000000`).
pub fn release_freed_memory() {
    unsafe extern "C" {
        /// mimalloc's `void mi_collect(bool force)` (the `mimalloc` crate links it).
        fn mi_collect(force: bool);
    }
    // SAFETY: mimalloc's own entry point, without arguments to get wrong; it walks the
    // calling thread's heap and purges the arenas every thread shares, under its own locks.
    unsafe { mi_collect(true) }
}
