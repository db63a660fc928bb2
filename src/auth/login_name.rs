//! Typed login names in one canonical form, so that every spelling of one account (`alice`,
//! `ALICE`, `alice@domain`, `DOMAIN\alice`, full-width letters, stray spaces at the ends)
//! reaches the same lookup and the same throttle counter (SECURITY.md).

use unicode_normalization::UnicodeNormalization;

/// Longer names are refused before any lookup: no directory name is this long, and nothing
/// an anonymous client types may grow the database.
pub const MAX_LOGIN_CHARS: usize = 256;

/// Why a typed name is refused before any lookup (for the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadLoginName {
    #[error("the name is empty")]
    Empty,
    #[error("the name is longer than 256 characters")]
    TooLong,
    #[error("the name has spaces around `@` or `\\`")]
    SpaceAroundSeparator,
}

/// The ends trimmed, Unicode NFKC, lower-cased; spaces next to `@` or `\` are refused rather
/// than ignored (a name with an inner space, as Active Directory allows, is kept).
pub fn canonical(typed: &str) -> Result<String, BadLoginName> {
    let trimmed = typed.trim();
    // Counted before NFKC, which may lengthen a string.
    if trimmed.chars().nth(MAX_LOGIN_CHARS).is_some() {
        return Err(BadLoginName::TooLong);
    }
    // A control character (NUL above all: PostgreSQL text cannot hold it) never belongs to
    // a name; replaced, the name goes the unknown-user way like any other.
    let name: String = trimmed
        .nfkc()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect::<String>()
        .to_lowercase();
    if name.is_empty() {
        return Err(BadLoginName::Empty);
    }
    if name.chars().nth(MAX_LOGIN_CHARS).is_some() {
        return Err(BadLoginName::TooLong);
    }
    let chars: Vec<char> = name.chars().collect();
    let spaced = chars.windows(2).any(|w| {
        (w[0].is_whitespace() && matches!(w[1], '@' | '\\'))
            || (matches!(w[0], '@' | '\\') && w[1].is_whitespace())
    });
    if spaced {
        return Err(BadLoginName::SpaceAroundSeparator);
    }
    Ok(name)
}

/// A typed name as the audit log may keep it: at most 64 characters, control characters
/// replaced (an attacker's 180 kB name is not stored).
pub fn for_audit(typed: &str) -> String {
    let mut shown: String = typed
        .trim()
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if typed.trim().chars().nth(64).is_some() {
        shown.push('…');
    }
    shown
}
