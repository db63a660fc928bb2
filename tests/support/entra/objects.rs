//! The directory objects Graph lists — users, groups and the devices, contacts and service
//! principals inside groups — their property sets, the transitive-member walk, and how
//! each is written out.

use std::collections::{HashSet, VecDeque};

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use super::{AssignedPlan, GraphGroup, GraphUser, Member, State};

/// What Graph returns for a user without `$select`: accountEnabled, assignedPlans,
/// proxyAddresses and userType are not among them.
pub const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// User properties `$select` accepts (besides any `extra` a user carries).
pub const USER_PROPERTIES: &[&str] = &[
    "id",
    "accountEnabled",
    "ageGroup",
    "assignedLicenses",
    "assignedPlans",
    "businessPhones",
    "city",
    "companyName",
    "country",
    "createdDateTime",
    "creationType",
    "deletedDateTime",
    "department",
    "displayName",
    "employeeId",
    "employeeType",
    "externalUserState",
    "givenName",
    "identities",
    "imAddresses",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesImmutableId",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "otherMails",
    "passwordPolicies",
    "postalCode",
    "preferredLanguage",
    "provisionedPlans",
    "proxyAddresses",
    "securityIdentifier",
    "showInAddressList",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

pub const GROUP_DEFAULT: &[&str] = &[
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "onPremisesSyncEnabled",
    "proxyAddresses",
    "securityEnabled",
    "securityIdentifier",
    "visibility",
];

pub const GROUP_PROPERTIES: &[&str] = &[
    "id",
    "classification",
    "createdDateTime",
    "deletedDateTime",
    "description",
    "displayName",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "onPremisesDomainName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "proxyAddresses",
    "securityEnabled",
    "securityIdentifier",
    "visibility",
];

/// Collection-valued properties: an absent one is `[]`, not `null`.
pub const COLLECTIONS: &[&str] = &[
    "assignedLicenses",
    "assignedPlans",
    "businessPhones",
    "groupTypes",
    "identities",
    "imAddresses",
    "otherMails",
    "provisionedPlans",
    "proxyAddresses",
];

/// One object of a listing.
#[derive(Clone, Copy)]
pub enum Row<'a> {
    User(&'a GraphUser),
    Group(&'a GraphGroup),
    /// A device, contact or service principal: the fake knows only its id.
    Other(&'static str, &'a str),
}

impl Row<'_> {
    pub fn display_name(&self) -> Option<&str> {
        match self {
            Row::User(u) => Some(&u.display_name),
            Row::Group(g) => Some(&g.display_name),
            Row::Other(..) => None,
        }
    }
}

/// A group's members, each object once, in breadth-first order; with `transitive`, nested
/// groups are listed and expanded, cycles included. Members that no longer exist are left out.
pub fn members_of<'a>(state: &'a State, root: &'a GraphGroup, transitive: bool) -> Vec<Row<'a>> {
    let mut seen: HashSet<&Member> = HashSet::new();
    let mut expanded: HashSet<&str> = HashSet::from([root.id.as_str()]);
    let mut queue = VecDeque::from([root]);
    let mut rows = Vec::new();
    while let Some(group) = queue.pop_front() {
        for member in &group.members {
            if !seen.insert(member) {
                continue;
            }
            match member {
                Member::User(id) => {
                    if let Some(&i) = state.user_index.get(id) {
                        rows.push(Row::User(&state.users[i]));
                    }
                }
                Member::Group(id) => {
                    let Some(&i) = state.group_index.get(id) else {
                        continue;
                    };
                    if *id == root.id {
                        continue;
                    }
                    let nested = &state.groups[i];
                    rows.push(Row::Group(nested));
                    if transitive && expanded.insert(id) {
                        queue.push_back(nested);
                    }
                }
                Member::Device(id) => rows.push(Row::Other("#microsoft.graph.device", id)),
                Member::Contact(id) => rows.push(Row::Other("#microsoft.graph.orgContact", id)),
                Member::ServicePrincipal(id) => {
                    rows.push(Row::Other("#microsoft.graph.servicePrincipal", id));
                }
            }
        }
    }
    rows
}

/// An object as Graph returns it — the selected properties (or the type's default set),
/// always `id`, with `typed` its `@odata.type` — serialised straight from the directory:
/// a 999-user page is written without building a `Value` per user.
pub struct Rendered<'a> {
    pub row: Row<'a>,
    pub select: Option<&'a [String]>,
    pub typed: bool,
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = serializer.serialize_map(None)?;
        let names = |defaults: &'static [&'static str]| -> Vec<&str> {
            match self.select {
                Some(names) => names.iter().map(String::as_str).collect(),
                None => defaults.to_vec(),
            }
        };
        match self.row {
            Row::User(user) => {
                if self.typed {
                    object.serialize_entry("@odata.type", "#microsoft.graph.user")?;
                }
                object.serialize_entry("id", &user.id)?;
                for name in names(USER_DEFAULT) {
                    if name != "id" && is_user_property(user, name) {
                        object.serialize_entry(name, &user_property(user, name))?;
                    }
                }
            }
            Row::Group(group) => {
                if self.typed {
                    object.serialize_entry("@odata.type", "#microsoft.graph.group")?;
                }
                object.serialize_entry("id", &group.id)?;
                for name in names(GROUP_DEFAULT) {
                    if name != "id" && is_group_property(group, name) {
                        object.serialize_entry(name, &group_property(group, name))?;
                    }
                }
            }
            Row::Other(odata_type, id) => {
                object.serialize_entry("@odata.type", odata_type)?;
                object.serialize_entry("id", id)?;
                if self
                    .select
                    .is_none_or(|names| names.iter().any(|n| n == "displayName"))
                {
                    object.serialize_entry("displayName", &Prop::Null)?;
                }
            }
        }
        object.end()
    }
}

