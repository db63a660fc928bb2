//! IceWarp's XML (PROTOCOLS.md, "IceWarp API"): the `<iq>` request envelope written with
//! quick-xml's writer, and its answers read with quick-xml's serde — `<iq type="result">`
//! with the command's `<result>`, or `<iq type="error">` with an `<error uid>`.

use quick_xml::Writer;
use quick_xml::events::BytesText;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::directory::DirectoryError;
use crate::directory::rest::excerpt;

/// A command parameter: text, or a nested element of text parameters (`<filter>`).
#[derive(Clone)]
pub enum Param<'a> {
    Text(&'a str, &'a str),
    Nested(&'a str, Vec<(&'a str, &'a str)>),
}

/// `<iq sid><query xmlns="admin:iq:rpc"><commandname/><commandparams/></query></iq>`.
pub fn request(
    sid: Option<&str>,
    command: &str,
    params: &[Param],
) -> Result<String, DirectoryError> {
    let mut w = Writer::new(Vec::new());
    let mut iq = w.create_element("iq");
    if let Some(sid) = sid {
        iq = iq.with_attribute(("sid", sid));
    }
    let written = iq.write_inner_content(|w| {
        w.create_element("query")
            .with_attribute(("xmlns", "admin:iq:rpc"))
            .write_inner_content(|w| {
                w.create_element("commandname")
                    .write_text_content(BytesText::new(command))?;
                w.create_element("commandparams").write_inner_content(|w| {
                    for p in params {
                        match p {
                            Param::Text(name, value) => {
                                w.create_element(*name)
                                    .write_text_content(BytesText::new(value))?;
                            }
                            Param::Nested(name, inner) => {
                                w.create_element(*name).write_inner_content(|w| {
                                    for (n, v) in inner {
                                        w.create_element(*n)
                                            .write_text_content(BytesText::new(v))?;
                                    }
                                    Ok(())
                                })?;
                            }
                        }
                    }
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    });
    written.map_err(|e| DirectoryError::Settings(format!("cannot write the request: {e}")))?;
    String::from_utf8(w.into_inner())
        .map_err(|e| DirectoryError::Settings(format!("cannot write the request: {e}")))
}

#[derive(Deserialize)]
struct Iq<R> {
    #[serde(rename = "@type", default)]
    kind: String,
    query: Option<Query<R>>,
}

#[derive(Deserialize)]
struct Query<R> {
    result: Option<R>,
    error: Option<ErrorElement>,
}

#[derive(Deserialize)]
struct ErrorElement {
    #[serde(rename = "@uid", default)]
    uid: String,
}

/// What an answer said.
pub enum Answer<R> {
    Result {
        result: R,
    },
    /// `<iq type="error">`, with its uid.
    Error(String),
}

/// Reads an answer whose `<result>` is an `R`.
pub fn answer<R: DeserializeOwned>(body: &[u8]) -> Result<Answer<R>, DirectoryError> {
    let unreadable = |why: String| DirectoryError::Incomplete {
        detail: format!(
            "IceWarp's answer is not the expected XML ({why}): {}",
            without_sid(&excerpt(body))
        ),
    };
    let text = std::str::from_utf8(body).map_err(|e| unreadable(e.to_string()))?;
    let iq: Iq<R> = quick_xml::de::from_str(text).map_err(|e| unreadable(e.to_string()))?;
    let query = iq.query.ok_or_else(|| unreadable("no <query>".into()))?;
    match (iq.kind.as_str(), query.result, query.error) {
        ("result", Some(result), _) => Ok(Answer::Result { result }),
        ("error", _, Some(e)) => Ok(Answer::Error(e.uid)),
        ("error", _, None) => Ok(Answer::Error(String::new())),
        (kind, _, _) => Err(unreadable(format!(
            "an <iq type=\"{kind}\"> without a result"
        ))),
    }
}

/// A quoted answer with its session id blanked: a sid is a live session.
pub fn without_sid(text: &str) -> String {
    match text.split_once("sid=\"") {
        Some((before, after)) => {
            let rest = after.split_once('"').map_or("", |(_, rest)| rest);
            format!("{before}sid=\"…\"{}", without_sid(rest))
        }
        None => text.to_owned(),
    }
}

/// The `sid` attribute of an answer's `<iq>`, even when the rest does not parse (so the
/// session can still be closed).
pub fn sid_of(body: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let sid = e.try_get_attribute("sid").ok()??;
                // Session ids are plain tokens: no entities to resolve.
                return Some(sid.value.into_owned());
            }
            quick_xml::events::Event::Eof => return None,
            _ => {}
        }
        buf.clear();
    }
}

/// One page of a list: `<offset>`, `<overallcount>` and the `<items>`.
#[derive(Deserialize)]
pub struct Page<T> {
    pub offset: Option<u64>,
    pub overallcount: Option<u64>,
    #[serde(default = "Option::default")]
    pub items: Option<Items<T>>,
}

#[derive(Deserialize)]
pub struct Items<T> {
    #[serde(rename = "item", default = "Vec::new")]
    pub item: Vec<T>,
}

/// What tells the items of a list apart (a repeated one means a wrong page).
pub trait Keyed {
    fn key(&self) -> String;
}

#[derive(Deserialize)]
pub struct Domain {
    pub name: String,
}

impl Keyed for Domain {
    fn key(&self) -> String {
        self.name.trim().to_lowercase()
    }
}

impl Keyed for AccountItem {
    fn key(&self) -> String {
        self.email.trim().to_lowercase()
    }
}

impl Keyed for MemberItem {
    fn key(&self) -> String {
        self.val.trim().to_lowercase()
    }
}

#[derive(Deserialize)]
pub struct AccountItem {
    #[serde(default)]
    pub name: String,
    pub email: String,
    pub accounttype: u32,
    pub accountstate: Option<AccountState>,
    #[serde(default)]
    pub aliases: String,
}

#[derive(Deserialize)]
pub struct AccountState {
    pub state: u32,
}

#[derive(Deserialize)]
pub struct MemberItem {
    pub val: String,
}
