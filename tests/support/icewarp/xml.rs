//! A minimal XML reader for the requests the fake receives, and the escaping of what it
//! writes. Test support only (the product reads IceWarp with a real XML crate): it accepts
//! what a well-formed request can contain — a declaration, comments, processing
//! instructions, CDATA, the five named entities and character references, attributes in
//! either quote — and refuses what is not well-formed (unclosed or crossed tags, a bare `&`
//! or `<`, unknown entities, text outside the root, a DOCTYPE), so a client that writes
//! broken XML gets IceWarp's `xml_invalid` instead of being understood by luck.

/// An element: its name (with any prefix, as written), attributes and children.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

#[derive(Debug)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element of that name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The element at `path` below this one (`["filter", "namemask"]`).
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, name| e.child(name))
    }

    /// The text directly inside, entities decoded, CDATA included.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Every element without child elements below this one, in document order, as
    /// (name, text) pairs: how the fake records a command's parameters.
    pub fn leaves(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves(&self, out: &mut Vec<(String, String)>) {
        for child in self.elements() {
            if child.elements().next().is_none() {
                out.push((child.name.clone(), child.text()));
            } else {
                child.collect_leaves(out);
            }
        }
    }
}

/// Escapes text or an attribute value: all five predefined entities, so the result is safe
/// in either place.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
}

/// Nesting deeper than this is refused: no request needs more than five levels.
const MAX_DEPTH: usize = 32;

/// Parses a whole document; the error says what broke, for the fake's own debugging.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut reader = Reader {
        rest: text.strip_prefix('\u{feff}').unwrap_or(text),
    };
    reader.misc()?;
    if !reader.rest.starts_with('<') {
        return Err("no root element".into());
    }
    let root = reader.element(0)?;
    reader.misc()?;
    if !reader.rest.is_empty() {
        return Err("content after the root element".into());
    }
    Ok(root)
}

struct Reader<'a> {
    rest: &'a str,
}

impl Reader<'_> {
    fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn skip_space(&mut self) {
        self.rest = self
            .rest
            .trim_start_matches([' ', '\t', '\r', '\n'].as_slice());
    }

    /// Everything up to `end`, which is consumed too.
    fn until(&mut self, end: &str) -> Result<&str, String> {
        let at = self
            .rest
            .find(end)
            .ok_or_else(|| format!("unterminated, no {end:?}"))?;
        let (before, after) = self.rest.split_at(at);
        self.rest = &after[end.len()..];
        Ok(before)
    }

    /// Whitespace, comments and processing instructions (the declaration among them)
    /// before or after the root.
    fn misc(&mut self) -> Result<(), String> {
        loop {
            self.skip_space();
            if self.eat("<?") {
                self.until("?>")?;
            } else if self.eat("<!--") {
                self.until("-->")?;
            } else if self.rest.starts_with("<!") {
                return Err("DOCTYPE and other declarations are not accepted".into());
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let end = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.')))
            .unwrap_or(self.rest.len());
        let name = &self.rest[..end];
        match name.chars().next() {
            Some(c) if c.is_alphabetic() || c == '_' || c == ':' => {
                self.rest = &self.rest[end..];
                Ok(name.to_owned())
            }
            _ => Err(format!("bad name at {:?}", excerpt(self.rest))),
        }
    }

    /// An element starting at its `<`.
    fn element(&mut self, depth: usize) -> Result<Element, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        self.eat("<");
        let mut element = Element {
            name: self.name()?,
            ..Element::default()
        };
        loop {
            let had_space = self.rest.starts_with([' ', '\t', '\r', '\n']);
            self.skip_space();
            if self.eat("/>") {
                return Ok(element);
            }
            if self.eat(">") {
                break;
            }
            if !had_space {
                return Err(format!("bad start tag <{}", element.name));
            }
            let name = self.name()?;
            self.skip_space();
            if !self.eat("=") {
                return Err(format!("attribute {name} without a value"));
            }
            self.skip_space();
            let quote = if self.eat("\"") {
                "\""
            } else if self.eat("'") {
                "'"
            } else {
                return Err(format!("attribute {name} not quoted"));
            };
            let raw = self.until(quote)?;
            if raw.contains('<') {
                return Err(format!("'<' in attribute {name}"));
            }
            if element.attrs.iter().any(|(n, _)| *n == name) {
                return Err(format!("attribute {name} twice"));
            }
            element.attrs.push((name, decode(raw)?));
        }
        loop {
            let at = self
                .rest
                .find('<')
                .ok_or_else(|| format!("element <{}> is not closed", element.name))?;
            if at > 0 {
                let raw = &self.rest[..at];
                self.rest = &self.rest[at..];
                push_text(&mut element, decode(raw)?);
            }
            if self.eat("</") {
                let name = self.name()?;
                self.skip_space();
                if !self.eat(">") || name != element.name {
                    return Err(format!("<{}> closed by </{name}", element.name));
                }
                return Ok(element);
            } else if self.eat("<!--") {
                self.until("-->")?;
            } else if self.eat("<![CDATA[") {
                let text = self.until("]]>")?.to_owned();
                push_text(&mut element, text);
            } else if self.eat("<?") {
                self.until("?>")?;
            } else if self.rest.starts_with("<!") {
                return Err("declaration inside an element".into());
            } else {
                let child = self.element(depth + 1)?;
                element.children.push(Node::Element(child));
            }
        }
    }
}

/// Adjacent text (text, a comment, more text) is one text node.
fn push_text(element: &mut Element, text: String) {
    if let Some(Node::Text(last)) = element.children.last_mut() {
        last.push_str(&text);
    } else {
        element.children.push(Node::Text(text));
    }
}

/// Entity and character references decoded; a bare `&` is an error, as XML says.
fn decode(raw: &str) -> Result<String, String> {
    if raw.contains("]]>") {
        return Err("']]>' in text".into());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let end = rest
            .find(';')
            .ok_or_else(|| format!("bare '&' before {:?}", excerpt(rest)))?;
        let entity = &rest[..end];
        rest = &rest[end + 1..];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let number = if let Some(hex) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                number
                    .and_then(char::from_u32)
                    .filter(|c| *c != '\0')
                    .ok_or_else(|| format!("unknown entity &{entity};"))?
            }
        };
        out.push(c);
    }
    out.push_str(rest);
    Ok(out)
}

fn excerpt(text: &str) -> String {
    text.chars().take(20).collect()
}
