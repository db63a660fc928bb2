//! The admin users pages: list, search, paging, create a local user, detail.

use diesel::prelude::*;
use roster::db::models::user_privileges::Privilege;
use roster::db::models::users::{NewLocalUser, create_local};

/// Seeds users straight into the database (hash reused: hashing 100 passwords is slow).
/// The href of the page's `rel` link ("next" or "prev"), HTML entities undone.
fn link(html: &str, rel: &str) -> String {
    let anchor = html
        .split(&format!("\" rel=\"{rel}\""))
        .next()
        .expect("page");
    let href = anchor.rsplit("href=\"").next().expect("href");
    assert!(
        html.contains(&format!("rel=\"{rel}\"")),
        "no {rel} link: {html}"
    );
    href.replace("&#38;", "&").replace("&amp;", "&")
}

fn seed(c: &mut roster::db::DbConnection, count: usize, prefix: &str) {
    c.transaction(|c| {
        for i in 0..count {
            create_local(
                c,
                &NewLocalUser {
                    username: &format!("{prefix}{i:04}"),
                    full_name: &format!("Person {i} Seeded"),
                    emails: &[format!("{prefix}{i:04}@example.test")],
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                    privileges: &[Privilege::LogOn],
                },
            )?;
        }
        diesel::QueryResult::Ok(())
    })
    .expect("seed users");
}

crate::db_test! {
    async fn search_matches_name_full_name_and_email_case_insensitively(app) {
        app.sign_in_as_admin().await;
        for (name, full, email) in [
            ("alice", "Alice Archer", "alice@example.test"),
            ("bob", "Bob Baker", "b.baker@corp.example"),
            ("carol", "Carol Ärmel", "carol@example.test"),
        ] {
            let res = app
                .post_form("/admin/users/new", "/admin/users", &[
                    ("username", name), ("full_name", full), ("emails", email),
                    ("password", "a long enough password"), ("password_confirm", "a long enough password"),
                    ("privilege", "log_on"),
                ])
                .await;
            assert_eq!(res.status().as_u16(), 303, "create {name}");
        }
        for (query, expected) in [
            ("ARCH", vec!["alice"]),           // full name, other case
            ("corp.EXAMPLE", vec!["bob"]),      // e-mail
            ("ar", vec!["alice", "carol"]),    // short needle (no trigram index)
            ("ärm", vec!["carol"]),            // non-ASCII, other case
            ("ÄRMEL", vec!["carol"]),
            ("%", vec![]),                     // LIKE wildcards are literal
            ("a_c", vec![]),
            ("\"", vec![]),                    // FTS syntax is literal too
            ("example.test", vec!["alice", "carol"]),
        ] {
            let page = app.get_html(&format!("/admin/users?q={}", url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>())).await;
            let shown: Vec<&str> = ["admin", "alice", "bob", "carol"]
                .into_iter()
                .filter(|n| page.contains(&format!(">{n}</a>")))
                .collect();
            assert_eq!(shown, expected, "query {query:?}");
        }
    }
}

crate::db_test! {
    async fn paging_walks_all_users_in_name_order(app) {
        app.conn(|c| seed(c, 120, "p")).await;
        app.sign_in_as_admin().await;
        // 121 users (admin included): pages of 50.
        let page3 = app.get_html("/admin/users?page=3").await;
        assert!(page3.contains("Showing 101–121 of 121 users"), "{page3}");
        assert!(page3.contains(">p0119</a>") && !page3.contains(">p0098</a>"));
        let page1 = app.get_html("/admin/users").await;
        assert!(page1.contains(">admin</a>") && page1.contains(">p0048</a>") && !page1.contains(">p0049</a>"));
        // Next and previous start after / before a user; page 2 of a search too.
        let next = link(&page1, "next");
        assert!(next.contains("after=") && next.ends_with("page=2"), "{next}");
        let page2 = app.get_html(&next).await;
        assert!(page2.contains("Showing 51–100 of 121 users"), "{page2}");
        assert!(page2.contains(">p0049</a>") && page2.contains(">p0098</a>") && !page2.contains(">p0048</a>"));
        let back = app.get_html(&link(&page2, "prev")).await;
        assert!(back.contains("Showing 1–50 of 121 users") && back.contains(">admin</a>") && back.contains(">p0048</a>"), "{back}");
        assert!(!back.contains("rel=\"prev\""), "the first page has no previous page");
        // The user a link starts from has gone: the list starts again.
        let gone = app.get_html("/admin/users?after=99999999&page=7").await;
        assert!(gone.contains("Showing 1–50 of 121 users"), "{gone}");
        let bogus = app.get("/admin/users?page=abc").await;
        assert_eq!(bogus.status().as_u16(), 200);
        let searched = app.get_html("/admin/users?q=p01&page=1").await;
        assert!(searched.contains("of 20 users matching"), "{searched}");
    }
}

