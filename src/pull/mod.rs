//! The pull side: connectors that list a directory's users and groups from
//! its provider's API (Google Workspace, Microsoft Graph, Okta) and hand the
//! engine normalized snapshots (`reconcile::listing`). Translation only: no
//! reconciliation rule lives here. Only this module may import an HTTP client.
//!
//! Status (issue 4): the provider-to-snapshot mappings, the Graph users
//! connector against a fake Microsoft Graph, and `sync_graph_users` (one run
//! through the engine). Connections, groups, delta, throttling, recorded runs,
//! the scheduler, Google and Okta come next.

pub mod fake;
pub mod graph;
pub mod normalize;

use crate::reconcile::listing::{Listing, ListingOptions, Report};
use crate::store::Store;

/// What one run did: the engine's report, and the error that cut the listing
/// short, if one did (then no one was deactivated or marked missing).
#[derive(Debug)]
pub struct SyncOutcome {
    pub report: Report,
    pub error: Option<graph::PullError>,
}

/// Pull every user of a Graph directory through the engine once, a page at a
/// time as it arrives. The listing counts as complete only when its last page
/// was read.
pub async fn sync_graph_users(
    store: &Store,
    directory_id: &str,
    source: &mut graph::Graph,
    options: ListingOptions,
    now: i64,
) -> Result<SyncOutcome, graph::PullError> {
    let mut listing = Listing::begin(store, directory_id, options).await?;
    let mut next: Option<String> = None;
    let error = loop {
        match source.users_page(next.as_deref(), 999).await {
            Ok(page) => {
                listing.page(store, page.users, now).await?;
                match page.next {
                    Some(link) => next = Some(link),
                    None => break None,
                }
            }
            Err(err) => break Some(err),
        }
    };
    let report = listing.finish(store, error.is_none(), now).await?;
    Ok(SyncOutcome { report, error })
}
