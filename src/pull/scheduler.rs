//! The server's scheduler: a tick runs every connection that is due, one
//! connection at a time per lease, and `run_forever` ticks for as long as the
//! server runs. It uses `run` and `connector`; neither of them uses it.

use std::time::Duration;

use tracing::{info, warn};

use super::connector;
use super::retry::Pacing;
use super::run::{self, Request, RunError, Trigger};
use super::schedule::Schedule;
use crate::crypto::SealingKey;
use crate::reconcile::model::RunStatus;
use crate::store::pull::Run;
use crate::store::{Store, StoreError};

/// Connections one tick looks at (the rest wait for the next tick).
const DUE_PER_TICK: u64 = 16;

/// Close the runs whose process died (`run::fail_lapsed`), then run every
/// connection that is due and whose lease is free, one after the other, as
/// `owner`; the runs this replica carried out. Another replica
/// that took a lease first simply wins that connection (`Busy` is skipped).
/// Each connection's run is full every `full_every` runs, else incremental.
pub async fn tick(
    store: &Store,
    key: Option<&SealingKey>,
    owner: &str,
    pacing: &Pacing,
) -> Result<Vec<Run>, StoreError> {
    // Runs whose process died are closed first, due or not.
    match run::fail_lapsed(store, owner).await {
        Ok(_) => {}
        Err(RunError::Store(err)) => return Err(err),
        Err(err) => warn!(%err, "closing runs whose process stopped failed"),
    }
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
            .any(|r| r.mode == "full" && r.status == RunStatus::Succeeded.as_str());
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
