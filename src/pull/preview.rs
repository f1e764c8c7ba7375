//! A look at a pull directory that writes nothing: the first users its
//! connection lists, as the connector and `normalize` make them, in the
//! connection's department scope and narrowed by what the caller wants.
//! The mapping preview (`admin::preview_mapping`) and the import wizard's
//! preview (`admin::connections::preview`) both read through it; neither
//! reaches the engine.

use super::PullError;
use super::run::in_department;
use super::source::{Position, Scope, Source};
use crate::domain::names::fold;
use crate::reconcile::model::Snapshot;

/// Most users a preview shows.
pub const MAX_USERS: usize = 100;

/// Most users a preview reads from the provider looking for those it
/// shows: a search that matches few users of a large directory ends here
/// rather than listing all of it.
pub const MAX_READ: u64 = 10_000;

/// What a preview read.
#[derive(Debug, Default)]
pub struct Sample {
    /// The directory's id for each user shown, and its snapshot (not yet
    /// mapped: the document the mapping reads is still on it).
    pub users: Vec<(String, Snapshot)>,
    /// Users the provider listed to find them.
    pub read: u64,
    /// Whether the listing ended before `MAX_READ` (every user in scope
    /// was looked at).
    pub complete: bool,
}

/// The first `limit` users (at most `MAX_USERS`) of the connection's
/// scope that `wanted` keeps, in the provider's order, reading pages from
/// the start until they are found, the listing ends or `MAX_READ` users
/// were read.
pub async fn first_users<S: Source + Send>(
    source: &mut S,
    scope: &Scope,
    limit: usize,
    wanted: impl Fn(&str, &Snapshot) -> bool,
) -> Result<Sample, PullError> {
    let limit = limit.clamp(1, MAX_USERS);
    let scope_department = scope.department.as_deref().map(fold);
    let mut sample = Sample::default();
    let mut at = Position::Start;
    loop {
        let page = source.users(&at).await?;
        sample.read += page.users.len() as u64;
        for (id, snapshot) in page.users {
            if in_department(&scope_department, &snapshot) && wanted(&id, &snapshot) {
                sample.users.push((id, snapshot));
                if sample.users.len() == limit {
                    return Ok(sample);
                }
            }
        }
        match page.next {
            Some(next) if sample.read < MAX_READ => at = Position::Next(next),
            Some(_) => return Ok(sample),
            None => {
                sample.complete = true;
                return Ok(sample);
            }
        }
    }
}
