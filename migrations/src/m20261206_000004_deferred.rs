//! Deferred changes: what a directory said of a user that the engine could
//! not apply yet, because the address it asks for is still held by another
//! user of the same directory (one half of a swap that arrived first, a new
//! hire whose address a rename releases later in the listing).
//!
//! - `deferred_changes`: one row per directory user at most, keyed like its
//!   link (directory, the directory's id for the user), with the complete
//!   snapshot waiting, the folded address it waits for (indexed: whoever
//!   releases that address in the directory applies the row in the same
//!   transaction), the app user holding it when it was deferred, and why.
//!   A row goes as soon as a later word of the directory on that user is
//!   applied, or the user is removed.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000004_deferred"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Directories {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum DeferredChanges {
    Table,
    DirectoryId,
    SourceId,
    TenantId,
    EmailFolded,
    HolderId,
    Reason,
    Snapshot,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeferredChanges::Table)
                    .col(string_len(DeferredChanges::DirectoryId, 36))
                    .col(string(DeferredChanges::SourceId))
                    .col(string_len(DeferredChanges::TenantId, 36))
                    .col(string(DeferredChanges::EmailFolded))
                    .col(string_len_null(DeferredChanges::HolderId, 36))
                    .col(text(DeferredChanges::Reason))
                    .col(json_binary(DeferredChanges::Snapshot))
                    .col(big_integer(DeferredChanges::CreatedAt))
                    .col(big_integer(DeferredChanges::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(DeferredChanges::DirectoryId)
                            .col(DeferredChanges::SourceId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DeferredChanges::Table, DeferredChanges::DirectoryId)
                            .to(Directories::Table, Directories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deferred_changes_email")
                    .table(DeferredChanges::Table)
                    .col(DeferredChanges::DirectoryId)
                    .col(DeferredChanges::EmailFolded)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeferredChanges::Table).to_owned())
            .await
    }
}
