//! What the benchmarks share: a profile of the test slapd, the peak resident set size, the
//! CSRF token of a page.

#![allow(dead_code)]

use roster::db::models::directory_profiles::ProfileKind;
use roster::state::AppState;

/// A generic LDAP profile of the test slapd, saved as the profile form would.
pub async fn create_profile(
    state: &AppState,
    slapd: &crate::servers::ExternalServer,
    mfa_by_default: bool,
) -> anyhow::Result<roster::db::ids::ProfileId> {
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
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The `csrf_token` of the first form on a page (empty if there is none).
pub fn csrf_token_in(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).map(|i| i + marker.len()).unwrap_or(0);
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
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