crate::db_test! {
    async fn htmx_search_returns_only_the_partial(app) {
        app.sign_in_as_admin().await;
        let res = app.client.get(app.url("/admin/users?q=adm")).header("HX-Request", "true").send().await.expect("GET");
        let body = res.text().await.expect("body");
        assert!(body.contains("id=\"users-results\"") && body.contains(">admin</a>"));
        assert!(!body.contains("<html"), "partial only");
        let full = app.get_html("/admin/users?q=adm").await;
        assert!(full.contains("<html") && full.contains("id=\"users-results\""));
    }
}

crate::db_test! {
    async fn creating_a_user_validates_every_field_and_saves_nothing_on_error(app) {
        app.sign_in_as_admin().await;
        let res = app
            .post_form("/admin/users/new", "/admin/users", &[
                ("username", "has space"), ("full_name", "X"), ("emails", "good@example.test\nnot-an-address"),
                ("password", "short"), ("password_confirm", "short"),
            ])
            .await;
        assert_eq!(res.status().as_u16(), 422);
        let body = res.text().await.expect("body");
        assert!(body.contains("id=\"username-error\""), "{body}");
        assert!(body.contains("`not-an-address` is not an e-mail address."));
        assert!(body.contains("Password must be at least 8 characters long."));
        assert!(body.contains("value=\"has space\""), "typed values are kept");

        for (password, confirm, message) in [
            ("password123", "password123", "one of the most common passwords"),
            ("a fine long password", "a different one", "The two passwords do not match."),
        ] {
            let body = app
                .post_form("/admin/users/new", "/admin/users", &[
                    ("username", "frank"), ("password", password), ("password_confirm", confirm),
                ])
                .await
                .text()
                .await
                .expect("body");
            assert!(body.contains(message), "{message}: {body}");
        }
        let duplicate = app
            .post_form("/admin/users/new", "/admin/users", &[
                ("username", "ADMIN"), ("password", "a fine long password"), ("password_confirm", "a fine long password"),
            ])
            .await
            .text()
            .await
            .expect("body");
        assert!(duplicate.contains("A user with this name already exists."));
        let count = app.conn(|c| roster::db::models::users::count(c).expect("count")).await;
        assert_eq!(count, 1, "nothing was saved");
    }
}

crate::db_test! {
    async fn created_user_has_chosen_privileges_and_extra_fields_are_ignored(app) {
        app.sign_in_as_admin().await;
        let res = app
            .post_form("/admin/users/new", "/admin/users", &[
                ("username", "grace"), ("full_name", "Grace Hopper"), ("emails", "grace@example.test, g.h@example.test"),
                ("password", "Ünïcode pass wörd"), ("password_confirm", "Ünïcode pass wörd"),
                ("privilege", "log_on"), ("privilege", "archive_email"), ("privilege", "superuser"),
                ("id", "1"), ("admin", "true"), ("auth_method", "directory"),
            ])
            .await;
        assert_eq!(res.status().as_u16(), 303);
        let detail_path = res.headers().get("location").and_then(|v| v.to_str().ok()).expect("location").to_owned();
        let detail = app.get_html(&detail_path).await;
        assert!(detail.contains("Grace Hopper") && detail.contains("grace@example.test, g.h@example.test"), "{detail}");
        assert!(detail.contains("Log on, Archive e-mail"), "{detail}");
        let facts = detail.split("<dl class=\"facts\">").nth(1).and_then(|r| r.split("</dl>").next()).expect("facts");
        assert!(!facts.contains("Administrator"), "extra fields ignored: {facts}");
        assert!(detail.contains("value=\"admin\">"), "the admin privilege is offered but not ticked");
        assert!(detail.contains("Password stored in Roster"));
        // The Unicode password works exactly as typed.
        let grace = app.new_client();
        assert_eq!(grace.sign_in("grace", "Ünïcode pass wörd").await.status().as_u16(), 303);
        let audit = app.get_html("/admin").await;
        assert!(audit.contains("User created") && audit.contains("grace"));
        assert_eq!(app.get("/admin/users/999999").await.status().as_u16(), 404);
        assert_eq!(app.get("/admin/users/not-a-number").await.status().as_u16(), 404);
    }
}

