//! A local fake of the IceWarp Server administration API, in-process on
//! `https://127.0.0.1:0/icewarpapi/` behind a self-signed certificate (for `127.0.0.1` and
//! `localhost`; `certificate_pem()` is what a profile's "Trusted certificate (PEM)" pins):
//! `authenticate` and `logout` with sessions and their rights, `getdomainsinfolist`,
//! `getaccountsinfolist` and `getaccountmemberinfolist` with their filters and paging,
//! IceWarp's error `<iq>`s, a failed-login delay, and injectable faults.
//!
//! It follows `PROTOCOLS.md` ("IceWarp API") to the letter: the `<iq>`/`<query
//! xmlns="admin:iq:rpc">` envelope both ways, the sid as the answer's `sid` attribute,
//! `<result>1</result>` for a login, `<error uid="…"/>` with `auth_login_invalid`,
//! `account_disabled_2` and `session_invalid`, `<offset>` and `<overallcount>` beside the
//! `<items>`, the nested `<accountstate><state>`, account types 0/1/7/8, answers in
//! `application/xml` (HTTP 200 for results and errors alike), `text/xml` or
//! `application/xml` accepted. It checks what the server checks — a live sid, an
//! administrator's session for anything but `logout`, the password of an enabled account,
//! well-formed XML — so a test passes because the client is right, not because the fake is
//! lenient.
//!
//! IceWarp's reference is thin; where it is silent the fake guesses, and says so here:
//! - the `classname`s (`tpropertyinfolist`, `tdomaininfo`, `taccountsinfolist`,
//!   `taccountinfo`, `taccountstate`, `taccountmemberinfolist`, `taccountmemberinfo`), a
//!   member as `<val>`, a domain's `<description>`, aliases as one `;`-separated
//!   `<aliases>` (written as the test gave them; IceWarp keeps local parts);
//! - the uids `command_unknown`, `xml_invalid` (also for a well-formed body that is no
//!   `<iq><query xmlns="admin:iq:rpc"><commandname>` envelope), `access_denied`,
//!   `domain_invalid`, `account_invalid`, `param_invalid` (also for an `authtype` other
//!   than 0: the fake has no digest login), and the `wm-` sid prefix;
//! - the order of the checks: an unknown command is `command_unknown` before any sid is
//!   looked at, then `session_invalid`, then `access_denied`, then the parameters;
//! - command names compared case-insensitively; a login by primary address only (not by
//!   alias); `namemask` a case-insensitive substring of a domain's name, an account's
//!   address or full name, a member's address (empty or `*`: all; `*` at the ends is
//!   ignored); a `typemask` on domains matches type 0 (every domain here is standard);
//! - paging: a missing `offset` is 0, `count` must be 1 or more (else `param_invalid`) and
//!   more than 1000 reads as 1000; members are listed sorted by address, like the rest;
//! - outside the API: another path is 404 (HTML), another method 405, another content
//!   type 415 (plain text); those are not recorded.
//!
//! Self-contained (no `crate::`), so a benchmark can include it with
//! `#[path = "../tests/support/icewarp.rs"] mod icewarp_fake;`.
#![allow(dead_code)]

// Explicit paths: the same files must resolve whether this module is `support::icewarp` or
// a benchmark's `#[path]`-included `icewarp_fake`.
#[path = "icewarp/commands.rs"]
mod commands;
#[path = "icewarp/directory.rs"]
mod directory;
// The Entra and Google fakes include it as well: each fake stays includable on its own.
#[allow(clippy::duplicate_mod)]
#[path = "fake_http.rs"]
mod http;
#[path = "icewarp/server.rs"]
mod server;
#[path = "icewarp/state.rs"]
mod state;
#[path = "icewarp/xml.rs"]
mod xml;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

// A benchmark that includes this file may not use it.
#[allow(unused_imports)]
pub use directory::GENERATED_PASSWORD;
use state::{PendingFault, State};

/// A handle on a running fake; clones share it. The server stops with the last handle.
#[derive(Clone)]
pub struct IceWarpFake {
    shared: Arc<Shared>,
    _accept: Arc<http::AcceptLoop>,
}

/// What the connection tasks share with the handle.
struct Shared {
    server: String,
    certificate_pem: String,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `<accounttype>`: 0 user, 1 mailing list, 7 group, 8 resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountKind {
    User,
    MailingList,
    Group,
    Resource,
}

/// An account of any type. Its domain is its address's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub email: String,
    /// The full name (`<name>`).
    pub name: String,
    /// Empty: no login (groups and lists have none).
    pub password: String,
    pub kind: AccountKind,
    /// `<accountstate><state>`: 0 enabled; anything else refuses the login with
    /// `account_disabled_2`.
    pub state: u32,
    /// May call everything; other sessions may only `logout`.
    pub is_admin: bool,
    pub aliases: Vec<String>,
    /// Of a group or list: addresses (users, or other groups and lists — never expanded).
    pub members: Vec<String>,
}

