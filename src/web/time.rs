//! Showing stored Unix times to people.

pub fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub fn format_optional(unix: Option<i64>) -> String {
    unix.map(format_time).unwrap_or_else(|| "never".into())
}
