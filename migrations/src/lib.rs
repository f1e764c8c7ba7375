//! The schema, as sea-orm migrations that run unchanged on SQLite and PostgreSQL
//! (but one: on SQLite the SCIM request log has a file of its own, `LogMigrator`).
//!
//! A landed migration is never edited; changes are new migrations.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_directory_mirror;
mod m20261122_000002_app_identity;
mod m20261201_000003_pull;
mod m20261206_000004_deferred;
mod m20261206_000005_run_deactivations;
mod m20261206_000006_webhooks;
mod m20261206_000007_users_tenant;
mod m20261206_000008_link_judged;
mod m20261206_000009_name_folds;
mod m20261206_000010_custom_attributes;
mod m20261207_000011_scim_requests;
mod m20261207_000012_operators;
mod m20261207_000013_setup_links;
mod m20261207_000014_scim_requests_own_file;
mod m20261207_000015_scim_requests_keyed;
mod m20261207_000016_scim_request_batches;

/// The step before which the folded columns are recomputed in Rust
/// (`m20261206_000009_name_folds`).
pub use m20261206_000009_name_folds::NAME as NAME_FOLDS;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_directory_mirror::Migration),
            Box::new(m20261122_000002_app_identity::Migration),
            Box::new(m20261201_000003_pull::Migration),
            Box::new(m20261206_000004_deferred::Migration),
            Box::new(m20261206_000005_run_deactivations::Migration),
            Box::new(m20261206_000006_webhooks::Migration),
            Box::new(m20261206_000007_users_tenant::Migration),
            Box::new(m20261206_000008_link_judged::Migration),
            Box::new(m20261206_000009_name_folds::Migration),
            Box::new(m20261206_000010_custom_attributes::Migration),
            Box::new(m20261207_000011_scim_requests::Migration),
            Box::new(m20261207_000012_operators::Migration),
            Box::new(m20261207_000013_setup_links::Migration),
            Box::new(m20261207_000014_scim_requests_own_file::Migration),
            Box::new(m20261207_000015_scim_requests_keyed::Migration),
            Box::new(m20261207_000016_scim_request_batches::Migration),
        ]
    }
}

/// The schema of the SCIM request log's own SQLite file (beside the
/// database's, `-scim-log` appended): its one table, `scim_request_batches`.
/// PostgreSQL keeps the table in the database and has no such file.
pub struct LogMigrator;

#[async_trait::async_trait]
impl MigratorTrait for LogMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261207_000014_scim_requests_own_file::LogFile),
            Box::new(m20261207_000015_scim_requests_keyed::LogFile),
            Box::new(m20261207_000016_scim_request_batches::LogFile),
        ]
    }
}
