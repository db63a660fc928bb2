//! Distinguished names compared the way directories compare them (RFC 4514, RFC 4518).
//!
//! The same entry reaches Roster spelt several ways: slapd returns `cn=Smith\2C John,…`
//! where a group's `member` says `cn=Smith\, John,…`; AD writes `CN=…,DC=…`; older tools
//! put spaces around `=` and `,`; a multi-valued RDN may come in either order. `normalize`
//! maps all of them to one string: attribute types lower-cased (well-known OIDs by name),
//! values unescaped, case-folded with inner runs of spaces collapsed, the AVAs of an RDN
//! sorted, and everything escaped again in one canonical way.

/// Why a string is not a DN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("`{0}` is not a distinguished name: an attribute has no `=`")]
    NoEquals(String),
    #[error("`{0}` is not a distinguished name: an attribute type is empty")]
    EmptyType(String),
    #[error("`{0}` is not a distinguished name: a `\\` escape is cut short")]
    BadEscape(String),
}

/// Characters that never need the slow path: most DNs a server returns are plain.
fn is_plain(dn: &str) -> bool {
    let bytes = dn.as_bytes();
    !bytes.is_empty()
        && !bytes[0].is_ascii_whitespace()
        && !bytes[bytes.len() - 1].is_ascii_whitespace()
        && !bytes
            .iter()
            .any(|b| matches!(b, b'\\' | b'"' | b'+' | b'#' | b';' | b'<' | b'>'))
        && !bytes.windows(2).any(|w| {
            matches!(
                w,
                [b' ', b','] | [b',', b' '] | [b' ', b'='] | [b'=', b' '] | [b' ', b' ']
            )
        })
        && dn.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(t, _)| !t.is_empty() && !t.as_bytes()[0].is_ascii_digit())
        })
}

/// The canonical form of `dn`; two spellings of one DN give the same string.
pub fn normalize(dn: &str) -> Result<String, DnError> {
    if is_plain(dn) {
        return Ok(dn.to_lowercase());
    }
    let mut rdns: Vec<String> = Vec::new();
    for rdn in split_unescaped(dn.trim(), &[',', ';']) {
        let mut avas: Vec<String> = Vec::new();
        for ava in split_unescaped(rdn, &['+']) {
            let (kind, value) = ava
                .split_once('=')
                .ok_or_else(|| DnError::NoEquals(dn.to_owned()))?;
            let kind = attribute_type(kind.trim());
            if kind.is_empty() {
                return Err(DnError::EmptyType(dn.to_owned()));
            }
            let value = value_of(value).ok_or_else(|| DnError::BadEscape(dn.to_owned()))?;
            avas.push(format!("{kind}={}", escape(&fold(&value))));
        }
        avas.sort();
        rdns.push(avas.join("+"));
    }
    Ok(rdns.join(","))
}

/// Splits at the separators that are neither escaped nor inside double quotes.
fn split_unescaped<'a>(s: &'a str, separators: &[char]) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped, mut quoted) = (0, false, false);
    for (i, ch) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            quoted = !quoted;
        } else if !quoted && separators.contains(&ch) {
            parts.push(&s[start..i]);
            start = i + ch.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Attribute types are case-insensitive; the common OIDs stand for their names.
fn attribute_type(kind: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    let kind = kind.strip_prefix("oid.").unwrap_or(&kind);
    match kind {
        "2.5.4.3" => "cn",
        "2.5.4.6" => "c",
        "2.5.4.7" => "l",
        "2.5.4.8" => "st",
        "2.5.4.9" => "street",
        "2.5.4.10" => "o",
        "2.5.4.11" => "ou",
        "0.9.2342.19200300.100.1.1" => "uid",
        "0.9.2342.19200300.100.1.25" => "dc",
        other => other,
    }
    .to_owned()
}

/// The value an AVA's text stands for: escapes undone, quotes removed, the spaces around
/// it dropped (an escaped space is kept). A `#` value (BER in hex) stays as written.
fn value_of(text: &str) -> Option<String> {
    let text = text.trim_start();
    if let Some(hex) = text.strip_prefix('#') {
        return Some(format!("#{}", hex.trim().to_ascii_lowercase()));
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
    // Bytes up to here were escaped or inside quotes: trailing-space trimming stops there.
    let mut kept = 0;
    let mut chars = text.char_indices().peekable();
    let mut quoted = false;
    while let Some((_, ch)) = chars.next() {
        match ch {
            '"' => {
                quoted = !quoted;
                kept = bytes.len();
            }
            '\\' => {
                let (_, next) = chars.next()?;
                if next.is_ascii_hexdigit() {
                    let (_, low) = chars.next()?;
                    let byte = u8::from_str_radix(&format!("{next}{low}"), 16).ok()?;
                    bytes.push(byte);
                } else {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                }
                kept = bytes.len();
            }
            _ => {
                let mut buf = [0; 4];
                bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                if quoted {
                    kept = bytes.len();
                }
            }
        }
    }
    while bytes.len() > kept && bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// caseIgnoreMatch as RFC 4518 prepares it: case folded, runs of spaces as one.
fn fold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut last_space = false;
    for ch in value.chars().flat_map(char::to_lowercase) {
        let space = ch.is_whitespace();
        if !(space && last_space) {
            out.push(if space { ' ' } else { ch });
        }
        last_space = space;
    }
    out
}

/// RFC 4514 §2.4: the characters that must be escaped, escaped with a backslash.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let last = value.chars().count().saturating_sub(1);
    for (i, ch) in value.chars().enumerate() {
        let special = matches!(ch, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i == last && ch == ' ');
        if ch == '\0' {
            out.push_str("\\00");
        } else {
            if special {
                out.push('\\');
            }
            out.push(ch);
        }
    }
    out
}
