//! Schedules and background synchronisation: the schedule arithmetic with a clock the test
//! chooses (time zones, daylight-saving changes, weekdays), the schedule pages, the
//! scheduler's rounds, and real `roster worker` processes sharing one database — two at once
//! start exactly one run; one killed with SIGKILL mid-run leaves nothing behind.

use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use roster::db::ids::ProfileId;
use roster::db::schema::{audit_events, schedules, sync_leases, sync_runs};
use roster::jobs::scheduler;
use roster::schedules::{Frequency, ScheduleInput, When};
use roster::sync::{self, Trigger};

use crate::support::app::TestApp;
use crate::support::servers;
use crate::sync::{CuttingProxy, add_bulk_users, context, ldap_profile, synced_users};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("a valid time")
}

fn when(frequency: Frequency, zone: &str) -> When {
    When {
        frequency,
        time_zone: zone.parse().expect("zone"),
    }
}

fn at(h: u32, m: u32) -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(h, m, 0).expect("time")
}

#[test]
fn daily_and_weekly_times_follow_the_time_zone_across_daylight_saving_changes() {
    let berlin = |h, m| when(Frequency::Daily { at: at(h, m) }, "Europe/Berlin");
    // Winter (CET, UTC+1) and summer (CEST, UTC+2).
    assert_eq!(
        berlin(9, 0).next_after(utc(2027, 1, 10, 12, 0), None),
        utc(2027, 1, 11, 8, 0)
    );
    assert_eq!(
        berlin(9, 0).next_after(utc(2027, 7, 10, 6, 0), None),
        utc(2027, 7, 10, 7, 0)
    );
    // 28 March 2027: clocks jump from 02:00 to 03:00. 02:30 does not exist that night: the
    // run happens at the first minute after the gap, 03:00 CEST = 01:00 UTC; the next night
    // is 02:30 CEST again.
    let spring = berlin(2, 30);
    let first = spring.next_after(utc(2027, 3, 27, 12, 0), None);
    assert_eq!(first, utc(2027, 3, 28, 1, 0));
    assert_eq!(spring.next_after(first, None), utc(2027, 3, 29, 0, 30));
    // 31 October 2027: 02:30 happens twice (CEST, then CET): it runs once, the first time.
    let autumn = berlin(2, 30);
    let first = autumn.next_after(utc(2027, 10, 30, 12, 0), None);
    assert_eq!(first, utc(2027, 10, 31, 0, 30));
    assert_eq!(
        autumn.next_after(first, None),
        utc(2027, 11, 1, 1, 30),
        "not again at 01:30 UTC the same night"
    );

    // Weekly on Mon, Wed, Fri at 06:00 in New York (EST, UTC−5). 2 December 2026 is a Wednesday.
    let weekly = when(
        Frequency::Weekly {
            days: vec![
                chrono::Weekday::Mon,
                chrono::Weekday::Wed,
                chrono::Weekday::Fri,
            ],
            at: at(6, 0),
        },
        "America/New_York",
    );
    assert_eq!(
        weekly.next_after(utc(2026, 12, 2, 10, 0), None),
        utc(2026, 12, 2, 11, 0),
        "later the same Wednesday"
    );
    assert_eq!(
        weekly.next_after(utc(2026, 12, 2, 11, 0), None),
        utc(2026, 12, 4, 11, 0),
        "then Friday"
    );
    assert_eq!(
        weekly.next_after(utc(2026, 12, 4, 12, 0), None),
        utc(2026, 12, 7, 11, 0),
        "then Monday"
    );
    // New York's spring change (14 March 2027) moves the UTC hour of the same local time.
    let monday = when(
        Frequency::Weekly {
            days: vec![chrono::Weekday::Mon],
            at: at(6, 0),
        },
        "America/New_York",
    );
    assert_eq!(
        monday.next_after(utc(2027, 3, 9, 0, 0), None),
        utc(2027, 3, 15, 10, 0)
    );

    assert_eq!(
        weekly.describe(),
        "Weekly on Mon, Wed, Fri at 06:00 (America/New_York)"
    );
    assert_eq!(spring.describe(), "Daily at 02:30 (Europe/Berlin)");
}

