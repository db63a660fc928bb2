//! The console's read-only lists: the groups page (filter by profile, search, keyset pages
//! both ways, each group's members) and the audit log (filters, words, links to subjects,
//! keyset pages, CSV export). Groups come from a real synchronisation of the Application
//! Integration fake. Both backends.

use roster::audit::{self, Action, Actor};
use roster::sync::{self, Trigger};

use crate::app_integration::fields;
use crate::profile_pages::{create, set};
use crate::support::app::TestApp;
use crate::support::app_integration::{AppGroup, AppIntegrationFake};
use crate::sync::context;

/// The hrefs of links to `prefix…` in `html`, in page order.
fn links(html: &str, prefix: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with(prefix))
        .map(|href| href.replace("&amp;", "&").replace("&#38;", "&"))
        .collect()
}

/// The link with this `rel`, if the pager has it.
fn pager(html: &str, rel: &str) -> Option<String> {
    let nav = html
        .split("class=\"pager\"")
        .nth(1)?
        .split("</nav>")
        .next()?;
    nav.split("<a href=\"")
        .skip(1)
        .find(|a| a.contains(&format!("rel=\"{rel}\"")))
        .and_then(|a| a.split('"').next())
        .map(|href| href.replace("&amp;", "&").replace("&#38;", "&"))
}

/// 130 users; groups Team 00 … Team 59 (two members each) and Everyone (all); synced.
async fn synced(app: &TestApp, name: &str) -> (AppIntegrationFake, roster::db::ids::ProfileId) {
    let fake = AppIntegrationFake::start().await;
    fake.require_basic("roster", "roster's password");
    fake.generate(130);
    let user = AppIntegrationFake::generated_user_name;
    let mut groups: Vec<AppGroup> = (0..60)
        .map(|g| {
            let (a, b) = (user(2 * g), user(2 * g + 1));
            AppGroup::new(
                &format!("Team {g:02}"),
                &format!("Team number {g}"),
                &[&a, &b],
            )
        })
        .collect();
    let everyone: Vec<String> = (0..130).map(user).collect();
    let everyone: Vec<&str> = everyone.iter().map(String::as_str).collect();
    groups.push(AppGroup::new("Everyone", "", &everyone));
    fake.set_groups(Some(groups));
    app.sign_in_as_admin().await;
    let mut f = fields(name, &fake);
    set(&mut f, "delete_threshold_count", "500");
    let id = create(app, &f).await;
    let run = sync::run(&context(app), id, Trigger::Cli, "test", false)
        .await
        .expect("run");
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    (fake, id)
}