/// A property value borrowed from the directory.
enum Prop<'a> {
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Flag(bool),
    Texts(&'a [String]),
    Plans(&'a [AssignedPlan]),
    Json(&'a Value),
    Null,
    Empty,
}

impl Serialize for Prop<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Prop::Text(text) => serializer.serialize_str(text),
            Prop::MaybeText(text) => text.serialize(serializer),
            Prop::Flag(flag) => serializer.serialize_bool(*flag),
            Prop::Texts(texts) => texts.serialize(serializer),
            Prop::Plans(plans) => {
                let mut list = serializer.serialize_seq(Some(plans.len()))?;
                for plan in plans.iter() {
                    list.serialize_element(&PlanJson(plan))?;
                }
                list.end()
            }
            Prop::Json(value) => value.serialize(serializer),
            Prop::Null => serializer.serialize_unit(),
            Prop::Empty => serializer.serialize_seq(Some(0))?.end(),
        }
    }
}

struct PlanJson<'a>(&'a AssignedPlan);

impl Serialize for PlanJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = serializer.serialize_map(Some(4))?;
        object.serialize_entry("assignedDateTime", &self.0.assigned_date_time)?;
        object.serialize_entry("capabilityStatus", &self.0.capability_status)?;
        object.serialize_entry("service", &self.0.service)?;
        object.serialize_entry("servicePlanId", &self.0.service_plan_id)?;
        object.end()
    }
}

fn is_user_property(user: &GraphUser, name: &str) -> bool {
    USER_PROPERTIES.contains(&name) || user.extra.contains_key(name)
}

fn is_group_property(group: &GraphGroup, name: &str) -> bool {
    GROUP_PROPERTIES.contains(&name) || group.extra.contains_key(name)
}

fn absent(name: &str) -> Prop<'static> {
    if COLLECTIONS.contains(&name) {
        Prop::Empty
    } else {
        Prop::Null
    }
}

fn user_property<'a>(user: &'a GraphUser, name: &str) -> Prop<'a> {
    match name {
        "id" => Prop::Text(&user.id),
        "userPrincipalName" => Prop::Text(&user.user_principal_name),
        "displayName" => Prop::Text(&user.display_name),
        "mail" => Prop::MaybeText(user.mail.as_deref()),
        "proxyAddresses" => Prop::Texts(&user.proxy_addresses),
        "accountEnabled" => Prop::Flag(user.account_enabled),
        "userType" => Prop::Text(&user.user_type),
        "assignedPlans" => Prop::Plans(&user.assigned_plans),
        other => user
            .extra
            .get(other)
            .map_or_else(|| absent(other), Prop::Json),
    }
}

fn group_property<'a>(group: &'a GraphGroup, name: &str) -> Prop<'a> {
    if let Some(value) = group.extra.get(name) {
        return Prop::Json(value);
    }
    match name {
        "id" => Prop::Text(&group.id),
        "displayName" => Prop::Text(&group.display_name),
        "description" => Prop::MaybeText(group.description.as_deref()),
        "mailEnabled" => Prop::Flag(false),
        "securityEnabled" => Prop::Flag(true),
        "createdDateTime" => Prop::Text("2024-01-15T09:30:00Z"),
        other => absent(other),
    }
}
