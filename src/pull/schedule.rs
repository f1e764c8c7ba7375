//! When a connection runs next: every `interval`, spread by `jitter` and
//! held between `min_delay` and `max_delay` (Pomerium's polling settings: a
//! fleet of connections does not wake in step). A value only: it imports
//! nothing of the run, the connector or the store (the loop that runs what
//! is due is `pull::scheduler`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

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
