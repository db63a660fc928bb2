//! The groups pages: every synchronised group (by profile, by name), and a group with its
//! members. Read from the local database only.

use crate::db::ids::{ProfileId, UserId};
use crate::db::models::directory_groups::{self, GroupFilter, GroupListRow, MemberRow};
use crate::db::models::{directory_profiles, users};
use crate::db::paging::{Keyset, Window};
use crate::error::AppError;
use crate::state::AppState;

pub const PAGE_SIZE: i64 = 50;

/// Where a page starts or ends, as the page's links say: after or before a row's id.
#[derive(Clone, Copy, Debug, Default)]
pub enum From {
    #[default]
    Start,
    After(i64),
    Before(i64),
}

pub struct GroupsList {
    pub window: Window<GroupListRow>,
    pub total: i64,
    /// Every profile, (id, name), for the filter.
    pub profiles: Vec<(ProfileId, String)>,
}

pub async fn list(
    state: &AppState,
    profile: Option<ProfileId>,
    needle: &str,
    from: From,
) -> Result<GroupsList, AppError> {
    let needle = needle.to_owned();
    state
        .db
        .run(move |c| -> Result<GroupsList, AppError> {
            let filter = GroupFilter {
                profile,
                needle: &needle,
            };
            // A page that starts at a group deleted since is the first page.
            let key = |id: i64, c: &mut _| directory_groups::name_of(c, id);
            let at = match from {
                From::Start => Keyset::First,
                From::After(id) => key(id, c)?.map_or(Keyset::First, |k| Keyset::After(k, id)),
                From::Before(id) => key(id, c)?.map_or(Keyset::First, |k| Keyset::Before(k, id)),
            };
            Ok(GroupsList {
                window: directory_groups::list_page(c, &filter, &at, PAGE_SIZE)?,
                total: directory_groups::count_matching(c, &filter)?,
                profiles: directory_profiles::list(c, "", false)?
                    .into_iter()
                    .map(|p| (p.id, p.name))
                    .collect(),
            })
        })
        .await
}

pub struct GroupDetail {
    pub group: GroupListRow,
    pub members: Window<MemberRow>,
    /// Members matching the search.
    pub matching: i64,
}

pub async fn detail(
    state: &AppState,
    id: i64,
    needle: &str,
    from: From,
) -> Result<GroupDetail, AppError> {
    let needle = needle.to_owned();
    state
        .db
        .run(move |c| -> Result<GroupDetail, AppError> {
            let group = directory_groups::find(c, id)?.ok_or(AppError::NotFound)?;
            let key = |user: i64, c: &mut _| users::username_key_of(c, UserId(user));
            let at = match from {
                From::Start => Keyset::First,
                From::After(u) => key(u, c)?.map_or(Keyset::First, |k| Keyset::After(k, u)),
                From::Before(u) => key(u, c)?.map_or(Keyset::First, |k| Keyset::Before(k, u)),
            };
            Ok(GroupDetail {
                members: directory_groups::members_page(c, id, &needle, &at, PAGE_SIZE)?,
                matching: directory_groups::count_members(c, id, &needle)?,
                group,
            })
        })
        .await
}
