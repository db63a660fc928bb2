//! The type-specific fields of each kind, described once: the form renders them in order and
//! `form` parses and checks them by these descriptions. Labels are the settings' names from
//! FEATURES.md, so people and browser tests find each field by its label.

use crate::db::models::directory_profiles::ProfileKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Text,
    Number,
    Checkbox,
    /// A secret: never rendered back; blank on edit means unchanged.
    Secret,
    /// PEM text (a certificate), pasted or read from a file.
    Pem,
    Select(&'static [(&'static str, &'static str)]),
}

/// What a text value must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Any,
    /// A host name or address, optionally `:port`, no scheme.
    Host,
    /// An `https://` URL (`http://` only to this machine).
    Url,
    /// An `https://` URL on one of these hosts of Microsoft's or Google's (or this machine,
    /// for tests and local proxies): tenant-wide tokens go nowhere else.
    /// The first part names whose hosts they are in the error ("Microsoft's").
    Cloud(&'static str, &'static [&'static str]),
    /// The same, a whole URL (a path allowed).
    CloudUrl(&'static str, &'static [&'static str]),
    /// A GUID like `0d7c2a4e-…`.
    Guid,
    DomainName,
    Email,
    Dn,
    Filter,
    /// A filter with `%s` where the member value goes.
    MemberFilter,
    Attribute,
    /// Whole seconds in this range.
    Seconds(u32, u32),
}

#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub label: &'static str,
    pub input: Input,
    pub required: bool,
    pub check: Check,
    pub help: &'static str,
}

const fn field(
    name: &'static str,
    label: &'static str,
    input: Input,
    required: bool,
    check: Check,
    help: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        label,
        input,
        required,
        check,
        help,
    }
}

pub const PROTOCOLS: &[(&str, &str)] = &[("starttls", "LDAP with StartTLS"), ("ldaps", "LDAPS")];

const SERVER: FieldSpec = field(
    "server",
    "Server",
    Input::Text,
    true,
    Check::Host,
    "Host name or address, optionally with :port.",
);
const DOMAIN: FieldSpec = field(
    "domain",
    "Domain",
    Input::Text,
    true,
    Check::DomainName,
    "Synchronised users are put in this domain and sign in as user@domain.",
);
const PROTOCOL: FieldSpec = field(
    "protocol",
    "Protocol",
    Input::Select(PROTOCOLS),
    true,
    Check::Any,
    "",
);
const IGNORE_TLS: FieldSpec = field(
    "ignore_tls_errors",
    "Ignore TLS certificate errors",
    Input::Checkbox,
    false,
    Check::Any,
    "Only for testing: the connection is still encrypted but anyone could pose as the server.",
);
const TRUSTED_CERTIFICATE: FieldSpec = field(
    "trusted_certificate_pem",
    "Trusted certificate (PEM)",
    Input::Pem,
    false,
    Check::Any,
    "For a directory whose certificate no public CA signed: its CA certificate, or the server's own certificate (self-signed, e.g. Samba's or one made by openssl req -x509), which is then pinned. Empty: the system's CAs and tls_ca_file.",
);
const BIND_PASSWORD: FieldSpec = field(
    "bind_password",
    "Bind password",
    Input::Secret,
    true,
    Check::Any,
    "",
);
const BASE_DN: FieldSpec = field("base_dn", "Base DN", Input::Text, true, Check::Dn, "");
const TIMEOUT: FieldSpec = field(
    "timeout_seconds",
    "Timeout (seconds)",
    Input::Number,
    true,
    Check::Seconds(1, 300),
    "",
);
const USE_LOCAL_PART: FieldSpec = field(
    "use_local_part",
    "Use only the local part of the user name",
    Input::Checkbox,
    false,
    Check::Any,
    "alice@example.com becomes alice.",
);

const NESTED_GROUPS: FieldSpec = field(
    "nested_groups",
    "Include members of nested groups",
    Input::Checkbox,
    false,
    Check::Any,
    "A group inside a group passes its members on: they count as members of both (cycles are safe).",
);

const AD: &[FieldSpec] = &[
    SERVER,
    DOMAIN,
    PROTOCOL,
    IGNORE_TLS,
    TRUSTED_CERTIFICATE,
    field(
        "bind_dn",
        "Bind user",
        Input::Text,
        true,
        Check::Any,
        "user@domain, DOMAIN\\user or a DN.",
    ),
    BIND_PASSWORD,
    BASE_DN,
    TIMEOUT,
    USE_LOCAL_PART,
    NESTED_GROUPS,
];

const LDAP: &[FieldSpec] = &[
    SERVER,
    DOMAIN,
    PROTOCOL,
    IGNORE_TLS,
    TRUSTED_CERTIFICATE,
    field("bind_dn", "Bind DN", Input::Text, true, Check::Dn, ""),
    BIND_PASSWORD,
    BASE_DN,
    TIMEOUT,
    USE_LOCAL_PART,
    field(
        "user_filter",
        "User filter",
        Input::Text,
        true,
        Check::Filter,
        "",
    ),
    field(
        "username_attribute",
        "User-name attribute",
        Input::Text,
        true,
        Check::Attribute,
        "",
    ),
    field(
        "full_name_attribute",
        "Full-name attribute",
        Input::Text,
        false,
        Check::Attribute,
        "",
    ),
    field(
        "email_attribute",
        "E-mail-addresses attribute",
        Input::Text,
        false,
        Check::Attribute,
        "",
    ),
    field(
        "group_filter",
        "Group filter",
        Input::Text,
        true,
        Check::Filter,
        "",
    ),
    field(
        "group_name_attribute",
        "Group-name attribute",
        Input::Text,
        true,
        Check::Attribute,
        "",
    ),
    field(
        "group_description_attribute",
        "Group-description attribute",
        Input::Text,
        false,
        Check::Attribute,
        "",
    ),
    field(
        "group_members_attribute",
        "Group-members attribute",
        Input::Text,
        true,
        Check::Attribute,
        "",
    ),
    field(
        "id_attribute",
        "Unique id attribute",
        Input::Text,
        false,
        Check::Attribute,
        "Stays the same when an entry is renamed or moved, so a rename is an update: entryUUID (OpenLDAP), nsUniqueId (389 DS), GUID (eDirectory).",
    ),
    field(
        "group_members_search_filter",
        "Group-members search filter",
        Input::Text,
        false,
        Check::MemberFilter,
        "Leave empty when members are DNs; for names (memberUid) e.g. (&(objectClass=inetOrgPerson)(uid=%s)).",
    ),
    NESTED_GROUPS,
];

mod services;

use services::{APP_INTEGRATION, ENTRA, GOOGLE, ICEWARP};

pub fn for_kind(kind: ProfileKind) -> &'static [FieldSpec] {
    match kind {
        ProfileKind::ActiveDirectory => AD,
        ProfileKind::GenericLdap => LDAP,
        ProfileKind::EntraId => ENTRA,
        ProfileKind::GoogleWorkspace => GOOGLE,
        ProfileKind::ApplicationIntegration => APP_INTEGRATION,
        ProfileKind::IceWarp => ICEWARP,
    }
}

