//! Showing stored Unix times to people.

pub fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// A length of time as people say it: `12 s`, `3 min 5 s`, `2 h 10 min`.
pub fn format_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

pub fn format_optional(unix: Option<i64>) -> String {
    unix.map(format_time).unwrap_or_else(|| "never".into())
}

/// A time in a schedule's own zone, with UTC beside it when they differ.
pub fn format_in_zone(unix: i64, zone: chrono_tz::Tz) -> String {
    let Some(utc) = chrono::DateTime::from_timestamp(unix, 0) else {
        return String::new();
    };
    if zone == chrono_tz::UTC {
        return format_time(unix);
    }
    let local = utc.with_timezone(&zone);
    format!(
        "{} {} ({} UTC)",
        local.format("%Y-%m-%d %H:%M"),
        zone.name(),
        utc.format("%H:%M")
    )
}
