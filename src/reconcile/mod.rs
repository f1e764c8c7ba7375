//! The reconciliation rules (DESIGN.md): the one place where provisioning
//! decisions are made, for SCIM push and directory pull alike. Plans are pure
//! data; this module imports no HTTP, SQL, HTTP-client or SCIM wire crate.
//!
//! Status: the user planner and the per-directory policy. Applying plans in the
//! same transaction as the mirror write, app groups and the event outbox are the
//! rest of issue 3.

pub mod plan;
pub mod policy;
