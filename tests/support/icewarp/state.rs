//! What the fake knows, behind one lock that no task holds across an await.

use std::collections::HashMap;
use std::time::Duration;

use super::directory::Directory;
use super::{Command, Fault, Recorded, http};

/// What a sid stands for.
pub struct Session {
    pub email: String,
    /// The account's right at login: an administrator's session may call everything.
    pub admin: bool,
}

pub type PendingFault = http::PendingFault<Command, Fault>;

pub struct State {
    pub directory: Directory,
    /// Live sid → session; `logout` removes it.
    pub sessions: HashMap<String, Session>,
    pub sessions_opened: usize,
    pub faults: Vec<PendingFault>,
    pub latency: Duration,
    pub failed_login_delay: Duration,
    /// Answer `text/xml` instead of `application/xml`.
    pub text_xml: bool,
    pub requests: Vec<Recorded>,
}

impl State {
    pub fn new() -> State {
        State {
            directory: Directory::default(),
            sessions: HashMap::new(),
            sessions_opened: 0,
            faults: Vec::new(),
            latency: Duration::ZERO,
            failed_login_delay: Duration::ZERO,
            text_xml: false,
            requests: Vec::new(),
        }
    }
}
