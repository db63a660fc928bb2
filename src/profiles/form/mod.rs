//! A posted profile form → checked settings, or errors that name the field and say why.
//! Nothing here touches the database: uniqueness of the name and the secrets are `store`'s.
//! The checks of single values (hosts, URLs, DNs, attributes) are `checks`; the Entra ID
//! certificate and redirect slug are `entra`.

mod checks;
mod entra;

pub use checks::check_text;
pub use entra::new_slug;
use entra::{entra_certificate, slug};

use std::collections::HashMap;

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::certificate::Credential;
use super::fields::{self, Check, FieldSpec, Input};
use super::google_key;
use super::{KindSettings, SecretSlot};
use crate::db::models::directory_profiles::{
    DirectoryProfile, ProfileChanges, ProfileKind, name_key,
};
use crate::db::models::user_privileges::Privilege;
use crate::validation::FieldErrors;

/// The fields of a posted form by name (the last value wins), with the repeated ones apart.
#[derive(Default, Clone)]
pub struct Posted {
    values: HashMap<String, String>,
    pub privileges: Vec<Privilege>,
    /// Fields posted with more than `MAX_FIELD_BYTES`: kept empty, reported by `check`.
    oversize: Vec<String>,
}

/// No certificate, key or setting is this large; a bigger field is an error, not data.
pub const MAX_FIELD_BYTES: usize = 256 * 1024;

impl Posted {
    pub fn parse(body: &[u8]) -> Posted {
        let mut posted = Posted::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            match key.as_ref() {
                "privilege" => posted.privileges.extend(Privilege::parse(&value)),
                _ if value.len() > MAX_FIELD_BYTES => posted.oversize.push(key.into_owned()),
                _ => {
                    posted.values.insert(key.into_owned(), value.into_owned());
                }
            }
        }
        posted
    }

    /// Whether `name` was posted larger than `MAX_FIELD_BYTES` (and dropped).
    pub fn is_oversize(&self, name: &str) -> bool {
        self.oversize.iter().any(|n| n == name)
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_owned(), value.into());
    }

    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// Privileges a sync may give the users it creates. Administrator is deliberately not
/// offered: a directory group change must never make people admins of Roster.
pub const DEFAULT_PRIVILEGE_CHOICES: [Privilege; 4] = [
    Privilege::LogOn,
    Privilege::ReadOwnArchive,
    Privilege::ArchiveEmail,
    Privilege::ChangeOwnPassword,
];
pub const DEFAULT_PRIVILEGES: [Privilege; 2] = [Privilege::LogOn, Privilege::ReadOwnArchive];
pub const DEFAULT_THRESHOLD_COUNT: i32 = 500;
pub const DEFAULT_THRESHOLD_PERCENT: i32 = 20;

/// What to do with the Entra ID certificate on save.
pub enum CertificateAction {
    Keep,
    /// Made on save, once everything else is valid (RSA key generation takes a moment).
    Generate,
    Import(Credential),
}

/// A form that passed every check.
pub struct Checked {
    pub changes: ProfileChanges,
    /// Carries the stored secret ids over; `store` fills in the new ones.
    pub settings: KindSettings,
    pub new_secrets: Vec<(SecretSlot, SecretString)>,
    /// Secrets no longer needed (e.g. authentication switched off).
    pub drop_secrets: Vec<SecretSlot>,
    pub certificate: CertificateAction,
    pub create_dependents: bool,
}

