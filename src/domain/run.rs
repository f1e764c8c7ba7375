//! A pull run's status: a closed set, written as its snake_case name
//! (`needs_approval`) in the `sync_runs.status` column, the API and the
//! `dirsync_pull_runs_total` series.

use std::fmt;
use std::str::FromStr;

/// Where a pull run stands, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Under way (its lease held).
    Running,
    /// A complete listing, everything applied.
    Succeeded,
    /// Some users could not be applied (skips, conflicts) or the listing did
    /// not complete: nobody was deactivated or marked missing.
    Partial,
    /// The run ended with an error (or its lease lapsed while `Running`).
    Failed,
    /// The mass-deactivation guard stopped it: creations and updates applied,
    /// no deactivation until someone approves.
    NeedsApproval,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Partial,
        RunStatus::Failed,
        RunStatus::NeedsApproval,
    ];

    /// The name stored and sent on every wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::NeedsApproval => "needs_approval",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no run status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run status {0:?}")]
pub struct UnknownRunStatus(pub String);

impl FromStr for RunStatus {
    type Err = UnknownRunStatus;

    fn from_str(s: &str) -> Result<RunStatus, UnknownRunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownRunStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_name() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
        }
        assert!("stopped".parse::<RunStatus>().is_err());
    }
}
