//! The reconciliation rules (docs/reconciliation.md): the one place where
//! provisioning decisions are made, for SCIM push and directory pull alike.
//! `model` holds the engine's nouns (snapshots, changes, outcomes, event
//! types, run statuses);
//! `plan` is pure (data in, an outcome and writes out); `apply` and `groups`
//! run plans through `store`; `unit` is the one write path: every caller's
//! transaction, its events and its commit (`listing`, `host`, `removal`, and
//! the SCIM and pull edges all write through it). `mapping` is pure too: a
//! directory's attribute-mapping rules, compiled and evaluated against a
//! user's document.
//! This module imports no HTTP, SQL, HTTP-client or SCIM wire crate, and
//! neither `scim` nor `pull`, which call it.

pub mod addresses;
pub mod apply;
pub mod groups;
pub mod host;
pub mod listing;
pub mod mapping;
pub mod model;
pub mod plan;
pub mod policy;
pub mod removal;
pub mod unit;