/// Checks a posted form for a new profile of `kind` (`existing` = None) or an edit of a
/// stored one. Returns the checked form or every error found.
pub fn check(
    kind: ProfileKind,
    posted: &Posted,
    existing: Option<&KindSettings>,
) -> Result<Checked, FieldErrors> {
    let mut errors = FieldErrors::default();
    // First, so it is the field's one error (the dropped value would fail other checks).
    let uploads: &[(&'static str, &str)] = &[
        ("certificate_import", "Certificate"),
        ("private_key_import", "Private key"),
        ("service_account_key", "Service-account key"),
        ("name", "Name"),
        ("groups_to_sync", "Groups to synchronise"),
    ];
    let specs = fields::for_kind(kind).iter().map(|f| (f.name, f.label));
    for (field, label) in uploads.iter().copied().chain(specs) {
        if posted.is_oversize(field) {
            errors.add(field, format!("{label} is larger than 256 KiB."));
        }
    }

    let name = posted.get("name").trim().to_owned();
    if name.is_empty() {
        errors.add("name", "Name is required.");
    } else if name.chars().count() > 100 {
        errors.add("name", "Name must be at most 100 characters long.");
    } else if name.chars().any(char::is_control) {
        errors.add("name", "Name must not contain control characters.");
    }
    let groups_to_sync = normalise_groups(&mut errors, posted.get("groups_to_sync"));
    let threshold_count = number(
        &mut errors,
        "delete_threshold_count",
        "Deletion threshold (users)",
        posted.get("delete_threshold_count"),
        1,
        1_000_000,
    );
    let threshold_percent = number(
        &mut errors,
        "delete_threshold_percent",
        "Deletion threshold (percent)",
        posted.get("delete_threshold_percent"),
        1,
        100,
    );
    let privileges: Vec<Privilege> = DEFAULT_PRIVILEGE_CHOICES
        .into_iter()
        .filter(|p| posted.privileges.contains(p))
        .collect();

    // Start from what is stored (or the defaults), so settings the form does not show
    // (Active Directory's fixed attributes, secret ids, the redirect URI) carry over.
    let base = existing
        .cloned()
        .unwrap_or_else(|| KindSettings::defaults(kind));
    let mut object = match serde_json::from_str::<Value>(&base.to_json()) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut new_secrets = Vec::new();
    for spec in fields::for_kind(kind) {
        read_field(
            &mut errors,
            &mut object,
            &mut new_secrets,
            spec,
            posted,
            &base,
        );
    }
    let domain = match object.remove("domain") {
        Some(Value::String(d)) => d.to_lowercase(),
        _ => String::new(),
    };
    let use_local_part = matches!(object.remove("use_local_part"), Some(Value::Bool(true)));
    let mut settings = match KindSettings::from_json(kind, &Value::Object(object).to_string()) {
        Ok(s) => s,
        Err(e) => {
            errors.add("kind", e.to_string());
            base.clone()
        }
    };

    let mut drop_secrets = Vec::new();
    let mut certificate = CertificateAction::Keep;
    match &mut settings {
        KindSettings::AppIntegration(s) => {
            if s.requires_auth {
                if s.username.is_empty() {
                    errors.add(
                        "username",
                        "User name is required when the server requires authentication.",
                    );
                }
                let has_password = base.secret(SecretSlot::Password).is_some()
                    || new_secrets
                        .iter()
                        .any(|(slot, _)| *slot == SecretSlot::Password);
                if !has_password {
                    errors.add(
                        "password",
                        "Password is required when the server requires authentication.",
                    );
                }
            } else {
                s.username.clear();
                new_secrets.retain(|(slot, _)| *slot != SecretSlot::Password);
                drop_secrets.push(SecretSlot::Password);
            }
        }
        KindSettings::Entra(s) => {
            certificate = entra_certificate(&mut errors, posted, s.certificate_pem.is_empty());
            if existing.is_none() {
                s.redirect_slug = slug(posted.get("redirect_slug"));
            }
        }
        KindSettings::Google(s) => {
            let key_text = posted.get("service_account_key");
            if key_text.trim().is_empty() {
                if s.service_account_key_secret.is_none() {
                    errors.add(
                        "service_account_key",
                        "Service-account key is required: import the JSON key file.",
                    );
                }
            } else {
                match google_key::check(key_text) {
                    Ok(summary) => {
                        s.service_account_email = summary.client_email;
                        s.service_account_key_id = summary.private_key_id;
                        new_secrets.push((
                            SecretSlot::ServiceAccountKey,
                            SecretString::from(key_text.trim().to_owned()),
                        ));
                    }
                    Err(e) => {
                        errors.add("service_account_key", format!("Service-account key: {e}."))
                    }
                }
            }
            if existing.is_none() {
                s.redirect_slug = slug(posted.get("redirect_slug"));
            }
        }
        KindSettings::Ldap(..) | KindSettings::IceWarp(_) => {}
    }
    // A stored password is only sent to the endpoint it was stored for (SECURITY.md): with
    // the server (or identity, or TLS option) changed, a blank field no longer means "keep".
    if let Some(stored) = existing
        && settings.endpoint() != stored.endpoint()
    {
        for slot in [
            SecretSlot::BindPassword,
            SecretSlot::Password,
            SecretSlot::ServiceAccountKey,
            SecretSlot::OidcClientSecret,
        ] {
            let typed = new_secrets.iter().any(|(s, _)| *s == slot);
            if stored.secret(slot).is_some() && !typed && !drop_secrets.contains(&slot) {
                errors.add(
                    slot.field(),
                    format!("The server changed: enter the {} again.", slot.describe()),
                );
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let offers_dependents = matches!(kind, ProfileKind::EntraId | ProfileKind::GoogleWorkspace);
    Ok(Checked {
        changes: ProfileChanges {
            name_key: name_key(&name),
            name,
            settings: String::new(),
            delete_users: posted.checked("delete_users"),
            delete_groups: posted.checked("delete_groups"),
            groups_to_sync,
            domain,
            use_local_part,
            mfa_by_default: posted.checked("mfa_by_default"),
            default_privileges: Privilege::join(&privileges),
            delete_threshold_count: threshold_count.unwrap_or(DEFAULT_THRESHOLD_COUNT),
            delete_threshold_percent: threshold_percent.unwrap_or(DEFAULT_THRESHOLD_PERCENT),
        },
        settings,
        new_secrets,
        drop_secrets,
        certificate,
        create_dependents: existing.is_none()
            && offers_dependents
            && posted.checked("create_dependents"),
    })
}

/// Reads one type-specific field into the settings object.
fn read_field(
    errors: &mut FieldErrors,
    object: &mut Map<String, Value>,
    new_secrets: &mut Vec<(SecretSlot, SecretString)>,
    spec: &FieldSpec,
    posted: &Posted,
    base: &KindSettings,
) {
    let raw = posted.get(spec.name);
    let label = spec.label;
    match spec.input {
        Input::Checkbox => {
            object.insert(spec.name.into(), Value::Bool(posted.checked(spec.name)));
        }
        Input::Secret => {
            let Some(slot) = SecretSlot::ALL.into_iter().find(|s| s.field() == spec.name) else {
                return;
            };
            if raw.trim().is_empty() {
                // Blank on edit means unchanged; on create a required secret is missing.
                if spec.required && base.secret(slot).is_none() {
                    errors.add(spec.name, format!("{label} is required."));
                }
            } else if raw.contains('\0') {
                errors.add(
                    spec.name,
                    format!("{label} must not contain NUL characters."),
                );
            } else {
                new_secrets.push((slot, SecretString::from(raw.to_owned())));
            }
        }
        Input::Pem => {
            let value = raw.trim();
            if !value.is_empty()
                && let Err(e) = crate::tls::fingerprints(value)
            {
                errors.add(spec.name, format!("{label} {e}."));
            }
            object.insert(spec.name.into(), Value::from(value));
        }
        Input::Number => {
            let Check::Seconds(min, max) = spec.check else {
                return;
            };
            // An optional number left empty keeps what is stored (or the default).
            if raw.trim().is_empty() && !spec.required {
                return;
            }
            if let Some(n) = number(errors, spec.name, label, raw, min as i32, max as i32) {
                object.insert(spec.name.into(), Value::from(n));
            }
        }
        Input::Select(options) => {
            let value = raw.trim();
            if options.iter().any(|(v, _)| *v == value) {
                object.insert(spec.name.into(), Value::from(value));
            } else {
                let names = options
                    .iter()
                    .map(|(_, l)| *l)
                    .collect::<Vec<_>>()
                    .join(" or ");
                errors.add(spec.name, format!("{label} must be {names}."));
            }
        }
        Input::Text => {
            let value = raw.trim();
            if value.is_empty() {
                if spec.required {
                    errors.add(spec.name, format!("{label} is required."));
                }
            } else if value.chars().count() > 1000 {
                errors.add(
                    spec.name,
                    format!("{label} must be at most 1000 characters long."),
                );
            } else if let Err(why) = check_text(spec.check, value) {
                errors.add(spec.name, format!("{label} {why}."));
            }
            object.insert(spec.name.into(), Value::from(value));
        }
    }
}

fn number(
    errors: &mut FieldErrors,
    field: &'static str,
    label: &str,
    raw: &str,
    min: i32,
    max: i32,
) -> Option<i32> {
    let raw = raw.trim();
    if raw.is_empty() {
        errors.add(field, format!("{label} is required."));
        return None;
    }
    match raw.parse::<i32>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errors.add(
                field,
                format!("{label} must be a whole number from {min} to {max}."),
            );
            None
        }
    }
}

/// The chosen groups, comma-separated, trimmed and without duplicates.
fn normalise_groups(errors: &mut FieldErrors, raw: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.chars().count() > 256 || name.chars().any(char::is_control) {
            errors.add(
                "groups_to_sync",
                format!("Groups to synchronise: `{name}` is not a group name."),
            );
        } else if !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            out.push(name);
        }
    }
    out.join(", ")
}

