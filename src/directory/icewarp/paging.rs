//! IceWarp's lists, read by offset and count to `overallcount`, checked page by page.

use std::collections::HashSet;

use super::IceWarpDirectory;
use super::xml::{Answer, Keyed, Page, Param};
use crate::directory::DirectoryError;

/// Items asked for per page.
const PAGE: u64 = 500;
/// More than any server holds: a larger `overallcount` is a wrong answer.
const MAX_ITEMS: u64 = 10_000_000;

impl IceWarpDirectory {
    /// Every page of a list, to `overallcount`. Each page must start where it was asked
    /// to and bring items not seen yet, so a server that ignores the offset cannot pass a
    /// repeated page off as the rest of the list.
    pub(super) async fn all<T: serde::de::DeserializeOwned + Keyed>(
        &self,
        sid: &str,
        command: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<T>, DirectoryError> {
        let incomplete = |why: String| DirectoryError::Incomplete {
            detail: format!("IceWarp's {command} answer {why}"),
        };
        let mut items: Vec<T> = Vec::new();
        let mut seen = HashSet::new();
        let mut total = None;
        loop {
            let offset = items.len() as u64;
            let (offset_text, count) = (offset.to_string(), PAGE.to_string());
            let mut all: Vec<Param> = params.to_vec();
            all.push(Param::Text("offset", &offset_text));
            all.push(Param::Text("count", &count));
            let page: Page<T> = match self.call(Some(sid), command, &all).await? {
                Answer::Result { result, .. } => result,
                Answer::Error(uid) => {
                    return Err(DirectoryError::Protocol {
                        detail: format!("IceWarp answered {command} with the error {uid}"),
                    });
                }
            };
            let overall = page
                .overallcount
                .ok_or_else(|| incomplete("has no overallcount".into()))?;
            if overall > MAX_ITEMS {
                return Err(incomplete(format!("claims {overall} items")));
            }
            if total.is_some_and(|t| t != overall) {
                return Err(incomplete(
                    "changed its overallcount while it was being read".into(),
                ));
            }
            total = Some(overall);
            if page.offset.is_some_and(|o| o != offset) {
                return Err(incomplete(format!(
                    "starts at {:?}, not at {offset}",
                    page.offset
                )));
            }
            let got = page.items.map(|i| i.item).unwrap_or_default();
            if got.len() as u64 > PAGE {
                return Err(incomplete(format!(
                    "holds {} items, more than asked",
                    got.len()
                )));
            }
            let short = (got.len() as u64) < PAGE;
            for item in got {
                if !seen.insert(item.key()) {
                    return Err(incomplete(format!("repeats {}", item.key())));
                }
                items.push(item);
            }
            let read = items.len() as u64;
            if read == overall {
                return Ok(items);
            }
            // Fewer items than asked before the end: something was left out.
            if read > overall || short {
                return Err(incomplete(format!(
                    "stopped at {read} of {overall} items (a short page)"
                )));
            }
        }
    }
}
