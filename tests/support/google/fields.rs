//! Google's partial responses (`fields=nextPageToken,users(id,name/fullName)`): the
//! selection's grammar, its check against the resource's schema (an unknown name is a 400 at
//! Google, so a misspelt field fails the client's test instead of silently vanishing), and a
//! JSON writer that emits only what is selected, straight from the directory into bytes so a
//! 500-user page builds no `Value` per user.

use serde_json::{Map, Value};

/// A selection: each name with what is selected under it (`None`: all of it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Vec<(String, Option<Fields>)>);

impl Fields {
    /// Parses `a,b/c,d(e,f/g)`; `Err` carries the text Google would name as invalid.
    pub fn parse(text: &str) -> Result<Fields, String> {
        let mut parser = Parser {
            text: text.as_bytes(),
            at: 0,
        };
        let fields = parser.list().map_err(|_| text.to_owned())?;
        if parser.at != parser.text.len() {
            return Err(text.to_owned());
        }
        Ok(fields)
    }

    /// `Some(sub)` when `name` is selected (with `sub` under it), `None` when it is not.
    pub fn get(&self, name: &str) -> Option<Option<&Fields>> {
        let found = self.0.iter().find(|(n, _)| n == name);
        let found = found.or_else(|| self.0.iter().find(|(n, _)| n == "*"));
        found.map(|(_, sub)| sub.as_ref())
    }

    fn add(&mut self, name: String, sub: Option<Fields>) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                *existing = match (existing.take(), sub) {
                    (Some(mut a), Some(b)) => {
                        for (n, s) in b.0 {
                            a.add(n, s);
                        }
                        Some(a)
                    }
                    // Selecting the whole of it once selects the whole of it.
                    _ => None,
                };
            }
            None => self.0.push((name, sub)),
        }
    }

    /// The first name not in `schema` (nested names checked where the schema knows them).
    pub fn unknown(&self, schema: &Schema) -> Option<String> {
        for (name, sub) in &self.0 {
            if name == "*" {
                continue;
            }
            if !schema.names.contains(&name.as_str()) {
                return Some(name.clone());
            }
            let nested = schema.nested.iter().find(|(n, _)| n == name);
            if let (Some(sub), Some((_, inner))) = (sub, nested)
                && let Some(bad) = sub.unknown(inner)
            {
                return Some(format!("{name}/{bad}"));
            }
        }
        None
    }
}

/// The property names of a resource, and the schemas of its object-valued ones.
pub struct Schema {
    pub names: &'static [&'static str],
    pub nested: &'static [(&'static str, &'static Schema)],
}

// ---- the Directory API's resources, as `fields` may name their members ----

pub const NAME_SCHEMA: Schema = Schema {
    names: &["givenName", "familyName", "fullName", "displayName"],
    nested: &[],
};

/// The User resource's properties (the reference's list), for checking `fields`.
pub const USER_SCHEMA: Schema = Schema {
    names: &[
        "kind",
        "id",
        "etag",
        "primaryEmail",
        "name",
        "isAdmin",
        "isDelegatedAdmin",
        "lastLoginTime",
        "creationTime",
        "deletionTime",
        "agreedToTerms",
        "password",
        "hashFunction",
        "suspended",
        "suspensionReason",
        "archived",
        "changePasswordAtNextLogin",
        "ipWhitelisted",
        "ims",
        "emails",
        "externalIds",
        "relations",
        "addresses",
        "organizations",
        "phones",
        "languages",
        "posixAccounts",
        "sshPublicKeys",
        "notes",
        "websites",
        "locations",
        "includeInGlobalAddressList",
        "keywords",
        "gender",
        "thumbnailPhotoUrl",
        "thumbnailPhotoEtag",
        "customSchemas",
        "isEnrolledIn2Sv",
        "isEnforcedIn2Sv",
        "aliases",
        "nonEditableAliases",
        "customerId",
        "orgUnitPath",
        "isMailboxSetup",
        "recoveryEmail",
        "recoveryPhone",
        "guestAccountInfo",
        "isGuestUser",
    ],
    nested: &[("name", &NAME_SCHEMA)],
};

pub const GROUP_SCHEMA: Schema = Schema {
    names: &[
        "kind",
        "id",
        "etag",
        "email",
        "name",
        "directMembersCount",
        "description",
        "adminCreated",
        "aliases",
        "nonEditableAliases",
    ],
    nested: &[],
};

pub const MEMBER_SCHEMA: Schema = Schema {
    names: &[
        "kind",
        "etag",
        "id",
        "email",
        "role",
        "type",
        "status",
        "delivery_settings",
    ],
    nested: &[],
};