/// The groups chosen in a `groups_to_sync` value.
pub fn chosen_groups(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect()
}

/// The form values that show a stored profile, or a new profile's defaults.
pub fn values_of(
    kind: ProfileKind,
    settings: &KindSettings,
    profile: Option<&DirectoryProfile>,
) -> Posted {
    let mut values = Posted::default();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&settings.to_json()) {
        for spec in fields::for_kind(kind) {
            match map.get(spec.name) {
                Some(Value::Bool(true)) => values.set(spec.name, "on"),
                Some(Value::String(s)) => values.set(spec.name, s.clone()),
                Some(Value::Number(n)) => values.set(spec.name, n.to_string()),
                _ => {}
            }
        }
    }
    let on = |b: bool| if b { "on" } else { "" };
    match profile {
        Some(p) => {
            values.set("name", p.name.clone());
            values.set("domain", p.domain.clone());
            values.set("use_local_part", on(p.use_local_part));
            values.set("delete_users", on(p.delete_users));
            values.set("delete_groups", on(p.delete_groups));
            values.set("groups_to_sync", p.groups_to_sync.clone());
            values.set("mfa_by_default", on(p.mfa_by_default));
            values.set(
                "delete_threshold_count",
                p.delete_threshold_count.to_string(),
            );
            values.set(
                "delete_threshold_percent",
                p.delete_threshold_percent.to_string(),
            );
            values.privileges = Privilege::split(&p.default_privileges);
        }
        None => {
            values.set("mfa_by_default", "on");
            values.set(
                "delete_threshold_count",
                DEFAULT_THRESHOLD_COUNT.to_string(),
            );
            values.set(
                "delete_threshold_percent",
                DEFAULT_THRESHOLD_PERCENT.to_string(),
            );
            values.set("redirect_slug", new_slug());
            values.privileges = DEFAULT_PRIVILEGES.to_vec();
        }
    }
    values
}
