//! When a profile synchronises on its own: every N minutes, daily at a time, or weekly on
//! chosen days at a time, in a chosen time zone — and the arithmetic of the next run.
//! Pure: callers pass the clock, so tests can stand anywhere in time.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::db::ids::ProfileId;
use crate::validation::FieldErrors;

/// Shortest interval: a run of a large directory takes seconds, and one profile runs one
/// synchronisation at a time anyway.
pub const MIN_INTERVAL_MINUTES: u32 = 5;
/// Longest interval: a week (use a weekly schedule beyond that).
pub const MAX_INTERVAL_MINUTES: u32 = 7 * 24 * 60;

pub const WEEKDAYS: [(Weekday, &str, &str); 7] = [
    (Weekday::Mon, "mon", "Mon"),
    (Weekday::Tue, "tue", "Tue"),
    (Weekday::Wed, "wed", "Wed"),
    (Weekday::Thu, "thu", "Thu"),
    (Weekday::Fri, "fri", "Fri"),
    (Weekday::Sat, "sat", "Sat"),
    (Weekday::Sun, "sun", "Sun"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frequency {
    Every {
        minutes: u32,
    },
    Daily {
        at: NaiveTime,
    },
    /// `days` holds at least one day, in week order.
    Weekly {
        days: Vec<Weekday>,
        at: NaiveTime,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct When {
    pub frequency: Frequency,
    pub time_zone: Tz,
}

/// How a schedule is stored: the columns of `schedules`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub kind: &'static str,
    pub interval_minutes: Option<i32>,
    pub time_of_day: Option<String>,
    pub weekdays: String,
    pub time_zone: String,
}

impl When {
    /// The first run strictly after `after`. For intervals, `anchor` (the run that was due)
    /// keeps the rhythm: a run claimed late does not shift the ones after it.
    pub fn next_after(&self, after: DateTime<Utc>, anchor: Option<DateTime<Utc>>) -> DateTime<Utc> {
        match &self.frequency {
            Frequency::Every { minutes } => {
                let step = Duration::minutes(i64::from((*minutes).max(1)));
                match anchor {
                    Some(anchor) if anchor <= after => {
                        let missed = (after - anchor).num_seconds() / step.num_seconds();
                        anchor + step * i32::try_from(missed + 1).unwrap_or(i32::MAX)
                    }
                    _ => after + step,
                }
            }
            Frequency::Daily { at } => self.next_on(after, *at, |_| true),
            Frequency::Weekly { days, at } => self.next_on(after, *at, |d| days.contains(&d)),
        }
    }

    /// The first day (in the time zone) at `at` after `after` whose weekday `runs_on`.
    fn next_on(
        &self,
        after: DateTime<Utc>,
        at: NaiveTime,
        runs_on: impl Fn(Weekday) -> bool,
    ) -> DateTime<Utc> {
        let today = after.with_timezone(&self.time_zone).date_naive();
        // Eight days always hold the next run of a non-empty weekly set (and of a daily one).
        for offset in 0..8 {
            let Some(day) = today.checked_add_signed(Duration::days(offset)) else {
                break;
            };
            if !runs_on(day.weekday()) {
                continue;
            }
            let run = local_instant(self.time_zone, day, at);
            if run > after {
                return run;
            }
        }
        // Unreachable with a valid schedule; a day later is a safe answer all the same.
        after + Duration::days(1)
    }

    pub fn describe(&self) -> String {
        let at = |t: &NaiveTime| t.format("%H:%M").to_string();
        let what = match &self.frequency {
            Frequency::Every { minutes } if minutes % 60 == 0 && *minutes >= 60 => {
                let hours = minutes / 60;
                if hours == 1 {
                    "Every hour".to_owned()
                } else {
                    format!("Every {hours} hours")
                }
            }
            Frequency::Every { minutes } => format!("Every {minutes} minutes"),
            Frequency::Daily { at: t } => format!("Daily at {}", at(t)),
            Frequency::Weekly { days, at: t } => {
                let names: Vec<&str> = WEEKDAYS
                    .iter()
                    .filter(|(d, _, _)| days.contains(d))
                    .map(|(_, _, label)| *label)
                    .collect();
                format!("Weekly on {} at {}", names.join(", "), at(t))
            }
        };
        match self.frequency {
            Frequency::Every { .. } => what,
            _ => format!("{what} ({})", self.time_zone.name()),
        }
    }

    pub fn to_stored(&self) -> Stored {
        let at = |t: &NaiveTime| Some(t.format("%H:%M").to_string());
        let (kind, interval_minutes, time_of_day, weekdays) = match &self.frequency {
            Frequency::Every { minutes } => (
                "interval",
                i32::try_from(*minutes).ok(),
                None,
                String::new(),
            ),
            Frequency::Daily { at: t } => ("daily", None, at(t), String::new()),
            Frequency::Weekly { days, at: t } => {
                let keys: Vec<&str> = WEEKDAYS
                    .iter()
                    .filter(|(d, _, _)| days.contains(d))
                    .map(|(_, key, _)| *key)
                    .collect();
                ("weekly", None, at(t), keys.join(","))
            }
        };
        Stored {
            kind,
            interval_minutes,
            time_of_day,
            weekdays,
            time_zone: self.time_zone.name().to_owned(),
        }
    }

    /// Reads stored columns back; `None` if they do not make a schedule (never stored so).
    pub fn from_stored(
        kind: &str,
        interval_minutes: Option<i32>,
        time_of_day: Option<&str>,
        weekdays: &str,
        time_zone: &str,
    ) -> Option<When> {
        let time_zone: Tz = time_zone.parse().ok()?;
        let at = || time_of_day.and_then(parse_time);
        let frequency = match kind {
            "interval" => Frequency::Every {
                minutes: u32::try_from(interval_minutes?).ok()?,
            },
            "daily" => Frequency::Daily { at: at()? },
            "weekly" => {
                let days = parse_days(weekdays.split(','));
                if days.is_empty() {
                    return None;
                }
                Frequency::Weekly { days, at: at()? }
            }
            _ => return None,
        };
        Some(When {
            frequency,
            time_zone,
        })
    }
}

/// A local wall-clock time as an instant. A time that happens twice (the clocks go back)
/// runs at its first occurrence; a time that does not exist (the clocks go forward) runs
/// at the first minute after the gap, as cron does.
fn local_instant(tz: Tz, day: NaiveDate, at: NaiveTime) -> DateTime<Utc> {
    let mut local = day.and_time(at);
    // Gaps last an hour, sometimes half of one; a day of minutes bounds the search.
    for _ in 0..24 * 60 {
        if let Some(instant) = tz.from_local_datetime(&local).earliest() {
            return instant.with_timezone(&Utc);
        }
        local += Duration::minutes(1);
    }
    Utc.from_utc_datetime(&day.and_time(at))
}

fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()
}

fn parse_days<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<Weekday> {
    let keys: Vec<&str> = keys.map(str::trim).collect();
    WEEKDAYS
        .iter()
        .filter(|(_, key, _)| keys.contains(key))
        .map(|(d, _, _)| *d)
        .collect()
}

/// What the schedule form posts.
#[derive(Default, Debug, Clone)]
pub struct ScheduleInput {
    pub profile: String,
    /// interval | daily | weekly
    pub kind: String,
    pub every: String,
    /// minutes | hours
    pub unit: String,
    pub time: String,
    pub days: Vec<String>,
    pub time_zone: String,
    pub enabled: bool,
}

impl ScheduleInput {
    pub fn parse(body: &[u8]) -> ScheduleInput {
        let mut input = ScheduleInput::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "profile" => input.profile = value,
                "kind" => input.kind = value,
                "every" => input.every = value,
                "unit" => input.unit = value,
                "time" => input.time = value,
                "day" => input.days.push(value),
                "time_zone" => input.time_zone = value,
                "enabled" => input.enabled = !value.is_empty(),
                _ => {}
            }
        }
        input
    }

    /// The form as a new schedule shows it: daily at 02:00 UTC, enabled.
    pub fn defaults(profile: Option<ProfileId>) -> ScheduleInput {
        ScheduleInput {
            profile: profile.map(|p| p.to_string()).unwrap_or_default(),
            kind: "daily".into(),
            every: "60".into(),
            unit: "minutes".into(),
            time: "02:00".into(),
            days: vec!["mon".into()],
            time_zone: "UTC".into(),
            enabled: true,
        }
    }

    /// The form filled from a stored schedule.
    pub fn of(profile_id: ProfileId, when: &When, enabled: bool) -> ScheduleInput {
        let mut input = ScheduleInput::defaults(Some(profile_id));
        input.enabled = enabled;
        input.time_zone = when.time_zone.name().to_owned();
        match &when.frequency {
            Frequency::Every { minutes } => {
                input.kind = "interval".into();
                if minutes % 60 == 0 {
                    (input.every, input.unit) = ((minutes / 60).to_string(), "hours".into());
                } else {
                    (input.every, input.unit) = (minutes.to_string(), "minutes".into());
                }
            }
            Frequency::Daily { at } => {
                input.kind = "daily".into();
                input.time = at.format("%H:%M").to_string();
            }
            Frequency::Weekly { days, at } => {
                input.kind = "weekly".into();
                input.time = at.format("%H:%M").to_string();
                input.days = WEEKDAYS
                    .iter()
                    .filter(|(d, _, _)| days.contains(d))
                    .map(|(_, key, _)| (*key).to_owned())
                    .collect();
            }
        }
        input
    }

    /// The profile id and the schedule, or every problem by field.
    pub fn check(&self) -> Result<(ProfileId, When), FieldErrors> {
        let mut errors = FieldErrors::default();
        let profile = self.profile.trim().parse::<ProfileId>().ok();
        if profile.is_none() {
            errors.add("profile", "Choose the directory profile to synchronise.");
        }
        let time_zone = match self.time_zone.trim() {
            "" => {
                errors.add(
                    "time_zone",
                    "Time zone is required, e.g. Europe/Berlin or UTC.",
                );
                None
            }
            name => match name.parse::<Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    errors.add(
                        "time_zone",
                        format!("`{name}` is not a time zone name such as Europe/Berlin or UTC."),
                    );
                    None
                }
            },
        };
        let at = || -> Result<NaiveTime, String> {
            match self.time.trim() {
                "" => Err("Time is required (HH:MM, 24-hour clock).".into()),
                t => parse_time(t).ok_or_else(|| {
                    format!("`{t}` is not a time of day as HH:MM on a 24-hour clock.")
                }),
            }
        };
        let frequency = match self.kind.as_str() {
            "interval" => {
                let factor = match self.unit.as_str() {
                    "hours" => Some(60),
                    "minutes" => Some(1),
                    _ => {
                        errors.add("unit", "Choose minutes or hours.");
                        None
                    }
                };
                let every = self.every.trim();
                match (every.parse::<u32>(), factor) {
                    (Ok(n), Some(factor))
                        if (MIN_INTERVAL_MINUTES..=MAX_INTERVAL_MINUTES)
                            .contains(&n.saturating_mul(factor)) =>
                    {
                        Some(Frequency::Every {
                            minutes: n * factor,
                        })
                    }
                    (Ok(_), Some(_)) => {
                        errors.add(
                            "every",
                            format!(
                                "Every must be between {MIN_INTERVAL_MINUTES} minutes and 7 days."
                            ),
                        );
                        None
                    }
                    (Err(_), _) => {
                        errors.add("every", "Every must be a whole number.");
                        None
                    }
                    (Ok(_), None) => None,
                }
            }
            "daily" => match at() {
                Ok(at) => Some(Frequency::Daily { at }),
                Err(e) => {
                    errors.add("time", e);
                    None
                }
            },
            "weekly" => {
                let days = parse_days(self.days.iter().map(String::as_str));
                if days.is_empty() {
                    errors.add("day", "Choose at least one day of the week.");
                }
                match at() {
                    Ok(at) if !days.is_empty() => Some(Frequency::Weekly { days, at }),
                    Ok(_) => None,
                    Err(e) => {
                        errors.add("time", e);
                        None
                    }
                }
            }
            _ => {
                errors.add("kind", "Choose how often: every …, daily or weekly.");
                None
            }
        };
        match (profile, frequency, time_zone) {
            (Some(profile), Some(frequency), Some(time_zone)) if errors.is_empty() => Ok((
                profile,
                When {
                    frequency,
                    time_zone,
                },
            )),
            _ => Err(errors),
        }
    }
}