crate::db_test! {
    async fn broad_search_stops_counting_at_the_cap_and_still_pages_in_order(app) {
        app.conn(|c| seed(c, 1_010, "b")).await;
        let search = |q: &'static str, page: i64| {
            let app_db = app.db.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let mut c = app_db.get().expect("connection");
                    roster::db::models::users::search(&mut c, q, roster::db::models::users::Start::Offset((page - 1) * 50), 50, 1_000).expect("search")
                })
                .await
                .expect("join")
            }
        };
        let names = |p: &roster::db::models::users::UserPage| p.rows.iter().map(|r| r.login_name.clone()).collect::<Vec<_>>();
        for q in ["seeded", "", "ee"] {
            let page1 = search(q, 1).await;
            // Without a search the total is exact: counting every user is cheap.
            let expected = if q.is_empty() { (1_011, false, true) } else { (1_000, true, true) };
            assert_eq!((page1.total, page1.total_is_lower_bound, page1.has_next), expected, "{q:?}");
            assert!(!page1.has_previous);
            let expected_first = if q.is_empty() { "admin" } else { "b0000" };
            assert_eq!(names(&page1)[0], expected_first, "{q:?}");
        }
        let page21 = search("seeded", 21).await;
        assert_eq!(names(&page21), (1000..1010).map(|i| format!("b{i:04}")).collect::<Vec<_>>());
        assert!(!page21.has_next && page21.has_previous, "the last page has no next page");
        // A narrower search is counted exactly.
        let narrow = search("b100", 1).await;
        assert_eq!((narrow.total, narrow.total_is_lower_bound, narrow.rows.len()), (10, false, 10));

        // The page shows what it knows: "more than", a next link, no page count.
        app.sign_in_as_admin().await;
        let html = app.get_html("/admin/users?q=seeded&page=2").await;
        assert!(html.contains("Showing 51–100 of more than 1000 users matching “seeded”"), "{html}");
        assert!(html.contains("Page 2</span>"), "no page count when the total is not known");
        assert!(html.contains("rel=\"next\"") && html.contains("rel=\"prev\""));
    }
}