/// Kinds whose connector exists in this release: they offer "Test connection" and the
/// group picker.
pub fn has_connector(kind: ProfileKind) -> bool {
    matches!(
        kind,
        ProfileKind::ActiveDirectory
            | ProfileKind::GenericLdap
            | ProfileKind::EntraId
            | ProfileKind::GoogleWorkspace
            | ProfileKind::ApplicationIntegration
            | ProfileKind::IceWarp
    )
}

/// What the common "groups to synchronise" setting is called for this kind.
pub fn groups_label(kind: ProfileKind) -> &'static str {
    match kind {
        ProfileKind::IceWarp => "Domains and groups to synchronise",
        _ => "Groups to synchronise",
    }
}

/// The form's sections, in order; every field belongs to one (`section_of`).
pub const SECTIONS: [&str; 6] = [
    "Connection",
    "Credentials",
    "Where to look",
    "Attributes",
    "What to synchronise",
    "Sign-in and MFA",
];

/// Which section of the form a field is shown in.
pub fn section_of(field: &str) -> &'static str {
    match field {
        "bind_dn" | "bind_password" | "admin_user" | "password" | "username" | "requires_auth"
        | "client_id" | "client_secret" => "Credentials",
        "base_dn" | "user_filter" | "group_filter" | "group_members_search_filter" => {
            "Where to look"
        }
        "username_attribute"
        | "full_name_attribute"
        | "email_attribute"
        | "id_attribute"
        | "group_name_attribute"
        | "group_description_attribute"
        | "group_members_attribute" => "Attributes",
        "nested_groups" | "enabled_users_only" | "include_guests" | "mailbox_users_only"
        | "list_command" | "auth_command" | "groups_command" => "What to synchronise",
        "use_local_part" | "domain" | "oidc_client_id" | "oidc_client_secret" | "oidc_issuer" => {
            "Sign-in and MFA"
        }
        _ => "Connection",
    }
}

/// An example value shown in an empty field.
pub fn example_of(field: &str) -> &'static str {
    match field {
        "server" => "e.g. ldap.example.com or dc1.example.com:636",
        "bind_dn" => "e.g. cn=roster,ou=services,dc=example,dc=com",
        "base_dn" => "e.g. dc=example,dc=com",
        "domain" => "e.g. example.com",
        "url" => "e.g. https://users.example.com/api",
        "admin_user" => "e.g. admin@example.com",
        _ => "",
    }
}
