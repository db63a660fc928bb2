//! Background jobs, one file per job. Each loops on its own timer, logs a failed round and
//! carries on, and exposes `run_once` so tests drive it with their own clock.

pub mod scheduler;
pub mod session_cleanup;