crate::db_test! {
    async fn groups_page_filters_searches_and_pages_both_ways(app) {
        let (_fake, first) = synced(&app, "MailStore").await;
        let other = AppIntegrationFake::start().await;
        other.require_basic("roster", "roster's password");
        other.set_users(vec![crate::support::app_integration::AppUser::new("zoe", "Zoe Zed", &[])]);
        other.set_groups(Some(vec![AppGroup::new("Other team", "", &["zoe"])]));
        let second = create(&app, &fields("Second", &other)).await;
        let run = sync::run(&context(&app), second, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(run.status, "succeeded", "{:?}", run.error);

        let html = app.get_html("/admin/groups").await;
        assert!(html.contains("62 groups"), "{html}");
        let page1 = links(&html, "/admin/groups/");
        assert_eq!(page1.len(), 50, "50 a page");
        assert!(pager(&html, "prev").is_none());
        let next = pager(&html, "next").expect("a next page");
        let html2 = app.get_html(&next).await;
        let page2 = links(&html2, "/admin/groups/");
        assert_eq!(page2.len(), 12);
        assert!(page1.iter().all(|g| !page2.contains(g)), "no group on both pages");
        assert!(pager(&html2, "next").is_none());
        // Back: the same first page.
        let html1 = app.get_html(&pager(&html2, "prev").expect("a previous page")).await;
        assert_eq!(links(&html1, "/admin/groups/"), page1);
        // Ordered by name: Everyone, Other team, Team 00 …
        let names: Vec<&str> = html.split("<td><a href=\"/admin/groups/").skip(1).filter_map(|r| r.split('>').nth(1)?.split('<').next()).collect();
        assert_eq!(&names[..3], ["Everyone", "Other team", "Team 00"]);
        // Each group links to its profile.
        assert!(html.contains(&format!("href=\"/admin/profiles/{first}\">MailStore")));

        let html = app.get_html(&format!("/admin/groups?profile={second}")).await;
        assert!(html.contains("1 group.") && html.contains("Other team") && !html.contains("Team 00"), "{html}");
        let html = app.get_html("/admin/groups?q=TEAM+5").await;
        assert!(html.contains("10 groups matching"), "case-insensitive: {html}");
        let html = app.get_html("/admin/groups?q=%25").await;
        assert!(html.contains("No group matches"), "a LIKE wildcard is a character: {html}");
        // Paging keeps the filter.
        let html = app.get_html(&format!("/admin/groups?profile={first}")).await;
        let next = pager(&html, "next").expect("next");
        assert!(next.contains(&format!("profile={first}")), "{next}");
        assert!(!app.get_html(&next).await.contains("Other team"));
        // Nonsense paging is the first page, not an error.
        assert_eq!(app.get("/admin/groups?after=nonsense").await.status().as_u16(), 200);
        assert_eq!(app.get("/admin/groups/999999").await.status().as_u16(), 404);
    }
}

crate::db_test! {
    async fn a_group_page_lists_its_members_paged_and_searchable_with_links(app) {
        let (_fake, profile) = synced(&app, "MailStore").await;
        let html = app.get_html("/admin/groups?q=everyone").await;
        let group = links(&html, "/admin/groups/").into_iter().next().expect("Everyone");
        let page = app.get_html(&group).await;
        assert!(page.contains("130 members."), "{page}");
        assert!(page.contains(&format!("href=\"/admin/profiles/{profile}\"")), "source profile linked");
        let members1 = links(&page, "/admin/users/");
        assert_eq!(members1.len(), 50);
        let page2 = app.get_html(&pager(&page, "next").expect("next")).await;
        let page3 = app.get_html(&pager(&page2, "next").expect("next")).await;
        let members: Vec<String> = [members1, links(&page2, "/admin/users/"), links(&page3, "/admin/users/")].concat();
        assert_eq!(members.len(), 130);
        let unique: std::collections::HashSet<&String> = members.iter().collect();
        assert_eq!(unique.len(), 130, "no member twice, none left out");
        let found = app.get_html(&format!("{group}?q=user12")).await;
        // user12 and user120 … user129.
        assert!(found.contains("11 members matching"), "{found}");

        // A user's page links to each of their groups and to the source profile.
        let user = app.get_html(&members[0]).await;
        assert!(user.contains(&format!("href=\"{group}\">Everyone")), "{user}");
        assert!(user.contains(&format!("href=\"/admin/profiles/{profile}\">MailStore")), "{user}");
        // The dashboard's count links to the groups.
        let dashboard = app.get_html("/admin").await;
        assert!(dashboard.contains("href=\"/admin/groups\"><strong>61</strong> groups"), "{dashboard}");
    }
}

crate::db_test! {
    async fn the_audit_log_filters_links_and_speaks_words(app) {
        app.sign_in_as_admin().await;
        let res = app.create_user("grace", "Grace's long password", &["log_on", "read_own_archive"]).await;
        assert_eq!(res.status().as_u16(), 303);
        let grace = crate::support::app::location(&res);
        let stranger = app.new_client();
        assert_eq!(stranger.sign_in("grace", "not her password").await.status().as_u16(), 401);

        let html = app.get_html("/admin/audit").await;
        assert!(html.contains("<td>User created</td>") && html.contains("Log on, Read own archive"), "{html}");
        assert!(html.contains(&format!("<a href=\"{grace}\">grace</a>")), "the subject links to the user: {html}");
        assert!(html.contains("<td>Sign-in refused</td>") && html.contains("<td>Signed in</td>"));
        let html = app.get_html("/admin/audit?action=sign_in_failed").await;
        assert!(html.contains("1 event,") && !html.contains("<td>User created</td>"), "{html}");
        let html = app.get_html("/admin/audit?actor=ADM&action=user_created").await;
        assert!(html.contains("1 event,"), "actor is a case-insensitive part: {html}");
        let html = app.get_html("/admin/audit?target=nobody-at-all").await;
        assert!(html.contains("No event matches"));
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d");
        let html = app.get_html(&format!("/admin/audit?from={tomorrow}")).await;
        assert!(html.contains("No event matches"));
        let today = chrono::Utc::now().format("%Y-%m-%d");
        let html = app.get_html(&format!("/admin/audit?from={today}&to={today}")).await;
        assert!(html.contains("<td>User created</td>"), "to includes the whole day");
        let res = app.get("/admin/audit?from=yesterday").await;
        assert_eq!(res.status().as_u16(), 422);
        let html = res.text().await.expect("page");
        assert!(html.contains("id=\"from-error\"") && html.contains("YYYY-MM-DD"), "{html}");
        // The dashboard links to the log, and its rows to their subjects.
        let dashboard = app.get_html("/admin").await;
        assert!(dashboard.contains("href=\"/admin/audit\"") && dashboard.contains(&format!("<a href=\"{grace}\">grace</a>")), "{dashboard}");
        // A deleted user's events stay, without a link.
        let token = crate::support::app::csrf_token_in(&app.get_html(&grace).await);
        let res = app.client.post(app.url(&format!("{grace}/action"))).form(&[("csrf_token", token.as_str()), ("action", "delete")]).send().await.expect("delete");
        assert!(res.status().is_redirection() || res.status().is_success(), "{}", res.status());
        let html = app.get_html("/admin/audit?action=user_created").await;
        assert!(html.contains(">grace<") && !html.contains(&format!("<a href=\"{grace}\">")), "{html}");
    }
}

crate::db_test! {
    async fn the_audit_log_pages_by_keyset_and_exports_what_is_filtered(app) {
        app.sign_in_as_admin().await;
        app.conn(|c| {
            let actor = Actor::anonymous("=HYPERLINK(\"http://evil.example\")", "192.0.2.1");
            for i in 0..120 {
                audit::write(c, &actor, Action::SignInFailed, &format!("name {i:03}"), "wrong password").expect("event");
            }
        })
        .await;
        let filter = "/admin/audit?action=sign_in_failed";
        let html = app.get_html(filter).await;
        assert!(html.contains("120 events,"), "{html}");
        let targets = |html: &str| -> Vec<String> {
            html.split("<td>name ").skip(1).filter_map(|r| r.split('<').next()).map(str::to_owned).collect()
        };
        let page1 = targets(&html);
        assert_eq!(page1.len(), 50);
        assert_eq!(page1[0], "119", "newest first");
        let older = pager(&html, "next").expect("older");
        assert!(older.contains("action=sign_in_failed"), "{older}");
        // Events written meanwhile do not shift the older pages.
        app.conn(|c| audit::write(c, &Actor::anonymous("x", ""), Action::SignInFailed, "name new", "").expect("event")).await;
        let html2 = app.get_html(&older).await;
        let page2 = targets(&html2);
        assert_eq!(page2.first().map(String::as_str), Some("069"), "{older}: {page2:?}");
        let html3 = app.get_html(&pager(&html2, "next").expect("older")).await;
        let page3 = targets(&html3);
        assert_eq!(page3.len(), 20);
        assert!(pager(&html3, "next").is_none());
        let back = app.get_html(&pager(&html3, "prev").expect("newer")).await;
        assert_eq!(targets(&back), page2);

        let res = app.get("/admin/audit.csv?action=sign_in_failed&target=name+00").await;
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").starts_with("text/csv"));
        assert!(res.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or("").contains("attachment"));
        let csv = res.text().await.expect("csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 11, "header and name 000 … name 009: {csv}");
        assert!(lines[0].starts_with("id,time (UTC),actor,action,subject"));
        assert!(lines[1].contains("Sign-in refused") && lines[1].contains("name 009"), "{}", lines[1]);
        assert!(lines[1].contains("\"'=HYPERLINK(\"\"http://evil.example\"\")\""), "a formula is defused: {}", lines[1]);
        // Only for admins.
        let anonymous = app.new_client();
        let res = anonymous.client.get(anonymous.url("/admin/audit.csv")).send().await.expect("get");
        assert!(res.status().is_redirection() || res.status().as_u16() == 401, "{}", res.status());
    }
}

crate::db_test! {
    async fn the_profiles_list_shows_each_profiles_last_run_users_and_next_run(app) {
        let (_fake, profile) = synced(&app, "MailStore").await;
        let idle = create(&app, &fields("Idle", &AppIntegrationFake::start().await)).await;
        let new = format!("/admin/schedules/new?profile={profile}");
        let res = app.post_form(&new, "/admin/schedules", &[("profile", &profile.to_string()), ("kind", "daily"), ("time", "03:00"), ("time_zone", "UTC"), ("enabled", "on")]).await;
        assert_eq!(res.status().as_u16(), 303);
        let html = app.get_html("/admin/profiles").await;
        let row = |name: &str| html.split("<tr>").find(|r| r.contains(&format!(">{name}</a>"))).unwrap_or_default().to_owned();
        let busy = row("MailStore");
        assert!(busy.contains("<td>130</td>"), "users: {busy}");
        assert!(busy.contains("Synchronisation succeeded: 130 created, 0 updated, 0 deleted"), "{busy}");
        assert!(busy.contains("03:00 UTC"), "next run: {busy}");
        let quiet = row("Idle");
        assert!(quiet.contains("<td>0</td>") && quiet.contains("never") && quiet.contains("<td>—</td>"), "{quiet}");
        let _ = idle;
    }
}

crate::db_test! {
    async fn the_users_list_counts_exactly_numbers_its_pages_and_filters(app) {
        use diesel::prelude::*;
        use roster::db::schema::users;
        let (_fake, profile) = synced(&app, "MailStore").await;
        let res = app.create_user("grace", "Grace's long password", &["log_on"]).await;
        assert_eq!(res.status().as_u16(), 303);
        app.conn(|c| {
            diesel::update(users::table.filter(users::username.eq("user5"))).set(users::disabled.eq(true)).execute(c).expect("disable");
            diesel::update(users::table.filter(users::username.eq("user6"))).set(users::directory_disabled.eq(true)).execute(c).expect("directory");
            diesel::update(users::table.filter(users::username.eq("user7"))).set(users::mfa_required.eq(true)).execute(c).expect("mfa");
        }).await;
        let html = app.get_html("/admin/users").await;
        assert!(html.contains("Showing 1–50 of 132 users."), "exact: {html}");
        assert!(html.contains("aria-label=\"Page 2\"") && html.contains("aria-label=\"Page 3\"") && html.contains("<span aria-current=\"page\">1</span>"), "numbered: {html}");
        let count = |html: &str| html.split(" of ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<i64>().ok());
        let by = |query: &str| {
            let app = &app;
            let path = format!("/admin/users?{query}");
            async move { app.get_html(&path).await }
        };
        assert_eq!(count(&by("source=roster").await), Some(2), "admin and grace");
        assert_eq!(count(&by(&format!("source={profile}")).await), Some(130));
        assert_eq!(count(&by("status=enabled").await), Some(130));
        let disabled = by("status=disabled").await;
        assert!(disabled.contains(">user5<") && count(&disabled) == Some(1), "{disabled}");
        let directory = by("status=directory_disabled").await;
        assert!(directory.contains(">user6<") && count(&directory) == Some(1), "{directory}");
        assert!(by("mfa=pending").await.contains(">user7<"));
        assert!(!by("mfa=off").await.contains(">user7<"));
        // With a search, and the filters kept by the page links.
        let html = by(&format!("q=user1&source={profile}")).await;
        assert!(html.contains("users matching") || html.contains("Showing"), "{html}");
        assert!(!html.contains(">grace<"));
        let page2 = by(&format!("source={profile}&page=2")).await;
        assert!(page2.contains(&format!("source={profile}&amp;page=3")) || page2.contains(&format!("source={profile}&#38;page=3")), "links keep the filter: {page2}");
        // Nonsense filters filter nothing.
        assert_eq!(count(&by("source=nonsense&status=x&mfa=y").await), Some(132));
    }
}
