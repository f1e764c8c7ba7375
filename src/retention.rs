//! Event retention: how long events are kept when an operator sets a limit
//! (`--event-retention`), the pass that deletes the older ones through the
//! same prune as `dirsync events prune`, and the server's loop that runs it.
//! Unset, events are kept until an operator prunes them. The SCIM request
//! log's retention (`--scim-log-retention`, 7 days unless set) runs the same
//! way. No actix_web, no sea_orm.

use std::time::Duration;

use tracing::{info, warn};

use crate::admin::{self, AdminError, Pruned};
use crate::domain::time::rfc3339;
use crate::store::Store;

/// How often the server prunes.
const EVERY: Duration = Duration::from_secs(3600);

/// Rows one pass deletes at most (in transactions of a thousand), so a
/// backlog found when retention is first turned on is worked off in steps
/// rather than in one long pass.
const PER_PASS: u64 = 100_000;

/// The pause before the next pass when one stopped at `PER_PASS`.
const CATCH_UP: Duration = Duration::from_secs(10);

/// The shortest retention accepted: less would delete events before a
/// consumer that polls hourly has read them.
const SHORTEST: Duration = Duration::from_secs(3600);

/// The longest: beyond it a retention is "forever" spelled badly (and
/// cutoffs, epoch milliseconds, stay far from overflowing).
const LONGEST: Duration = Duration::from_secs(1000 * 365 * 86_400);

/// How long events are kept: at least an hour, as a duration with its unit
/// (`90d`, `12w`, `36h`, `1y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("{0:?} has no unit: write a duration such as 90d (days), 12w (weeks) or 36h (hours)")]
    NoUnit(String),
    #[error(
        "{input:?} is not a duration ({why}): write one such as 90d (days), 12w (weeks) or 36h (hours)"
    )]
    Unreadable { input: String, why: String },
    #[error(
        "{0:?} is shorter than an hour: events would go before consumers read them (leave the setting unset to keep events until `dirsync events prune`)"
    )]
    TooShort(String),
    #[error("{0:?} is longer than this server can count; leave the setting unset to keep events")]
    TooLong(String),
}

impl Retention {
    pub fn parse(input: &str) -> Result<Retention, RetentionError> {
        let trimmed = input.trim();
        if !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit()) {
            return Err(RetentionError::NoUnit(input.to_owned()));
        }
        let duration =
            humantime::parse_duration(trimmed).map_err(|e| RetentionError::Unreadable {
                input: input.to_owned(),
                why: e.to_string(),
            })?;
        if duration < SHORTEST {
            return Err(RetentionError::TooShort(input.to_owned()));
        }
        if duration > LONGEST {
            return Err(RetentionError::TooLong(input.to_owned()));
        }
        Ok(Retention(duration))
    }

    pub fn duration(&self) -> Duration {
        self.0
    }

    /// The cutoff at `now` (epoch ms): events written before it go.
    pub fn cutoff(&self, now: i64) -> i64 {
        let millis = i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX);
        now.saturating_sub(millis)
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// One pass at `now` (epoch ms): delete every tenant's events older than the
/// retention, at most `PER_PASS`. Safe beside another replica's pass or a
/// `dirsync events prune`: each only finds less to delete.
pub async fn prune_once(
    store: &Store,
    retention: Retention,
    now: i64,
) -> Result<Pruned, AdminError> {
    let cutoff = retention.cutoff(now);
    let pruned = admin::prune_events(store, None, cutoff, PER_PASS).await?;
    if pruned.deleted > 0 {
        info!(
            deleted = pruned.deleted,
            cutoff = %rfc3339(cutoff),
            retention = %retention,
            is_complete = pruned.is_complete,
            "events older than the retention deleted"
        );
    }
    Ok(pruned)
}

/// The server's retention: a pass at start and every `EVERY` after, sooner
/// while a backlog remains. Errors are logged and the next pass tries again.
pub async fn run_forever(store: Store, retention: Retention) {
    info!(retention = %retention, every_secs = EVERY.as_secs(), "event retention started");
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let wait = match prune_once(&store, retention, now).await {
            Ok(Pruned {
                is_complete: false, ..
            }) => CATCH_UP,
            Ok(_) => EVERY,
            Err(err) => {
                warn!(%err, "event retention pass failed");
                EVERY
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// One pass of the SCIM request log's retention at `now` (epoch ms):
/// delete the requests older than `retention`, at most `PER_PASS`.
pub async fn scim_log_once(
    store: &Store,
    retention: Retention,
    now: i64,
) -> Result<Pruned, AdminError> {
    let cutoff = retention.cutoff(now);
    let pruned = admin::prune_scim_requests(store, cutoff, PER_PASS).await?;
    if pruned.deleted > 0 {
        info!(
            deleted = pruned.deleted,
            cutoff = %rfc3339(cutoff),
            retention = %retention,
            is_complete = pruned.is_complete,
            "SCIM requests older than the log's retention deleted"
        );
    }
    Ok(pruned)
}

/// The SCIM request log's retention: a pass at start and every `EVERY`
/// after, sooner while a backlog remains. (Its cap per directory is kept
/// by the log's writer as it writes.)
pub async fn scim_log_forever(store: Store, retention: Retention) {
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let wait = match scim_log_once(&store, retention, now).await {
            Ok(Pruned {
                is_complete: false, ..
            }) => CATCH_UP,
            Ok(_) => EVERY,
            Err(err) => {
                warn!(%err, "SCIM request log retention pass failed");
                EVERY
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("90d", 90 * 86_400)]
    #[case("12w", 12 * 7 * 86_400)]
    #[case("36h", 36 * 3600)]
    #[case("1h", 3600)]
    #[case(" 30days ", 30 * 86_400)]
    #[case("1d 12h", 36 * 3600)]
    fn a_duration_with_its_unit_is_a_retention(#[case] input: &str, #[case] secs: u64) {
        assert_eq!(
            Retention::parse(input).map(|r| r.duration()),
            Ok(Duration::from_secs(secs))
        );
    }

    #[rstest]
    #[case("90", "has no unit: write a duration such as 90d")]
    #[case("", "is not a duration")]
    #[case("forever", "is not a duration")]
    #[case("-5d", "is not a duration")]
    #[case("90 days ago", "is not a duration")]
    #[case("0d", "is shorter than an hour")]
    #[case("59m", "is shorter than an hour")]
    #[case("100000000y", "is longer than this server can count")]
    fn nonsense_is_refused_with_a_reason(#[case] input: &str, #[case] says: &str) {
        let err = Retention::parse(input).expect_err(input).to_string();
        assert!(err.contains(says), "{input:?}: {err}");
        assert!(err.contains(&format!("{input:?}")), "{err}");
    }

    #[test]
    fn the_cutoff_is_the_retention_before_now() {
        let retention = Retention::parse("2d").expect("2d");
        assert_eq!(retention.cutoff(10 * 86_400_000), 8 * 86_400_000);
        assert_eq!(retention.cutoff(0), -2 * 86_400_000);
    }
}
