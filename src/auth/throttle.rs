//! Sign-in throttling per account and per client address (limits from the settings).

use crate::db::DbConnection;
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

fn account_key(name: &str) -> String {
    format!("account:{}", name.trim().to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

/// Counts this attempt against the account and the address before any password check.
pub fn reserve(
    conn: &mut DbConnection,
    policy: &ThrottlePolicy,
    account: &str,
    address: &str,
    now: i64,
) -> diesel::QueryResult<Verdict> {
    let window = policy.window_seconds;
    let by_account = counters::count_attempt(conn, &account_key(account), now, window)?;
    let by_address = counters::count_attempt(conn, &address_key(address), now, window)?;
    let over_account = i64::from(by_account) > i64::from(policy.account_failures);
    let over_address = i64::from(by_address) > i64::from(policy.address_failures);
    if !over_account && !over_address {
        return Ok(Verdict::Allowed);
    }
    let key = if over_account {
        account_key(account)
    } else {
        address_key(address)
    };
    let started = counters::window_started_at(conn, &key)?.unwrap_or(now);
    Ok(Verdict::Locked {
        retry_after_seconds: (started + window - now).max(1),
    })
}

/// A successful sign-in: the account's failures are forgotten and this attempt is not
/// held against the address.
pub fn succeeded(conn: &mut DbConnection, account: &str, address: &str) -> diesel::QueryResult<()> {
    counters::clear(conn, &account_key(account))?;
    counters::uncount_attempt(conn, &address_key(address))
}