#[test]
fn intervals_keep_their_rhythm_and_a_late_claim_skips_what_it_missed() {
    let every = when(Frequency::Every { minutes: 90 }, "UTC");
    let due = utc(2026, 12, 1, 10, 0);
    // Claimed a few seconds late: the next run is still 90 minutes after the due time.
    assert_eq!(
        every.next_after(due + chrono::Duration::seconds(5), Some(due)),
        utc(2026, 12, 1, 11, 30)
    );
    // Nobody ran it for three hours: one run now, then back on the 90-minute grid.
    assert_eq!(
        every.next_after(utc(2026, 12, 1, 13, 10), Some(due)),
        utc(2026, 12, 1, 14, 30)
    );
    // A new schedule starts one interval from now.
    assert_eq!(every.next_after(due, None), utc(2026, 12, 1, 11, 30));
    assert_eq!(every.describe(), "Every 90 minutes");
    assert_eq!(
        when(Frequency::Every { minutes: 120 }, "UTC").describe(),
        "Every 2 hours"
    );
}

#[test]
fn the_schedule_form_names_each_wrong_field() {
    let mut input = ScheduleInput::defaults(Some(ProfileId(1)));
    input.kind = "weekly".into();
    input.days.clear();
    input.time = "25:00".into();
    input.time_zone = "Mars/Olympus".into();
    let errors = input.check().expect_err("invalid");
    assert_eq!(
        errors.get("day"),
        Some("Choose at least one day of the week.")
    );
    assert_eq!(
        errors.get("time"),
        Some("`25:00` is not a time of day as HH:MM on a 24-hour clock.")
    );
    assert!(
        errors
            .get("time_zone")
            .is_some_and(|e| e.contains("Mars/Olympus"))
    );

    let mut input = ScheduleInput::defaults(None);
    input.kind = "interval".into();
    input.every = "2".into();
    input.unit = "minutes".into();
    let errors = input.check().expect_err("invalid");
    assert_eq!(
        errors.get("every"),
        Some("Every must be between 5 minutes and 7 days.")
    );
    assert_eq!(
        errors.get("profile"),
        Some("Choose the directory profile to synchronise.")
    );

    input.profile = "3".into();
    input.every = "8".into();
    input.unit = "hours".into();
    let (profile, checked) = input.check().expect("valid");
    let profile = profile.0;
    assert_eq!(
        (profile, checked.frequency),
        (3, Frequency::Every { minutes: 480 })
    );
}

async fn schedule_rows(app: &TestApp) -> Vec<(i64, String, bool, Option<i64>, Option<i64>)> {
    app.conn(|c| {
        schedules::table
            .order(schedules::id)
            .select((
                schedules::id,
                schedules::kind,
                schedules::enabled,
                schedules::next_run_at,
                schedules::last_run_id,
            ))
            .load(c)
            .expect("schedules")
    })
    .await
}

