//! The reconciliation rules (docs/reconciliation.md): the one place where
//! provisioning decisions are made, for SCIM push and directory pull alike.
//! `plan` is pure (data in, an outcome and writes out); `apply`, `groups`,
//! `listing`, `host` and `removal` run plans in one transaction with their
//! events, through `store`.
//! This module imports no HTTP, SQL, HTTP-client or SCIM wire crate, and
//! neither `scim` nor `pull`, which call it.

pub mod addresses;
pub mod apply;
pub mod groups;
pub mod host;
pub mod listing;
pub mod plan;
pub mod policy;
pub mod removal;