impl Account {
    /// An enabled user who is not an administrator.
    pub fn user(email: &str, name: &str, password: &str) -> Account {
        Account {
            email: email.into(),
            name: name.into(),
            password: password.into(),
            kind: AccountKind::User,
            state: 0,
            is_admin: false,
            aliases: Vec::new(),
            members: Vec::new(),
        }
    }

    pub fn group(email: &str, name: &str, members: &[&str]) -> Account {
        Account {
            kind: AccountKind::Group,
            members: members.iter().map(|m| m.to_string()).collect(),
            ..Account::user(email, name, "")
        }
    }

    /// A mailing list.
    pub fn list(email: &str, name: &str, members: &[&str]) -> Account {
        Account {
            kind: AccountKind::MailingList,
            ..Account::group(email, name, members)
        }
    }
}

/// Which requests a fault or a count is about, by `<commandname>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Authenticate,
    Logout,
    /// `getdomainsinfolist`.
    Domains,
    /// `getaccountsinfolist`.
    Accounts,
    /// `getaccountmemberinfolist`.
    Members,
    /// Every request, unknown commands and unreadable bodies included.
    Any,
}

impl Command {
    /// The command a `<commandname>` names, in any case.
    pub fn of(name: &str) -> Option<Command> {
        Some(match name.to_ascii_lowercase().as_str() {
            "authenticate" => Command::Authenticate,
            "logout" => Command::Logout,
            "getdomainsinfolist" => Command::Domains,
            "getaccountsinfolist" => Command::Accounts,
            "getaccountmemberinfolist" => Command::Members,
            _ => return None,
        })
    }
}

/// A misbehaviour, fired once by `fault`. Those that stand for a request that never reached
/// IceWarp or that it refused (`Stall`, `Status`, `Html`, `ErrorIq`) do not run the command;
/// those that damage its answer (`CutOff`, `Malformed`, `NoOverallCount`, `ShortPage`, `IgnoresOffset`) run
/// it first, so a damaged `authenticate` leaves its session open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reads the request and never answers.
    Stall,
    /// Status, headers and a `Content-Length` for the whole answer, half of it, then the
    /// connection closes.
    CutOff,
    /// This HTTP status with a short `text/plain` body (`500 Internal Server Error`).
    Status(u16),
    /// 200 `text/html`: a proxy's "502 Bad Gateway" page.
    Html,
    /// `<iq type="error">` with this uid.
    ErrorIq(String),
    /// A list's `<result>` without `<overallcount>` (no change to other commands).
    NoOverallCount,
    /// A list page with its last item left out, `<overallcount>` unchanged (no change to
    /// other commands, or to an empty page).
    ShortPage,
    /// A list page served from the start whatever `<offset>` asked, and without `<offset>`
    /// in the answer, as a server that does not know the parameter would (no change to
    /// other commands).
    IgnoresOffset,
    /// 200 `application/xml`, whole under its `Content-Length`, but the answer's first half
    /// cut inside a tag: not well-formed.
    Malformed,
}

/// One request to `/icewarpapi/` as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `<commandname>` as sent; empty when the body was no readable envelope.
    pub command: String,
    /// The `<iq>`'s `sid` attribute.
    pub sid: Option<String>,
    /// `<commandparams>` flattened: each element without child elements as (tag, text), in
    /// document order; a non-empty `password` reads `***`.
    pub params: Vec<(String, String)>,
    pub at: Instant,
}

impl Recorded {
    /// The text of the first parameter of that tag.
    pub fn param(&self, tag: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, v)| v.as_str())
    }
}