pub const USERS_PAGE: Schema = Schema {
    names: &["kind", "etag", "users", "nextPageToken", "trigger_event"],
    nested: &[("users", &USER_SCHEMA)],
};
pub const GROUPS_PAGE: Schema = Schema {
    names: &["kind", "etag", "groups", "nextPageToken"],
    nested: &[("groups", &GROUP_SCHEMA)],
};
pub const MEMBERS_PAGE: Schema = Schema {
    names: &["kind", "etag", "members", "nextPageToken"],
    nested: &[("members", &MEMBER_SCHEMA)],
};

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn list(&mut self) -> Result<Fields, ()> {
        let mut fields = Fields::default();
        loop {
            let (path, sub) = self.item()?;
            // `a/b/c(sub)` is `a(b(c(sub)))`.
            let mut nested = sub;
            for name in path.iter().skip(1).rev() {
                let mut inner = Fields::default();
                inner.add(name.clone(), nested);
                nested = Some(inner);
            }
            fields.add(path[0].clone(), nested);
            if self.peek() == Some(b',') {
                self.at += 1;
            } else {
                return Ok(fields);
            }
        }
    }

    fn item(&mut self) -> Result<(Vec<String>, Option<Fields>), ()> {
        let mut path = vec![self.name()?];
        while self.peek() == Some(b'/') {
            self.at += 1;
            path.push(self.name()?);
        }
        if self.peek() != Some(b'(') {
            return Ok((path, None));
        }
        self.at += 1;
        let sub = self.list()?;
        if self.peek() != Some(b')') {
            return Err(());
        }
        self.at += 1;
        Ok((path, Some(sub)))
    }

    fn name(&mut self) -> Result<String, ()> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'*' | b'-' | b'#'))
        {
            self.at += 1;
        }
        if self.at == start {
            return Err(());
        }
        Ok(String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
    }
}

/// A JSON object being written: members outside the selection are skipped, and members the
/// `shadow` map holds are left for `extras` to write (an object's `extra` replaces them).
pub struct Obj<'o, 's> {
    out: &'o mut Vec<u8>,
    selection: Option<&'s Fields>,
    shadow: Option<&'s Map<String, Value>>,
    first: bool,
}

impl<'o, 's> Obj<'o, 's> {
    pub fn new(out: &'o mut Vec<u8>, selection: Option<&'s Fields>) -> Obj<'o, 's> {
        out.push(b'{');
        Obj {
            out,
            selection,
            shadow: None,
            first: true,
        }
    }

    pub fn finish(self) {
        self.out.push(b'}');
    }

    pub fn shadowed_by(&mut self, extra: &'s Map<String, Value>) {
        self.shadow = Some(extra);
    }

    fn want(&self, name: &str) -> Option<Option<&'s Fields>> {
        if self.shadow.is_some_and(|m| m.contains_key(name)) {
            return None;
        }
        match self.selection {
            None => Some(None),
            Some(fields) => fields.get(name),
        }
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, name);
        self.out.push(b':');
    }

    pub fn str(&mut self, name: &str, value: &str) {
        if self.want(name).is_some() {
            self.key(name);
            write_str(self.out, value);
        }
    }

    pub fn bool(&mut self, name: &str, value: bool) {
        if self.want(name).is_some() {
            self.key(name);
            self.out
                .extend_from_slice(if value { b"true" } else { b"false" });
        }
    }

    pub fn strs(&mut self, name: &str, values: &[String]) {
        if self.want(name).is_some() {
            self.key(name);
            serde_json::to_writer(&mut *self.out, values).expect("write JSON");
        }
    }

    pub fn value(&mut self, name: &str, value: &Value) {
        if let Some(sub) = self.want(name) {
            self.key(name);
            write_filtered(self.out, value, sub);
        }
    }

    pub fn obj(&mut self, name: &str, write: impl FnOnce(&mut Obj<'_, 's>)) {
        if let Some(sub) = self.want(name) {
            self.key(name);
            let mut inner = Obj::new(&mut *self.out, sub);
            write(&mut inner);
            inner.finish();
        }
    }

    /// An array of objects, each written by `write`.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut Obj<'_, 's>, T),
    ) {
        if let Some(sub) = self.want(name) {
            self.key(name);
            self.out.push(b'[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                let mut inner = Obj::new(&mut *self.out, sub);
                write(&mut inner, item);
                inner.finish();
            }
            self.out.push(b']');
        }
    }

    /// Writes the shadowing map's members (subject to the selection), but those in `skip`.
    pub fn extras(&mut self, skip: &[&str]) {
        if let Some(extra) = self.shadow.take() {
            for (name, value) in extra {
                if !skip.contains(&name.as_str()) {
                    self.value(name, value);
                }
            }
        }
    }
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("write JSON");
}

/// A value with a selection applied: objects keep the selected members, arrays apply it
/// to each element.
fn write_filtered(out: &mut Vec<u8>, value: &Value, selection: Option<&Fields>) {
    match (value, selection) {
        (Value::Object(map), Some(fields)) => {
            let mut object = Obj::new(out, Some(fields));
            for (name, member) in map {
                object.value(name, member);
            }
            object.finish();
        }
        (Value::Array(items), Some(_)) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_filtered(out, item, selection);
            }
            out.push(b']');
        }
        _ => serde_json::to_writer(out, value).expect("write JSON"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_and_groups_nest_alike() {
        let a = super::Fields::parse("nextPageToken,users(id,name/fullName)").expect("parse");
        let b =
            super::Fields::parse("users(name(fullName)),users/id,nextPageToken").expect("parse");
        let users = a.get("users").flatten().expect("users");
        assert!(users.get("id").is_some());
        assert_eq!(
            users.get("name").flatten().and_then(|n| n.get("fullName")),
            Some(None)
        );
        assert!(users.get("primaryEmail").is_none());
        assert_eq!(
            b.get("users").flatten().and_then(|u| u.get("name")),
            users.get("name")
        );
        assert!(super::Fields::parse("users(id").is_err());
        assert!(super::Fields::parse("users,,id").is_err());
    }
}
