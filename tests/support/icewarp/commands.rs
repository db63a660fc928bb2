//! The commands: `authenticate` and `logout` (sessions and their rights), and the three
//! lists (`getdomainsinfolist`, `getaccountsinfolist`, `getaccountmemberinfolist`) with
//! their filters and paging. Each returns an `Answer`; `server.rs` wraps it in its `<iq>`.

use rand::Rng;
use rand::distributions::Alphanumeric;

use super::directory::Domain;
use super::state::{Session, State};
use super::xml::{Element, escape_into};
use super::{Account, Command};

/// What a command answers, before the envelope.
pub enum Answer {
    /// The `<result>`'s content, and the sid the `<iq>` carries.
    Result {
        sid: String,
        result: String,
    },
    Error(String),
    /// `auth_login_invalid`, sent after the failed-login delay.
    LoginFailed,
}

fn error(uid: &str) -> Answer {
    Answer::Error(uid.to_owned())
}

/// How a list fault bends an otherwise correct page.
#[derive(Clone, Copy, Default)]
pub struct Shape {
    pub no_overall_count: bool,
    pub short_page: bool,
    pub ignores_offset: bool,
}

/// The largest page the fake serves; a larger `count` gets this many.
pub const MAX_COUNT: usize = 1000;

/// Runs `name` for the session `sid` (the `<iq>`'s attribute) with `params`
/// (`<commandparams>`, empty when absent).
pub fn run(
    state: &mut State,
    name: &str,
    sid: Option<&str>,
    params: &Element,
    shape: Shape,
) -> Answer {
    let Some(command) = Command::of(name) else {
        return error("command_unknown");
    };
    if command == Command::Authenticate {
        return authenticate(state, params);
    }
    let Some((sid, session)) = sid.and_then(|s| state.sessions.get_key_value(s)) else {
        return error("session_invalid");
    };
    let sid = sid.clone();
    if command == Command::Logout {
        state.sessions.remove(&sid);
        return Answer::Result {
            sid,
            result: "1".into(),
        };
    }
    // Only an administrator's session reads the directory.
    if !session.admin {
        return error("access_denied");
    }
    let result = match command {
        Command::Domains => domains(state, params, shape),
        Command::Accounts => accounts(state, params, shape),
        _ => members(state, params, shape),
    };
    match result {
        Ok(result) => Answer::Result { sid, result },
        Err(uid) => error(uid),
    }
}

fn text(params: &Element, path: &[&str]) -> String {
    params.at(path).map(Element::text).unwrap_or_default()
}

fn authenticate(state: &mut State, params: &Element) -> Answer {
    // Only plain-password logins: a digest login (authtype 1) needs a challenge the fake
    // does not implement.
    if text(params, &["authtype"]).trim() != "0" {
        return error("param_invalid");
    }
    let email = text(params, &["email"]);
    let password = text(params, &["password"]);
    let Some(account) = state.directory.find(email.trim()) else {
        return Answer::LoginFailed;
    };
    // An empty password never matches: groups and lists have none.
    if password.is_empty() || account.password != password {
        return Answer::LoginFailed;
    }
    if account.state != 0 {
        return error("account_disabled_2");
    }
    let session = Session {
        email: account.email.clone(),
        admin: account.is_admin,
    };
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    let sid = format!("wm-{random}");
    state.sessions.insert(sid.clone(), session);
    state.sessions_opened += 1;
    Answer::Result {
        sid,
        result: "1".into(),
    }
}

// ---- filters and paging ----

/// `<offset>` (empty or absent: 0) and `<count>` (1 to 1000; more reads as 1000).
fn window(params: &Element) -> Result<(usize, usize), &'static str> {
    let offset = text(params, &["offset"]);
    let offset = match offset.trim() {
        "" => 0,
        o => o.parse::<usize>().map_err(|_| "param_invalid")?,
    };
    let count = text(params, &["count"])
        .trim()
        .parse::<i64>()
        .map_err(|_| "param_invalid")?;
    if count <= 0 {
        return Err("param_invalid");
    }
    Ok((offset, (count as usize).min(MAX_COUNT)))
}

/// `<namemask>`: a case-insensitive substring; empty or `*` is everything, and `*` at
/// either end is the same as none.
struct NameMask(String);

impl NameMask {
    fn new(params: &Element) -> NameMask {
        let text = text(params, &["filter", "namemask"]);
        NameMask(text.trim().trim_matches('*').to_lowercase())
    }

