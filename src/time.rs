//! Showing stored Unix times to people.

pub fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
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