// An admin action reads, then writes: while another connection holds the write lock (a sync
// applying, say), it waits for it instead of failing when that writer commits (SQLite: a
// deferred transaction whose snapshot went stale fails at once).
crate::db_test! {
    async fn admin_actions_wait_for_another_writer_instead_of_failing(app) {
        app.sign_in_as_admin().await;
        let created = app.create_user("frank", "a long password for frank", &["log_on"]).await;
        let detail = crate::support::app::location(&created);
        let token = crate::support::app::csrf_token_in(&app.get_html(&detail).await);
        let holder = {
            let db = app.db.clone();
            tokio::task::spawn_blocking(move || {
                let mut c = db.get().expect("db connection");
                c.write_transaction(|c| {
                    let actor = roster::audit::Actor::anonymous("holder", "");
                    roster::audit::write(c, &actor, roster::audit::Action::SignOut, "holder", "")?;
                    std::thread::sleep(std::time::Duration::from_millis(1500));
                    Ok::<_, diesel::result::Error>(())
                })
                .expect("the holding transaction commits");
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let res = app
            .client
            .post(app.url(&format!("{detail}/action")))
            .form(&[("csrf_token", token.as_str()), ("action", "disable")])
            .send()
            .await
            .expect("POST");
        holder.await.expect("holder");
        assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap_or_default());
        let page = app.get_html(&detail).await;
        assert!(page.contains("Disabled in Roster"), "{page}");
    }
}

crate::db_test! {
    async fn searches_ignore_accents_and_case_and_rows_written_before_are_refolded(app) {
        use diesel::prelude::*;
        use roster::db::schema::users;
        app.sign_in_as_admin().await;
        let res = app.post_form("/admin/users/new", "/admin/users", &[
            ("username", "anders"), ("full_name", "Anders Ångström"), ("emails", "a.angstrom@example.test"),
            ("password", "a long password here"), ("password_confirm", "a long password here"),
        ]).await;
        assert_eq!(res.status().as_u16(), 303);
        for q in ["angstrom", "ÅNGSTRÖM", "ångström", "ngstr"] {
            let html = app.get_html(&format!("/admin/users?q={}", url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>())).await;
            assert!(html.contains(">anders<"), "{q}: {html}");
        }
        // A row written before search text was folded (as an older release left it).
        app.conn(|c| {
            diesel::update(users::table.filter(users::username.eq("anders")))
                .set((users::search_text.eq("anders anders ångström"), users::search_version.eq(1)))
                .execute(c).expect("old row");
        }).await;
        assert!(!app.get_html("/admin/users?q=angstrom").await.contains(">anders<"), "not found before refolding");
        let refolded = app.conn(|c| roster::db::models::users::refold_search_text(c).expect("refold")).await;
        assert_eq!(refolded, 1);
        assert!(app.get_html("/admin/users?q=angstrom").await.contains(">anders<"), "found after");
        assert_eq!(roster::db::models::users::fold("Søren Straße Łódź"), "soren strasse lodz");
    }
}

/// Adds a local user whose full name matches the search "seeded".
fn add_seeded(c: &mut roster::db::DbConnection, name: &str) {
    create_local(
        c,
        &NewLocalUser {
            username: name,
            full_name: "Added Seeded",
            emails: &[],
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            privileges: &[Privilege::LogOn],
        },
    )
    .expect("add user");
}

// Next and previous pages start from a user, not from a row count: users added before or
// after the page being read neither repeat nor push others out. Each list shape: no
// search (the user-name index), a search counted exactly (its matches sorted), and one
// past the count cap (the index walked, testing each row).
crate::db_test! {
    async fn keyset_pages_neither_repeat_nor_skip_users_added_meanwhile(app) {
        use roster::db::models::users::{Start, search};
        app.conn(|c| seed(c, 120, "k")).await;
        for (round, (q, cap)) in [("", 1_000), ("seeded", 1_000), ("seeded", 10)].into_iter().enumerate() {
            let (forward, backward, pages) = app.conn(move |c| {
                let mut forward: Vec<String> = Vec::new();
                let mut start = Start::Offset(0);
                let mut pages = 0;
                let last_page = loop {
                    let page = search(c, q, start, 25, cap).expect("page");
                    pages += 1;
                    assert_eq!(page.total_is_lower_bound, cap == 10, "{q:?}");
                    forward.extend(page.rows.iter().map(|r| r.login_name.clone()));
                    // Someone adds a user before the page just read, and one after it.
                    add_seeded(c, &format!("a{round}-{pages:02}"));
                    add_seeded(c, &format!("z{round}-{pages:02}"));
                    match page.rows.last() {
                        Some(last) if page.has_next => start = Start::After(last.id),
                        _ => break page,
                    }
                };
                // And back from the last page to the first.
                let mut backward: Vec<String> = last_page.rows.iter().map(|r| r.login_name.clone()).collect();
                let mut first = last_page.rows.first().map(|r| r.id);
                while let Some(id) = first {
                    let page = search(c, q, Start::Before(id), 25, cap).expect("page");
                    backward.splice(0..0, page.rows.iter().map(|r| r.login_name.clone()));
                    first = page.rows.first().filter(|_| page.has_previous).map(|r| r.id);
                }
                (forward, backward, pages)
            }).await;
            let sorted = |names: &[String]| names.windows(2).all(|w| w[0] < w[1]);
            assert!(sorted(&forward), "{q:?} {cap}: in order, no repeats: {forward:?}");
            let seeded: Vec<String> = (0..120).map(|i| format!("k{i:04}")).collect();
            let ks: Vec<String> = forward.iter().filter(|n| n.starts_with('k')).cloned().collect();
            assert_eq!(ks, seeded, "{q:?} {cap}: every seeded user once");
            assert!(!forward.iter().any(|n| n.starts_with(&format!("a{round}"))), "added before the page: not shown");
            assert!(forward.iter().any(|n| n.starts_with(&format!("z{round}"))), "added after the page: shown");
            assert!(sorted(&backward), "{q:?} {cap}: backwards in order: {backward:?}");
            let ks: Vec<String> = backward.iter().filter(|n| n.starts_with('k')).cloned().collect();
            assert_eq!(ks, seeded, "{q:?} {cap}: every seeded user once, backwards");
            assert_eq!(backward.iter().filter(|n| n.starts_with(&format!("a{round}"))).count(), pages, "{q:?}: the users added before are there going back");
        }
    }
}
