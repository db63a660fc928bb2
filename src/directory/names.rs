//! User-name rules shared by every directory kind.

/// Why a name cannot be reduced to its local part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalPartError {
    #[error("the user name is empty")]
    Empty,
    #[error("the quoted part of `{0}` is not closed")]
    UnclosedQuote(String),
    #[error("`{0}` has nothing before its `@`")]
    EmptyLocalPart(String),
}

/// "Use only local part": drops everything after the last `@` that is not inside double
/// quotes. A quoted local part may itself contain `@` (`"loc@lpart"@example.com` →
/// `"loc@lpart"`); a name without an unquoted `@` is kept whole.
pub fn local_part(name: &str) -> Result<String, LocalPartError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(LocalPartError::Empty);
    }
    let mut in_quotes = false;
    let mut escaped = false;
    let mut last_at = None;
    for (i, ch) in name.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '@' if !in_quotes => last_at = Some(i),
            _ => {}
        }
    }
    if in_quotes {
        return Err(LocalPartError::UnclosedQuote(name.to_owned()));
    }
    match last_at {
        None => Ok(name.to_owned()),
        Some(0) => Err(LocalPartError::EmptyLocalPart(name.to_owned())),
        Some(i) => Ok(name[..i].to_owned()),
    }
}
