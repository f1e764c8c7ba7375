//! Every SCIM write goes through the unit of work's group commit
//! (`reconcile::unit::Writer`): a write is a job that reads, checks and
//! writes its resource on the batch's transaction, in a savepoint of its
//! own. A job that lost a race to another replica's writer (its version
//! moved) is run again, with a fresh read, unless the client's If-Match
//! asked for exactly that version.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::ScimState;
use super::auth::Caller;
use super::error::ScimError;
use super::snapshot;
use crate::reconcile::unit::Unit;
use crate::store::StoreError;

/// How often a write re-reads and retries after losing a race to a concurrent
/// writer (only without If-Match; with it, the loser gets 412). Every lost race
/// means another writer committed, so the writers as a whole always progress;
/// a dozen IdP workers patching one group need a dozen attempts at worst.
pub const WRITE_ATTEMPTS: usize = 64;

/// Why a write's job did not keep what it wrote.
pub enum Failed {
    /// A conditional update found another version: a concurrent writer won.
    Raced,
    Refused(ScimError),
}

impl From<StoreError> for Failed {
    fn from(err: StoreError) -> Failed {
        match err {
            StoreError::VersionMismatch => Failed::Raced,
            other => Failed::Refused(other.into()),
        }
    }
}

impl From<ScimError> for Failed {
    fn from(err: ScimError) -> Failed {
        Failed::Refused(err)
    }
}

/// A write without If-Match that lost every race. The client set no
/// precondition, so 412 would be wrong (RFC 9110 §13.1.1); the server is
/// momentarily too busy with that resource (503, retry).
pub fn too_busy() -> ScimError {
    ScimError::service_unavailable(
        "the resource is being changed by many writers at once; retry the request",
    )
}

/// Give a job its signature (a closure's higher-ranked lifetime is only
/// inferred where the bound is in sight). A job may run more than once (a
/// neighbour's refusal reruns its batch), so it clones what it moves into
/// its future.
pub fn job<T, J>(job: J) -> J
where
    J: for<'a> Fn(&'a mut Unit) -> BoxFuture<'a, Result<T, Failed>>,
{
    job
}

/// Run `job` through the writer, again after a lost race; what it wrote
/// (what the engine made of the user changes it handed over is counted in
/// the metrics and left on the caller's trail for the request log).
pub async fn write<T, J>(
    state: &ScimState,
    caller: &Caller,
    if_match: Option<&str>,
    job: J,
) -> Result<T, ScimError>
where
    J: for<'a> Fn(&'a mut Unit) -> BoxFuture<'a, Result<T, Failed>> + Send + Sync + 'static,
    T: Send + 'static,
{
    let job = Arc::new(job);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let job = job.clone();
        match state.writer.write(move |unit: &mut Unit| job(unit)).await {
            Ok((value, applied)) => {
                snapshot::count(&applied);
                caller.trail.applied(&applied);
                return Ok(value);
            }
            Err(Failed::Refused(err)) => return Err(err),
            Err(Failed::Raced) if if_match.is_some() => {
                return Err(StoreError::VersionMismatch.into());
            }
            Err(Failed::Raced) if attempt < WRITE_ATTEMPTS => continue,
            Err(Failed::Raced) => return Err(too_busy()),
        }
    }
}
