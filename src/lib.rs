//! dirsync: keeps a SaaS application's users and groups in step with its
//! customers' identity providers (SCIM 2.0 push, directory API pull).

pub mod admin;
pub mod api;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod metrics;
pub mod ops;
pub mod pull;
pub mod reconcile;
pub mod retention;
pub mod scim;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod webhooks;
