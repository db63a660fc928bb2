//! Checks of single values: each error completes "<Label> …".

use crate::profiles::fields::Check;

/// Checks a text value against its kind; the error completes "<Label> …".
pub fn check_text(check: Check, value: &str) -> Result<(), String> {
    match check {
        Check::Any | Check::Seconds(..) => Ok(()),
        Check::Host => check_host(value),
        Check::Url => check_url(value),
        Check::Cloud(owner, hosts) => check_cloud(value, owner, hosts, false),
        Check::CloudUrl(owner, hosts) => check_cloud(value, owner, hosts, true),
        Check::Guid => {
            let groups: Vec<&str> = value.split('-').collect();
            let lengths_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
            if lengths_ok
                && groups
                    .iter()
                    .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
            {
                Ok(())
            } else {
                Err("must be a GUID like 00000000-0000-0000-0000-000000000000".into())
            }
        }
        Check::DomainName => {
            let ok = value.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            if ok {
                Ok(())
            } else {
                Err("must be a domain name like example.com".into())
            }
        }
        Check::Email => {
            let ok = value.rsplit_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && check_text(Check::DomainName, domain).is_ok()
            });
            if ok {
                Ok(())
            } else {
                Err("must be an e-mail address like admin@example.com".into())
            }
        }
        Check::Dn => check_dn(value),
        Check::Filter => {
            if ldap3::parse_filter(value).is_ok() {
                Ok(())
            } else {
                Err("is not a valid LDAP filter (RFC 4515), e.g. (objectClass=person)".into())
            }
        }
        Check::MemberFilter => {
            if !value.contains("%s") {
                Err("must contain %s where the member value goes".into())
            } else if ldap3::parse_filter(value.replace("%s", "x")).is_err() {
                Err("is not a valid LDAP filter (RFC 4515)".into())
            } else {
                Ok(())
            }
        }
        Check::Attribute => {
            if is_attribute(value) {
                Ok(())
            } else {
                Err("must be an attribute name (letters, digits, hyphens) or an OID".into())
            }
        }
    }
}

fn is_attribute(value: &str) -> bool {
    let descr = value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = value
        .split('.')
        .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    descr || oid
}

fn check_host(value: &str) -> Result<(), String> {
    if value.contains("://") {
        return Err("must be a host name without a scheme (no ldap:// or https://)".into());
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        // [IPv6]:port
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err("has an unclosed [".into()),
        }
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (value, None),
        }
    };
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!(
            "has a port `{p}` that is not a number from 1 to 65535"
        ));
    }
    let ok = host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }));
    if ok {
        Ok(())
    } else {
        Err("must be a host name or IP address, optionally with :port".into())
    }
}

/// One of the service's hosts over https (a path only when `path_allowed`), or this
/// machine (a local test or proxy).
fn check_cloud(value: &str, owner: &str, hosts: &[&str], path_allowed: bool) -> Result<(), String> {
    check_url(value)?;
    let url = url::Url::parse(value).map_err(|e| format!("is not a URL ({e})"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if !path_allowed && !url.path().trim_end_matches('/').is_empty() {
        return Err("must be the address alone, without a path".into());
    }
    let host = url.host_str().unwrap_or_default().to_lowercase();
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || host == "localhost";
    if loopback || (url.scheme() == "https" && hosts.contains(&host.as_str())) {
        Ok(())
    } else {
        Err(format!(
            "must be one of {owner}: {}",
            hosts
                .iter()
                .map(|h| format!("https://{h}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// https anywhere; plain http only to this machine (a local test or proxy).
fn check_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("is not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("has no host".into()),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password (use the fields below)".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("must use https:// (http:// only to localhost)".into()),
        other => Err(format!("must start with https://, not {other}://")),
    }
}

/// A DN is RDNs `attr=value` separated by unescaped commas (RFC 4514).
fn check_dn(value: &str) -> Result<(), String> {
    let mut rdns = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == ',' {
            rdns.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    rdns.push(current);
    let ok = rdns.iter().all(|rdn| {
        rdn.split('+').all(|ava| {
            ava.split_once('=')
                .is_some_and(|(attr, v)| is_attribute(attr.trim()) && !v.trim().is_empty())
        })
    });
    if ok {
        Ok(())
    } else {
        Err("must be a DN like dc=example,dc=com".into())
    }
}
