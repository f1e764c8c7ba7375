//! The pull side: connectors that list a directory's users and groups from
//! its provider's API (Google Workspace, Microsoft Graph, Okta) and hand the
//! engine normalized snapshots (`reconcile::listing`). Translation only: no
//! reconciliation rule lives here. Only this module may import an HTTP client.
//!
//! Status (issue 4): the provider-to-snapshot mappings and a fake Microsoft
//! Graph. Connections, the connectors' HTTP, runs, the scheduler and the
//! Google and Okta fakes come next.

pub mod fake;
pub mod normalize;