crate::db_test! {
    async fn admin_creates_edits_disables_and_deletes_schedules(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::slapd();
        let profile = ldap_profile(&app, slapd, "Main", |_| {}).await;
        let new = format!("/admin/schedules/new?profile={profile}");
        let form = app.get_html(&new).await;
        assert!(form.contains(&format!("<option value=\"{profile}\" selected>Main</option>")), "{form}");
        assert!(app.get_html("/admin/profiles").await.contains(&new.replace('&', "&amp;")), "the profiles list offers Create schedule");

        // Invalid: every wrong field named, nothing saved.
        let profile_text = profile.to_string();
        let res = app.post_form(&new, "/admin/schedules", &[
            ("profile", &profile_text), ("kind", "weekly"), ("time", "7 o'clock"), ("time_zone", "Nowhere/Town"), ("enabled", "on"),
        ]).await;
        assert_eq!(res.status().as_u16(), 422);
        let body = res.text().await.expect("body");
        assert!(body.contains("Nothing was saved: 3 fields need correcting") && body.contains("<a href=\"#day\">Choose at least one day of the week.</a>"), "{body}");
        assert!(body.contains("Choose at least one day of the week.") && body.contains("is not a time zone name"), "{body}");
        assert!(body.contains("value=\"Nowhere/Town\""), "what was typed comes back");
        assert!(schedule_rows(&app).await.is_empty());

        // Daily at 03:00 in Berlin: the next run is the coming 03:00 there.
        let res = app.post_form(&new, "/admin/schedules", &[
            ("profile", &profile_text), ("kind", "daily"), ("time", "03:00"), ("time_zone", "Europe/Berlin"), ("enabled", "on"),
        ]).await;
        assert_eq!(res.status().as_u16(), 303);
        let rows = schedule_rows(&app).await;
        assert_eq!(rows.len(), 1);
        let (id, kind, enabled, next, _) = rows[0].clone();
        assert_eq!((kind.as_str(), enabled), ("daily", true));
        let next = next.expect("next run");
        let expected = when(Frequency::Daily { at: at(3, 0) }, "Europe/Berlin").next_after(Utc::now() - chrono::Duration::seconds(30), None);
        assert!((next - expected.timestamp()).abs() <= 60, "next run {next} vs {expected}");
        let list = app.get_html(&format!("/admin/schedules?profile={profile}")).await;
        assert!(list.contains("Daily at 03:00 (Europe/Berlin)") && list.contains("03:00 Europe/Berlin ("), "{list}");

        // Edit to weekly on Saturday and Sunday at 22:15 UTC.
        let page = format!("/admin/schedules/{id}");
        let edit = app.get_html(&page).await;
        assert!(edit.contains("value=\"03:00\"") && edit.contains("Next run:"), "{edit}");
        let res = app.post_form(&page, &page, &[
            ("profile", &profile_text), ("kind", "weekly"), ("day", "sat"), ("day", "sun"), ("time", "22:15"), ("time_zone", "UTC"), ("enabled", "on"),
        ]).await;
        assert_eq!(res.status().as_u16(), 303);
        let (_, kind, _, next, _) = schedule_rows(&app).await[0].clone();
        assert_eq!(kind, "weekly");
        let next = DateTime::from_timestamp(next.expect("next"), 0).expect("time");
        use chrono::{Datelike, Timelike};
        assert!(matches!(next.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) && (next.hour(), next.minute()) == (22, 15), "{next}");
        assert!(app.get_html("/admin/schedules").await.contains("Weekly on Sat, Sun at 22:15 (UTC)"));

        // Disable: no next run; enable: a next run again.
        let res = app.post_form("/admin/schedules", &format!("{page}/enabled"), &[("enabled", "0")]).await;
        assert_eq!(res.status().as_u16(), 303);
        assert!(!schedule_rows(&app).await[0].2);
        assert_eq!(schedule_rows(&app).await[0].3, None);
        let res = app.post_form("/admin/schedules", &format!("{page}/enabled"), &[("enabled", "1")]).await;
        assert_eq!(res.status().as_u16(), 303);
        assert!(schedule_rows(&app).await[0].3.is_some());

        // The profile cannot be deleted while it has a schedule.
        let confirm = app.get_html(&format!("/admin/profiles/{profile}/delete")).await;
        assert!(confirm.contains("1 schedule synchronises it. Delete them first."), "{confirm}");
        let delete = format!("/admin/profiles/{profile}/delete");
        let res = app.post_form(&delete, &delete, &[]).await;
        assert_eq!(res.headers().get("location").and_then(|v| v.to_str().ok()), Some(delete.as_str()), "refused: back to the page that says why");
        assert_eq!(app.conn(|c| roster::db::models::directory_profiles::count(c).expect("count")).await, 1);

        let res = app.post_form("/admin/schedules", &format!("{page}/delete"), &[]).await;
        assert_eq!(res.status().as_u16(), 303);
        assert!(schedule_rows(&app).await.is_empty());
        let actions: Vec<String> = app.conn(|c| audit_events::table.filter(audit_events::action.like("schedule_%")).order(audit_events::id).select(audit_events::action).load(c).expect("audit")).await;
        assert_eq!(actions, ["schedule_created", "schedule_updated", "schedule_disabled", "schedule_enabled", "schedule_deleted"]);
    }
}

