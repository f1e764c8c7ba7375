//! The pull side: a pull directory's connection to its provider and the
//! record of every run.
//!
//! - `connections`: one per pull directory, and one per provider per tenant.
//!   Settings, scope and schedule are plain JSON; the credentials are sealed
//!   (AES-256-GCM under the server's key, bound to the row's id) and never
//!   leave the server. `cursor` is where the next incremental run starts
//!   (Graph's deltaLink, Okta's lastUpdated mark). `next_run_at` drives the
//!   scheduler; `lease_owner` / `lease_expires_at` make one replica at a time
//!   run the connection (taken by a conditional UPDATE, lost on expiry).
//! - `sync_runs`: trigger, mode, status, counts and the first errors of each
//!   run, newest first per directory. A run the mass-deactivation guard
//!   stopped keeps the deactivations it weighed until an operator approves it
//!   (`approved_by_run_id` names the run that carried the approval out).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000003_pull"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Directories {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Connections {
    Table,
    Id,
    DirectoryId,
    TenantId,
    Provider,
    Settings,
    Scope,
    Schedule,
    SecretSealed,
    Cursor,
    NextRunAt,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SyncRuns {
    Table,
    Id,
    ConnectionId,
    DirectoryId,
    TenantId,
    Trigger,
    Mode,
    Status,
    StartedAt,
    FinishedAt,
    Counts,
    Errors,
    Deactivations,
    ApprovedByRunId,
}

fn id_col<T: IntoIden>(name: T) -> ColumnDef {
    string_len(name, 36)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Connections::Table)
                    .col(id_col(Connections::Id).primary_key())
                    .col(id_col(Connections::DirectoryId))
                    .col(id_col(Connections::TenantId))
                    .col(string_len(Connections::Provider, 16))
                    .col(json_binary(Connections::Settings))
                    .col(json_binary(Connections::Scope))
                    .col(json_binary(Connections::Schedule))
                    .col(text(Connections::SecretSealed))
                    .col(text_null(Connections::Cursor))
                    .col(big_integer_null(Connections::NextRunAt))
                    .col(string_len_null(Connections::LeaseOwner, 128))
                    .col(big_integer_null(Connections::LeaseExpiresAt))
                    .col(big_integer(Connections::CreatedAt))
                    .col(big_integer(Connections::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Connections::Table, Connections::DirectoryId)
                            .to(Directories::Table, Directories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "connections_directory",
                vec![Connections::DirectoryId],
                true,
            ),
            (
                "connections_tenant_provider",
                vec![Connections::TenantId, Connections::Provider],
                true,
            ),
            ("connections_next_run", vec![Connections::NextRunAt], false),
        ] {
            let mut index = Index::create();
            index.name(name).table(Connections::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(SyncRuns::Table)
                    .col(id_col(SyncRuns::Id).primary_key())
                    .col(id_col(SyncRuns::ConnectionId))
                    .col(id_col(SyncRuns::DirectoryId))
                    .col(id_col(SyncRuns::TenantId))
                    .col(string_len(SyncRuns::Trigger, 16))
                    .col(string_len(SyncRuns::Mode, 16))
                    .col(string_len(SyncRuns::Status, 16))
                    .col(big_integer(SyncRuns::StartedAt))
                    .col(big_integer_null(SyncRuns::FinishedAt))
                    .col(json_binary(SyncRuns::Counts))
                    .col(json_binary(SyncRuns::Errors))
                    .col(big_integer(SyncRuns::Deactivations))
                    .col(string_len_null(SyncRuns::ApprovedByRunId, 36))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SyncRuns::Table, SyncRuns::DirectoryId)
                            .to(Directories::Table, Directories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sync_runs_directory_started")
                    .table(SyncRuns::Table)
                    .col(SyncRuns::DirectoryId)
                    .col(SyncRuns::StartedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [SyncRuns::Table.into_iden(), Connections::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