impl IceWarpFake {
    /// Binds `127.0.0.1:0`, makes its certificate and serves HTTPS on the current tokio
    /// runtime.
    pub async fn start() -> IceWarpFake {
        let (certificate_pem, acceptor) = tokio::task::spawn_blocking(server::tls)
            .await
            .expect("IceWarp fake: certificate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the IceWarp fake");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            server: format!("127.0.0.1:{port}"),
            certificate_pem,
            state: Mutex::new(State::new()),
        });
        let accept = server::spawn(listener, acceptor, shared.clone());
        IceWarpFake {
            shared,
            _accept: Arc::new(accept),
        }
    }

    /// `127.0.0.1:PORT`: a profile's "Server name".
    pub fn server(&self) -> String {
        self.shared.server.clone()
    }

    /// `https://127.0.0.1:PORT/icewarpapi/`.
    pub fn url(&self) -> String {
        format!("https://{}{}", self.shared.server, server::PATH)
    }

    /// The self-signed certificate the fake serves (PEM), for `127.0.0.1` and `localhost`.
    pub fn certificate_pem(&self) -> String {
        self.shared.certificate_pem.clone()
    }

    // ---- the directory ----

    /// Adds an empty domain (nothing if it exists, in any case).
    pub fn add_domain(&self, name: &str) {
        self.shared.state().directory.add_domain(name);
    }

    /// A domain's `<description>` (the domain is made if missing).
    pub fn set_domain_description(&self, name: &str, description: &str) {
        let mut state = self.shared.state();
        state.directory.add_domain(name).description = description.into();
    }

    /// Adds the account to its address's domain (made if missing), or replaces the one with
    /// the same address (in any case).
    pub fn upsert_account(&self, account: Account) {
        self.shared.state().directory.upsert(account);
    }

    /// An enabled administrator named "Administrator".
    pub fn admin(&self, email: &str, password: &str) {
        let account = Account {
            is_admin: true,
            ..Account::user(email, "Administrator", password)
        };
        self.upsert_account(account);
    }

    /// Deletes the account; groups and lists that name it keep the address, as they would
    /// keep an outside one.
    pub fn remove_account(&self, email: &str) -> bool {
        self.shared.state().directory.remove(email).is_some()
    }

    /// Gives the account a new address (and with it, maybe, a new domain); groups and lists
    /// that named the old address name the new one.
    pub fn rename_account(&self, old_email: &str, new_email: &str) -> bool {
        self.shared.state().directory.rename(old_email, new_email)
    }

    /// 0 enables; anything else disables (live sessions stay live).
    pub fn set_state(&self, email: &str, state: u32) -> bool {
        let mut guard = self.shared.state();
        match guard.directory.find_mut(email) {
            Some(account) => {
                account.state = state;
                true
            }
            None => false,
        }
    }

    /// The domain's accounts, sorted by address as the lists serve them.
    pub fn accounts_of(&self, domain: &str) -> Vec<Account> {
        let state = self.shared.state();
        state
            .directory
            .domain(domain)
            .map(|d| d.accounts.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Replaces every domain and account with `domains` domains (`generated_domain(d)`),
    /// each of `users_per_domain` users (`generated_email(d, u)`, full name
    /// "User {u} of Domain {d}", password `GENERATED_PASSWORD`) and `groups_per_domain`
    /// groups (`generated_group(d, g)`) of `members_per_group` of its domain's users each,
    /// round-robin from user `g * members_per_group`. No administrator: add one with
    /// `admin`. Sessions survive.
    pub fn generate(
        &self,
        domains: usize,
        users_per_domain: usize,
        groups_per_domain: usize,
        members_per_group: usize,
    ) {
        self.shared.state().directory.generate(
            domains,
            users_per_domain,
            groups_per_domain,
            members_per_group,
        );
    }

    /// `d{d:03}.example.com`.
    pub fn generated_domain(domain_index: usize) -> String {
        directory::generated_domain(domain_index)
    }

    /// `user{u:06}@d{d:03}.example.com`: zero-padded, so address order is index order.
    pub fn generated_email(domain_index: usize, user_index: usize) -> String {
        directory::generated_email(domain_index, user_index)
    }

    /// `group{g:04}@d{d:03}.example.com`.
    pub fn generated_group(domain_index: usize, group_index: usize) -> String {
        directory::generated_group(domain_index, group_index)
    }

    // ---- sessions ----

    /// Sessions logged in and not logged out.
    pub fn open_sessions(&self) -> usize {
        self.shared.state().sessions.len()
    }

    /// Successful logins since the start.
    pub fn sessions_opened(&self) -> usize {
        self.shared.state().sessions_opened
    }

    /// How long a failed login waits before `auth_login_invalid` (default zero; real
    /// servers wait many seconds).
    pub fn set_failed_login_delay(&self, delay: Duration) {
        self.shared.state().failed_login_delay = delay;
    }

    /// Answer `text/xml; charset=utf-8` instead of `application/xml; charset=utf-8`.
    pub fn answer_text_xml(&self, text_xml: bool) {
        self.shared.state().text_xml = text_xml;
    }

    // ---- faults and measurement ----

    /// The (`after`+1)-th request for `command` from now gets `fault`, once. Faults queue.
    pub fn fault(&self, command: Command, after: usize, fault: Fault) {
        self.shared.state().faults.push(PendingFault {
            route: command,
            skip: after,
            fault,
        });
    }

    pub fn clear_faults(&self) {
        self.shared.state().faults.clear();
    }

    /// Every request waits this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.state().latency = latency;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.state().requests.clone()
    }

    pub fn request_count(&self, command: Command) -> usize {
        let state = self.shared.state();
        match command {
            Command::Any => state.requests.len(),
            _ => state
                .requests
                .iter()
                .filter(|r| Command::of(&r.command) == Some(command))
                .count(),
        }
    }
}