/// Creates an hourly schedule for `profile` through the form and makes it due now.
async fn due_schedule(app: &TestApp, profile: ProfileId) -> i64 {
    let profile_text = profile.to_string();
    let res = app
        .post_form(
            "/admin/schedules/new",
            "/admin/schedules",
            &[
                ("profile", &profile_text),
                ("kind", "interval"),
                ("every", "1"),
                ("unit", "hours"),
                ("time_zone", "UTC"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let id: i64 = app
        .conn(move |c| {
            schedules::table
                .filter(schedules::profile_id.eq(profile))
                .select(schedules::id)
                .first(c)
                .expect("schedule")
        })
        .await;
    let now = roster::db::now();
    app.conn(move |c| {
        diesel::update(schedules::table.find(id))
            .set(schedules::next_run_at.eq(now - 1))
            .execute(c)
            .expect("due")
    })
    .await;
    id
}

crate::db_test! {
    async fn scheduler_rounds_start_a_due_run_once_and_fail_abandoned_runs(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Main", |_| {}).await;
        let id = due_schedule(&app, profile).await;
        let ctx = context(&app);

        // Two schedulers (two instances on one database) run their rounds at the same moment.
        let now = Utc::now();
        let (a, b) = tokio::join!(scheduler::run_once(&ctx, now), scheduler::run_once(&ctx, now));
        let (a, b) = (a.expect("round"), b.expect("round"));
        assert_eq!(a.started.len() + b.started.len(), 1, "exactly one run");
        for handle in a.started.into_iter().chain(b.started) {
            let outcome = handle.await.expect("join");
            assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
        }
        assert_eq!(synced_users(&app, profile).await.len(), 3);
        let (triggered_by, started_by): (String, String) = app.conn(|c| sync_runs::table.select((sync_runs::triggered_by, sync_runs::started_by)).first(c).expect("run")).await;
        assert_eq!((triggered_by.as_str(), started_by), ("schedule", format!("schedule {id}")));
        let (_, _, _, next, last_run) = schedule_rows(&app).await[0].clone();
        assert!(next.expect("next") > now.timestamp() + 3500, "moved on by an hour");
        assert!(last_run.is_some());
        let history = app.get_html("/admin/runs").await;
        assert!(history.contains("schedule (schedule ") && history.contains("succeeded"), "{history}");
        assert!(app.get_html(&format!("/admin/schedules?profile={profile}")).await.contains("succeeded</a>"));

        // Not due: nothing happens.
        let round = scheduler::run_once(&ctx, Utc::now()).await.expect("round");
        assert!(round.started.is_empty());

        // Due while an admin's run holds the profile: the occurrence is skipped, not doubled.
        app.conn(move |c| diesel::update(schedules::table.find(id)).set(schedules::next_run_at.eq(roster::db::now() - 1)).execute(c).expect("due")).await;
        let holding = sync::start(&ctx, profile, Trigger::Admin, "test", false).await.expect("start");
        let round = scheduler::run_once(&ctx, Utc::now()).await.expect("round");
        assert_eq!((round.started.len(), round.busy), (0, 1));
        // That run's instance dies (its lease runs out without renewal): the next round marks
        // it failed, and the profile can run again.
        let holder = holding.run_id;
        app.conn(move |c| diesel::update(sync_leases::table).set(sync_leases::expires_at.eq(roster::db::now() - 1)).execute(c).expect("expire")).await;
        let round = scheduler::run_once(&ctx, Utc::now()).await.expect("round");
        assert_eq!(round.abandoned, 1);
        let (status, error): (String, Option<String>) = app.conn(move |c| sync_runs::table.find(holder).select((sync_runs::status, sync_runs::error)).first(c).expect("run")).await;
        assert_eq!(status, "failed");
        assert!(error.expect("error").contains("stopped before it finished"));
        let outcome = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(outcome.status, "succeeded");

        // A dry run (no lease) that stops reporting is failed too, once a lease's time passed.
        let dry = sync::start(&ctx, profile, Trigger::Admin, "test", true).await.expect("dry").run_id;
        app.conn(move |c| diesel::update(sync_runs::table.find(dry)).set(sync_runs::heartbeat_at.eq(roster::db::now() - 500)).execute(c).expect("silent")).await;
        assert_eq!(scheduler::run_once(&ctx, Utc::now()).await.expect("round").abandoned, 1);
    }
}

/// `roster worker` against the test's database, checking schedules every second, with a
/// short lease; its output goes to `log`.
fn worker(app: &TestApp, log: &str) -> std::process::Child {
    use secrecy::ExposeSecret;
    let out = std::fs::File::create(app.dir.path().join(log)).expect("log file");
    std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("worker")
        .current_dir(app.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ROSTER_LOG", "info")
        .env("DATABASE_URL", &app.database_url)
        .env(
            "ROSTER_MASTER_KEY",
            app.master_key.to_base64().expose_secret(),
        )
        .env("ROSTER_SCHEDULER_INTERVAL_SECONDS", "1")
        .env("ROSTER_SYNC_LEASE_SECONDS", "3")
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("start roster worker")
}

async fn runs_of(app: &TestApp, profile: ProfileId) -> Vec<(i64, String)> {
    app.conn(move |c| {
        sync_runs::table
            .filter(sync_runs::profile_id.eq(profile))
            .order(sync_runs::id)
            .select((sync_runs::id, sync_runs::status))
            .load(c)
            .expect("runs")
    })
    .await
}

/// Polls until `check` holds (or fails the test after `seconds`).
async fn eventually<T>(seconds: u64, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

crate::db_test! {
    async fn two_worker_processes_on_one_database_start_exactly_one_run(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Main", |_| {}).await;
        due_schedule(&app, profile).await;
        let mut workers = [worker(&app, "worker-a.log"), worker(&app, "worker-b.log")];
        let finished = eventually(30, "the scheduled run", async || {
            let runs = runs_of(&app, profile).await;
            runs.iter().any(|(_, s)| s != "running").then_some(runs)
        })
        .await;
        // Both keep checking every second for a while longer: still the one run.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        for w in &mut workers {
            w.kill().expect("stop worker");
            w.wait().expect("wait");
        }
        let runs = runs_of(&app, profile).await;
        let logs: String = ["worker-a.log", "worker-b.log"].iter().map(|l| std::fs::read_to_string(app.dir.path().join(l)).unwrap_or_default()).collect();
        assert_eq!(runs.len(), 1, "{runs:?} {finished:?}\n{logs}");
        assert_eq!(runs[0].1, "succeeded", "{logs}");
        assert_eq!(synced_users(&app, profile).await.len(), 3);
    }
}

crate::db_test! {
    async fn a_worker_killed_mid_run_leaves_the_database_unchanged_and_the_next_run_completes(app) {
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        add_bulk_users(&slapd, 3000).await;
        // The directory stops answering half-way through the read: the run is caught alive.
        let stalling = CuttingProxy::stalling(&crate::directory::host_port(slapd.fact("LDAP_URL")), 150_000).await;
        let address = stalling.address.clone();
        let profile = ldap_profile(&app, &slapd, "Big", |f| crate::profile_pages::set(f, "server", &address)).await;
        due_schedule(&app, profile).await;
        let mut w = worker(&app, "worker.log");
        let run_id = eventually(30, "the run reading users", async || {
            let id = profile;
            app.conn(move |c| sync_runs::table.filter(sync_runs::profile_id.eq(id)).filter(sync_runs::progress_users.gt(0)).select(sync_runs::id).first::<i64>(c).optional().expect("run")).await
        })
        .await;
        w.kill().expect("SIGKILL");
        w.wait().expect("wait");
        assert_eq!(runs_of(&app, profile).await, [(run_id, "running".to_owned())], "left running by the dead worker");
        assert!(synced_users(&app, profile).await.is_empty(), "nothing was written");

        // Its lease (3 s here) runs out; the next scheduler round marks the run failed.
        let mut ctx = context(&app);
        ctx.lease_seconds = 3;
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let round = scheduler::run_once(&ctx, Utc::now()).await.expect("round");
        assert_eq!(round.abandoned, 1);
        assert_eq!(runs_of(&app, profile).await, [(run_id, "failed".to_owned())]);
        assert!(synced_users(&app, profile).await.is_empty(), "database unchanged");

        // The directory answers again: the next run completes.
        let form_page = format!("/admin/profiles/{profile}");
        let mut f = crate::profile_pages::slapd_profile_of(&slapd, "Big");
        crate::profile_pages::set(&mut f, "ignore_tls_errors", "on");
        let res = crate::profile_pages::post(&app, &form_page, &form_page, &f, false).await;
        assert_eq!(res.status().as_u16(), 303);
        let outcome = sync::run(&ctx, profile, Trigger::Cli, "test", false).await.expect("run");
        assert_eq!(outcome.status, "succeeded", "{:?}", outcome.error);
        assert_eq!(synced_users(&app, profile).await.len(), 3003);
    }
}

crate::db_test! {
    async fn serve_without_the_scheduler_leaves_due_schedules_to_others(app) {
        use secrecy::ExposeSecret;
        use std::io::BufRead;
        app.sign_in_as_admin().await;
        let slapd = servers::private("slapd");
        let profile = ldap_profile(&app, &slapd, "Main", |_| {}).await;
        due_schedule(&app, profile).await;
        let mut web = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["serve", "--no-scheduler"])
            .current_dir(app.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ROSTER_LOG", "warn")
            .env("ROSTER_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", &app.database_url)
            .env("ROSTER_MASTER_KEY", app.master_key.to_base64().expose_secret())
            .env("ROSTER_SCHEDULER_INTERVAL_SECONDS", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start roster serve");
        let first = std::io::BufReader::new(web.stdout.take().expect("stdout")).lines().next().expect("a line").expect("read");
        assert!(first.starts_with("Roster is running at http://127.0.0.1:"), "{first}");
        // Three scheduler intervals: nothing starts while only this instance runs.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert!(runs_of(&app, profile).await.is_empty(), "the web-only instance ran the schedule");
        // A worker picks it up.
        let mut w = worker(&app, "worker.log");
        eventually(30, "the worker's run", async || {
            let runs = runs_of(&app, profile).await;
            (runs.len() == 1 && runs[0].1 == "succeeded").then_some(())
        })
        .await;
        for p in [&mut web, &mut w] {
            p.kill().expect("stop");
            p.wait().expect("wait");
        }
    }
}
