//! What the benchmarks share: a profile of the test slapd, and the peak resident set size.

#![allow(dead_code)]

use roster::db::models::directory_profiles::ProfileKind;
use roster::startup::AppState;

/// A generic LDAP profile of the test slapd, saved as the profile form would.
pub async fn create_profile(
    state: &AppState,
    slapd: &crate::servers::ExternalServer,
    mfa_by_default: bool,
) -> anyhow::Result<i64> {
    let server = slapd
        .fact("LDAP_URL")
        .trim_start_matches("ldap://")
        .trim_end_matches('/');
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("name", "Bench"),
            ("server", server),
            ("domain", "example.test"),
            ("protocol", "starttls"),
            ("bind_dn", slapd.fact("BIND_DN")),
            ("bind_password", slapd.fact("BIND_PASSWORD")),
            ("base_dn", slapd.fact("BASE_DN")),
            ("timeout_seconds", "60"),
            ("user_filter", "(objectClass=inetOrgPerson)"),
            ("username_attribute", "uid"),
            ("full_name_attribute", "cn"),
            ("email_attribute", "mail"),
            ("group_filter", "(objectClass=groupOfNames)"),
            ("group_name_attribute", "cn"),
            ("group_description_attribute", "description"),
            ("group_members_attribute", "member"),
            ("delete_users", "on"),
            ("mfa_by_default", if mfa_by_default { "on" } else { "" }),
            ("privilege", "log_on"),
            ("privilege", "read_own_archive"),
            ("delete_threshold_count", "500"),
            ("delete_threshold_percent", "20"),
        ])
        .finish();
    let posted = roster::profiles::form::Posted::parse(body.as_bytes());
    let checked = roster::profiles::form::check(ProfileKind::GenericLdap, &posted, None)
        .map_err(|e| anyhow::anyhow!("profile form: {e:?}"))?;
    let key = state.master_key.clone();
    let saved = state
        .db
        .run(move |c| {
            roster::profiles::store::create(c, &key, ProfileKind::GenericLdap, checked)
                .map_err(anyhow::Error::from)
        })
        .await?;
    Ok(saved.id)
}

/// Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM).
/// Makes the next `peak_rss_mb` the peak from now on. Memory an earlier run freed is handed
/// back first: glibc keeps freed memory in its arenas, and a second sync in the same process
/// would otherwise peak on top of what the first one left.
pub fn reset_peak_rss() {
    // SAFETY: malloc_trim only returns free memory to the system; it takes no pointers.
    unsafe { libc::malloc_trim(0) };
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU seconds this process has used so far (user + system), from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after ") ".
            let rest = s.rsplit_once(") ")?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks_per_second)
        })
        .unwrap_or(0.0)
}
