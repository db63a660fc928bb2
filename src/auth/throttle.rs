//! Sign-in throttling per account and per client address (limits from the settings).

use crate::db::DbConnection;
use crate::db::ids::UserId;
use crate::db::models::sign_in_throttle as counters;

#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    pub account_failures: u32,
    pub address_failures: u32,
    pub window_seconds: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Too many failures: try again after this many seconds.
    Locked {
        retry_after_seconds: i64,
    },
}

/// Whose failures a counter holds. Each kind has its own key space, so no typed name can
/// share a counter with a user's MFA codes or with another kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A resolved user: every spelling of the account, and re-entered passwords.
    User(UserId),
    /// A canonical typed name that resolves to no single user.
    Name(String),
    /// A user's one-time codes.
    Mfa(UserId),
}

impl Subject {
    fn key(&self) -> String {
        match self {
            Subject::User(id) => format!("user:{id}"),
            Subject::Name(name) => format!("name:{name}"),
            Subject::Mfa(id) => format!("mfa:{id}"),
        }
    }
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

/// Counts this attempt against the account and the address before any password check.
pub fn reserve(
    conn: &mut DbConnection,
    policy: &ThrottlePolicy,
    account: &Subject,
    address: &str,
    now: i64,
) -> diesel::QueryResult<Verdict> {
    let window = policy.window_seconds;
    let by_account = counters::count_attempt(conn, &account.key(), now, window)?;
    let by_address = counters::count_attempt(conn, &address_key(address), now, window)?;
    let over_account = i64::from(by_account) > i64::from(policy.account_failures);
    let over_address = i64::from(by_address) > i64::from(policy.address_failures);
    if !over_account && !over_address {
        return Ok(Verdict::Allowed);
    }
    let key = if over_account {
        account.key()
    } else {
        address_key(address)
    };
    let started = counters::window_started_at(conn, &key)?.unwrap_or(now);
    Ok(Verdict::Locked {
        retry_after_seconds: (started + window - now).max(1),
    })
}

/// Counts an attempt against the client address alone (a name that no account can have).
pub fn reserve_address(
    conn: &mut DbConnection,
    policy: &ThrottlePolicy,
    address: &str,
    now: i64,
) -> diesel::QueryResult<Verdict> {
    let window = policy.window_seconds;
    let by_address = counters::count_attempt(conn, &address_key(address), now, window)?;
    if i64::from(by_address) <= i64::from(policy.address_failures) {
        return Ok(Verdict::Allowed);
    }
    let started = counters::window_started_at(conn, &address_key(address))?.unwrap_or(now);
    Ok(Verdict::Locked {
        retry_after_seconds: (started + window - now).max(1),
    })
}

/// A successful sign-in: the account's failures are forgotten and this attempt is not
/// held against the address.
pub fn succeeded(
    conn: &mut DbConnection,
    account: &Subject,
    address: &str,
) -> diesel::QueryResult<()> {
    counters::clear(conn, &account.key())?;
    counters::uncount_attempt(conn, &address_key(address))
}
