//! `scim_requests`: the per-directory SCIM request log. A row per SCIM
//! request a directory's token authenticated: when, method, path (with its
//! query), status, duration, the SCIM error, what the engine made of each
//! resource (JSON), and the bodies when the server keeps them. Read newest
//! first by directory (`directory_id, id`: ids are UUIDv7, so id order is
//! time order); pruned by time (`at`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000011_scim_requests"
    }
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum ScimRequests {
    Table,
    Id,
    DirectoryId,
    At,
    Method,
    Path,
    Status,
    DurationMs,
    ScimType,
    Detail,
    Outcomes,
    RequestHeaders,
    RequestBody,
    ResponseBody,
    /// Added by `m20261207_000014_scim_requests_own_file`.
    Number,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, Home::WithDirectories).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager).await
    }
}

/// Where the table lives: beside the directories, each row going with its
/// directory (a foreign key), or in the SCIM request log's own SQLite file,
/// which holds no directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Home {
    WithDirectories,
    OwnFile,
}

#[derive(DeriveIden, Clone, Copy)]
enum Directories {
    Table,
    Id,
}

/// The table and its two indexes.
pub(crate) async fn create(manager: &SchemaManager<'_>, home: Home) -> Result<(), DbErr> {
    let mut table = Table::create();
    columns(table.table(ScimRequests::Table)).primary_key(Index::create().col(ScimRequests::Id));
    if home == Home::WithDirectories {
        table.foreign_key(
            ForeignKey::create()
                .from(ScimRequests::Table, ScimRequests::DirectoryId)
                .to(Directories::Table, Directories::Id)
                .on_delete(ForeignKeyAction::Cascade),
        );
    }
    manager.create_table(table.to_owned()).await?;
    manager
        .create_index(
            Index::create()
                .name("scim_requests_directory_newest")
                .table(ScimRequests::Table)
                .col(ScimRequests::DirectoryId)
                .col(ScimRequests::Id)
                .to_owned(),
        )
        .await?;
    manager.create_index(at_index()).await
}

/// The index by time the first retention used.
pub(crate) fn at_index() -> IndexCreateStatement {
    Index::create()
        .name(AT_INDEX)
        .table(ScimRequests::Table)
        .col(ScimRequests::At)
        .to_owned()
}

pub(crate) const AT_INDEX: &str = "scim_requests_at";

/// The columns this migration created (every one but `number`), none of
/// them a key.
pub(crate) fn columns(table: &mut TableCreateStatement) -> &mut TableCreateStatement {
    table
        .col(ColumnDef::new(ScimRequests::Id).string().not_null())
        .col(
            ColumnDef::new(ScimRequests::DirectoryId)
                .string()
                .not_null(),
        )
        .col(ColumnDef::new(ScimRequests::At).big_integer().not_null())
        .col(ColumnDef::new(ScimRequests::Method).string().not_null())
        .col(ColumnDef::new(ScimRequests::Path).text().not_null())
        .col(ColumnDef::new(ScimRequests::Status).integer().not_null())
        .col(
            ColumnDef::new(ScimRequests::DurationMs)
                .big_integer()
                .not_null(),
        )
        .col(ColumnDef::new(ScimRequests::ScimType).string().null())
        .col(ColumnDef::new(ScimRequests::Detail).text().null())
        .col(ColumnDef::new(ScimRequests::Outcomes).text().not_null())
        .col(ColumnDef::new(ScimRequests::RequestHeaders).text().null())
        .col(ColumnDef::new(ScimRequests::RequestBody).text().null())
        .col(ColumnDef::new(ScimRequests::ResponseBody).text().null())
}

/// The table, with its rows and indexes.
pub(crate) async fn drop(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(ScimRequests::Table).to_owned())
        .await
}
