//! Times: UTC milliseconds since the epoch in storage, RFC 3339 with
//! milliseconds on every wire (ARCHITECTURE.md, "Data").

/// `ms` as RFC 3339 with milliseconds, `Z` for UTC.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
