//! Form validation shared by the pages: every error names its field and says why.

use crate::auth::password;

/// Errors by field name, in the order they were found.
#[derive(Default, Debug, Clone)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        if self.get(field).is_none() {
            self.0.push((field, message.into()));
        }
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
    /// The first error: (field, message).
    pub fn first(&self) -> Option<(&'static str, &str)> {
        self.0.first().map(|(f, m)| (*f, m.as_str()))
    }
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn count(&self) -> usize {
        self.0.len()
    }
    /// (field, message), in the order they were found (the form's order).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(f, m)| (*f, m.as_str()))
    }
}

/// User names of local users: no spaces, no `@` or `\` (they separate name and domain when
/// signing in), at most 256 characters.
pub fn check_username(errors: &mut FieldErrors, field: &'static str, value: &str) {
    let name = value.trim();
    if name.is_empty() {
        errors.add(field, "User name is required.");
    } else if name.chars().count() > 256 {
        errors.add(field, "User name must be at most 256 characters long.");
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.add(
            field,
            "User name must not contain spaces or control characters.",
        );
    } else if name.contains(['@', '\\', '/']) {
        errors.add(field, "User name must not contain @, \\ or /.");
    }
}

pub fn check_new_password(errors: &mut FieldErrors, password: &str, confirm: &str) {
    if password.is_empty() {
        errors.add("password", "Password is required.");
    } else if let Some(why) = password::policy_violation(password) {
        errors.add("password", format!("Password {why}."));
    } else if password != confirm {
        errors.add("password_confirm", "The two passwords do not match.");
    }
}

/// One address per line (or comma-separated); each must look like `local@domain`.
pub fn parse_emails(errors: &mut FieldErrors, field: &'static str, value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in value.split(['\n', ',']) {
        let address = raw.trim();
        if address.is_empty() {
            continue;
        }
        let valid = address.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        });
        if !valid {
            errors.add(field, format!("`{address}` is not an e-mail address."));
        } else if !out.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            out.push(address.to_owned());
        }
    }
    out
}