    fn matches(&self, candidates: &[&str]) -> bool {
        self.0.is_empty()
            || candidates
                .iter()
                .any(|c| c.to_lowercase().contains(&self.0))
    }
}

/// `<typemask>`: empty is every type, else the account types listed, comma-separated.
fn type_mask(params: &Element) -> Result<Option<Vec<u32>>, &'static str> {
    let text = text(params, &["filter", "typemask"]);
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.split(',')
        .map(|t| t.trim().parse::<u32>().map_err(|_| "param_invalid"))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Writes one page of `items`: counts them all for `<overallcount>`, writes only those in
/// the window.
fn page<'a, T: 'a>(
    classname: &str,
    items: impl Iterator<Item = &'a T>,
    (offset, count): (usize, usize),
    shape: Shape,
    write: impl Fn(&mut String, &T),
) -> String {
    let offset = if shape.ignores_offset { 0 } else { offset };
    let mut body = String::new();
    let (mut total, mut last_start) = (0usize, None);
    for item in items {
        if total >= offset && total - offset < count {
            last_start = Some(body.len());
            write(&mut body, item);
        }
        total += 1;
    }
    if shape.short_page
        && let Some(start) = last_start
    {
        body.truncate(start);
    }
    let mut out = format!("<classname>{classname}</classname>");
    if !shape.ignores_offset {
        out.push_str(&format!("<offset>{offset}</offset>"));
    }
    if !shape.no_overall_count {
        out.push_str(&format!("<overallcount>{total}</overallcount>"));
    }
    if body.is_empty() {
        out.push_str("<items/>");
    } else {
        out.push_str("<items>");
        out.push_str(&body);
        out.push_str("</items>");
    }
    out
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

// ---- the lists ----

fn domains(state: &State, params: &Element, shape: Shape) -> Result<String, &'static str> {
    let mask = NameMask::new(params);
    // Every domain the fake holds is a standard one (IceWarp's domain type 0).
    let standard = type_mask(params)?.is_none_or(|types| types.contains(&0));
    let window = window(params)?;
    let items = state
        .directory
        .domains
        .values()
        .filter(|d| standard && mask.matches(&[&d.name]));
    Ok(page(
        "tpropertyinfolist",
        items,
        window,
        shape,
        write_domain,
    ))
}

fn write_domain(out: &mut String, domain: &Domain) {
    out.push_str("<item><classname>tdomaininfo</classname>");
    element(out, "name", &domain.name);
    element(out, "description", &domain.description);
    out.push_str("</item>");
}

fn accounts(state: &State, params: &Element, shape: Shape) -> Result<String, &'static str> {
    let name = text(params, &["domainstr"]);
    let domain = state
        .directory
        .domain(name.trim())
        .ok_or("domain_invalid")?;
    let mask = NameMask::new(params);
    let types = type_mask(params)?;
    let window = window(params)?;
    let items = domain.accounts.values().filter(|a| {
        types.as_ref().is_none_or(|t| t.contains(&a.kind.code()))
            && mask.matches(&[&a.email, &a.name])
    });
    Ok(page(
        "taccountsinfolist",
        items,
        window,
        shape,
        write_account,
    ))
}

fn write_account(out: &mut String, account: &Account) {
    out.push_str("<item><classname>taccountinfo</classname>");
    element(out, "name", &account.name);
    element(out, "email", &account.email);
    element(out, "accounttype", &account.kind.code().to_string());
    out.push_str("<accountstate><classname>taccountstate</classname>");
    element(out, "state", &account.state.to_string());
    out.push_str("</accountstate>");
    element(out, "aliases", &account.aliases.join(";"));
    out.push_str("</item>");
}

fn members(state: &State, params: &Element, shape: Shape) -> Result<String, &'static str> {
    let who = text(params, &["who"]);
    let group = state
        .directory
        .find(who.trim())
        .filter(|a| a.kind.has_members())
        .ok_or("account_invalid")?;
    let mask = NameMask::new(params);
    let window = window(params)?;
    // Sorted like every other list, so pages are stable; nested groups stay addresses.
    let mut sorted: Vec<&String> = group.members.iter().collect();
    sorted.sort_by_cached_key(|m| m.to_lowercase());
    let items = sorted.into_iter().filter(|m| mask.matches(&[m]));
    Ok(page(
        "taccountmemberinfolist",
        items,
        window,
        shape,
        |out, member: &String| {
            out.push_str("<item><classname>taccountmemberinfo</classname>");
            element(out, "val", member);
            out.push_str("</item>");
        },
    ))
}
