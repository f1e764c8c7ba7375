//! When a connection runs next: every `interval`, spread by `jitter` and
//! held between `min_delay` and `max_delay` (Pomerium's polling settings: a
//! fleet of connections does not wake in step), and the server loop that
//! runs whatever is due, one connection at a time per lease.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::connector;
use super::retry::Pacing;
use super::run::{self, Request, RunError, Trigger};
use crate::crypto::SealingKey;
use crate::store::pull::Run;
use crate::store::{Store, StoreError};

/// A connection's schedule (seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Schedule {
    /// Off: only `dirsync sync` runs it.
    pub enabled: bool,
    pub interval_secs: u64,
    /// The shortest wait between runs, also after a failed run.
    pub min_delay_secs: u64,
    /// The longest wait between runs.
    pub max_delay_secs: u64,
    /// The share of the interval a wait may move by, either way (0 to 1).
    pub jitter: f64,
    /// Every this many scheduled runs is a full one (groups, memberships and
    /// missing users); the others are incremental where the provider can.
    pub full_every: u32,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            enabled: true,
            interval_secs: 3600,
            min_delay_secs: 60,
            max_delay_secs: 6 * 3600,
            jitter: 0.1,
            full_every: 24,
        }
    }
}

impl Schedule {
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs == 0 {
            return Err("schedule.interval_secs must be at least 1".into());
        }
        if self.min_delay_secs > self.max_delay_secs {
            return Err("schedule.min_delay_secs must not exceed max_delay_secs".into());
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err("schedule.jitter must be between 0 and 1".into());
        }
        if self.full_every == 0 {
            return Err("schedule.full_every must be at least 1".into());
        }
        Ok(())
    }

    /// The wait before the next run; `roll` in [0, 1) places it in the
    /// jitter band (random in production, fixed in tests).
    pub fn delay(&self, roll: f64) -> Duration {
        let spread = self.interval_secs as f64 * self.jitter * (2.0 * roll - 1.0);
        let secs = (self.interval_secs as f64 + spread)
            .clamp(self.min_delay_secs as f64, self.max_delay_secs as f64);
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// When to run next after a run that ended at `now` (epoch ms).
    pub fn next_after(&self, now: i64) -> Option<i64> {
        self.enabled
            .then(|| now + self.delay(rand::random::<f64>()).as_millis() as i64)
    }
}

/// Connections one tick looks at (the rest wait for the next tick).
const DUE_PER_TICK: u64 = 16;

/// Run every connection that is due and whose lease is free, one after the
/// other, as `owner`; the runs this replica carried out. Another replica
/// that took a lease first simply wins that connection (`Busy` is skipped).
/// Each connection's run is full every `full_every` runs, else incremental.
pub async fn tick(
    store: &Store,
    key: Option<&SealingKey>,
    owner: &str,
    pacing: &Pacing,
) -> Result<Vec<Run>, StoreError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut done = Vec::new();
    for connection in store.due_connections(now, DUE_PER_TICK).await? {
        let schedule: Schedule =
            serde_json::from_value(connection.schedule.clone()).unwrap_or_default();
        // Full when none of the last `full_every - 1` runs was a full run
        // that succeeded.
        let recent = store
            .runs_of(
                &connection.directory_id,
                u64::from(schedule.full_every.saturating_sub(1)),
            )
            .await?;
        let full_is_due = !recent
            .iter()
            .any(|r| r.mode == "full" && r.status == "succeeded");
        let request = Request {
            trigger: Trigger::Schedule,
            incremental: !full_is_due,
            ..Request::manual()
        };
        let result = run::run_connection(
            store,
            &connection.directory_id,
            &request,
            owner,
            |c| connector::for_connection(key, c, pacing.clone()),
            &mut |_| {},
        )
        .await;
        match result {
            Ok(run) => done.push(run),
            Err(RunError::Busy(_)) => {}
            Err(RunError::Store(err)) => return Err(err),
            Err(err) => {
                warn!(directory_id = %connection.directory_id, %err, "scheduled run failed")
            }
        }
    }
    Ok(done)
}

/// The server's scheduler: a tick every `every`, for as long as the server
/// runs. Errors are logged and the next tick tries again.
pub async fn run_forever(store: Store, key: Option<SealingKey>, owner: String, every: Duration) {
    info!(%owner, every_secs = every.as_secs(), "scheduler started");
    let pacing = Pacing::default();
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(err) = tick(&store, key.as_ref(), &owner, &pacing).await {
            warn!(%err, "scheduler tick failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_moves_within_the_jitter_band_and_stays_between_min_and_max() {
        let s = Schedule::default();
        assert_eq!(s.delay(0.5), Duration::from_secs(3600));
        assert_eq!(s.delay(0.0), Duration::from_secs(3240));
        assert!(s.delay(0.999) <= Duration::from_secs(3960));
        let tight = Schedule {
            interval_secs: 30,
            min_delay_secs: 60,
            ..Schedule::default()
        };
        assert_eq!(tight.delay(0.0), Duration::from_secs(60));
        let capped = Schedule {
            interval_secs: 100_000,
            ..Schedule::default()
        };
        assert_eq!(capped.delay(1.0), Duration::from_secs(6 * 3600));
    }

    #[test]
    fn a_disabled_schedule_never_runs_and_bad_values_are_refused() {
        let off = Schedule {
            enabled: false,
            ..Schedule::default()
        };
        assert_eq!(off.next_after(0), None);
        let bad = Schedule {
            jitter: 2.0,
            ..Schedule::default()
        };
        assert!(bad.validate().unwrap_err().contains("jitter"));
    }
}
