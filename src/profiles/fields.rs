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

const ENTRA: &[FieldSpec] = &[
    field(
        "client_id",
        "Application (client) ID",
        Input::Text,
        true,
        Check::Guid,
        "From the app registration's overview in the Entra admin centre.",
    ),
    field(
        "tenant_id",
        "Directory (tenant) ID",
        Input::Text,
        true,
        Check::Guid,
        "",
    ),
    field(
        "enabled_users_only",
        "Enabled users only",
        Input::Checkbox,
        false,
        Check::Any,
        "",
    ),
    field(
        "mailbox_users_only",
        "Users with an Exchange Online mailbox only",
        Input::Checkbox,
        false,
        Check::Any,
        "",
    ),
    field(
        "include_guests",
        "Include guest users",
        Input::Checkbox,
        false,
        Check::Any,
        "Guests invited from other organisations (#EXT# names) are left out unless this is on.",
    ),
    USE_LOCAL_PART,
    field(
        "timeout_seconds",
        "Timeout (seconds)",
        Input::Number,
        false,
        Check::Seconds(1, 300),
        "Each request to Entra ID and Microsoft Graph must be answered within this. Empty: 30.",
    ),
    field(
        "authority",
        "Sign-in authority (advanced)",
        Input::Text,
        false,
        Check::Cloud("Microsoft's", crate::directory::entra::AUTHORITIES),
        "Where tokens come from. Empty: https://login.microsoftonline.com; national clouds: https://login.microsoftonline.us, https://login.chinacloudapi.cn.",
    ),
    field(
        "graph_url",
        "Microsoft Graph URL (advanced)",
        Input::Text,
        false,
        Check::Cloud("Microsoft's", crate::directory::entra::GRAPHS),
        "Empty: https://graph.microsoft.com; national clouds: https://graph.microsoft.us, https://dod-graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn.",
    ),
];

const GOOGLE: &[FieldSpec] = &[
    field(
        "domain",
        "Domain",
        Input::Text,
        true,
        Check::DomainName,
        "The Workspace's primary domain. Synchronised users are put in it, and a sign-in with Google counts only if Google vouches for this domain (hd).",
    ),
    field(
        "admin_user",
        "Admin user name",
        Input::Text,
        true,
        Check::Email,
        "The Workspace administrator the service account acts as.",
    ),
    field(
        "oidc_client_id",
        "OpenID client ID",
        Input::Text,
        true,
        Check::Any,
        "",
    ),
    field(
        "oidc_client_secret",
        "OpenID client secret",
        Input::Secret,
        true,
        Check::Any,
        "",
    ),
    USE_LOCAL_PART,
    field(
        "timeout_seconds",
        "Timeout (seconds)",
        Input::Number,
        false,
        Check::Seconds(1, 300),
        "Each request to Google must be answered within this. Empty: 30.",
    ),
    field(
        "token_url",
        "Token URL (advanced)",
        Input::Text,
        false,
        Check::CloudUrl("Google's", crate::directory::google::TOKEN_HOSTS),
        "Where the service account's tokens come from. Empty: https://oauth2.googleapis.com/token.",
    ),
    field(
        "api_url",
        "Directory API URL (advanced)",
        Input::Text,
        false,
        Check::Cloud("Google's", crate::directory::google::API_HOSTS),
        "Empty: https://admin.googleapis.com.",
    ),
    field(
        "oidc_issuer",
        "OpenID issuer (advanced)",
        Input::Text,
        false,
        Check::Cloud("Google's", crate::directory::google::ISSUER_HOSTS),
        "Where people sign in with Google. Empty: https://accounts.google.com.",
    ),
];

const APP_INTEGRATION: &[FieldSpec] = &[
    field(
        "url",
        "URL",
        Input::Text,
        true,
        Check::Url,
        "The Application Integration endpoint, e.g. https://users.example.com/api.",
    ),
    IGNORE_TLS,
    TRUSTED_CERTIFICATE,
    field(
        "requires_auth",
        "Server requires authentication",
        Input::Checkbox,
        false,
        Check::Any,
        "",
    ),
    // Required only when the server requires authentication (checked in `form`).
    field("username", "User name", Input::Text, false, Check::Any, ""),
    field("password", "Password", Input::Secret, false, Check::Any, ""),
    USE_LOCAL_PART,
    field(
        "timeout_seconds",
        "Timeout (seconds)",
        Input::Number,
        false,
        Check::Seconds(1, 300),
        "Each request must be answered within this. Empty: 30.",
    ),
    field(
        "list_command",
        "List command (advanced)",
        Input::Text,
        false,
        Check::Any,
        "Sent as cmd= to list the users (a JSON array of userName, distinguishedName, fullName, emailAddresses). A user's distinguishedName, when the server sends one, is what identifies them across renames; otherwise their userName does. Empty: list.",
    ),
    field(
        "auth_command",
        "Password check command (advanced)",
        Input::Text,
        false,
        Check::Any,
        "Sent as cmd= with user= and password= when someone signs in; only an answer {\"success\":true} signs them in. Empty: auth.",
    ),
    field(
        "groups_command",
        "Groups command (advanced)",
        Input::Text,
        false,
        Check::Any,
        "Sent as cmd= to list the groups (groupName, description, members). A server that does not know it has no groups. Empty: groups.",
    ),
];

const ICEWARP: &[FieldSpec] = &[
    field(
        "server",
        "Server name",
        Input::Text,
        true,
        Check::Host,
        "Host name, optionally with :port; Roster talks HTTPS to it.",
    ),
    IGNORE_TLS,
    TRUSTED_CERTIFICATE,
    field(
        "admin_user",
        "Admin user name",
        Input::Text,
        true,
        Check::Any,
        "",
    ),
    field("password", "Password", Input::Secret, true, Check::Any, ""),
    TIMEOUT,
];

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
