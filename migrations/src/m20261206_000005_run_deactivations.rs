//! What a run the mass-deactivation guard stopped would have deactivated:
//! the list an operator reads before approving it.
//!
//! - `run_deactivations`: one row per app user the stopped run would have
//!   deactivated, with why (`missing`: the complete listing left them out,
//!   or the directory said they were removed; `directory`: the directory
//!   lists them as no longer active), written with the run's record and
//!   gone with it. Keyed (run, user), so a page of them is a keyset walk.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000005_run_deactivations"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SyncRuns {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum RunDeactivations {
    Table,
    RunId,
    UserId,
    Reason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RunDeactivations::Table)
                    .col(string_len(RunDeactivations::RunId, 36))
                    .col(string_len(RunDeactivations::UserId, 36))
                    .col(string_len(RunDeactivations::Reason, 16))
                    .primary_key(
                        Index::create()
                            .col(RunDeactivations::RunId)
                            .col(RunDeactivations::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RunDeactivations::Table, RunDeactivations::RunId)
                            .to(SyncRuns::Table, SyncRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RunDeactivations::Table).to_owned())
            .await
    }
}
