//! The SCIM request log's trim by number, and on SQLite a file of its own.
//!
//! - `number`: each request's number among its directory's, given by the
//!   log's writer, with the index `(directory_id, number)`, so trimming a
//!   directory to its newest N deletes by one seek instead of walking N
//!   index entries to find the N-th newest.
//! - On SQLite the log moves to a file of its own (the database's file name
//!   with `-scim-log` appended, schema in `LogMigrator`): its writes no
//!   longer queue behind SQLite's one writer lock with the directories'
//!   own. The table leaves the main file with the requests it held (a
//!   debugging log, kept for days; it starts again empty in its file).
//! - On PostgreSQL, which has no one writer, the table stays, and the
//!   requests it holds are numbered in id (arrival) order.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261207_000011_scim_requests::{self as requests, Home, ScimRequests};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000014_scim_requests_own_file"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return requests::drop(manager).await;
        }
        numbered(manager).await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE scim_requests SET number = numbered.n \
                 FROM (SELECT id, row_number() OVER (PARTITION BY directory_id ORDER BY id) AS n \
                       FROM scim_requests) AS numbered \
                 WHERE scim_requests.id = numbered.id",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return requests::create(manager, Home::WithDirectories).await;
        }
        manager.drop_index(drop_number_index()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ScimRequests::Table)
                    .drop_column(ScimRequests::Number)
                    .to_owned(),
            )
            .await
    }
}

const NUMBER_INDEX: &str = "scim_requests_directory_number";

/// The index `(directory_id, number)` the trim seeks.
pub(crate) fn number_index() -> IndexCreateStatement {
    Index::create()
        .name(NUMBER_INDEX)
        .table(ScimRequests::Table)
        .col(ScimRequests::DirectoryId)
        .col(ScimRequests::Number)
        .to_owned()
}

pub(crate) fn drop_number_index() -> IndexDropStatement {
    Index::drop()
        .name(NUMBER_INDEX)
        .table(ScimRequests::Table)
        .to_owned()
}

/// The `number` column and its index.
pub(crate) async fn numbered(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .alter_table(
            Table::alter()
                .table(ScimRequests::Table)
                .add_column(ColumnDef::new(ScimRequests::Number).big_integer().null())
                .to_owned(),
        )
        .await?;
    manager.create_index(number_index()).await
}

/// The log file's one table (`LogMigrator`).
pub struct LogFile;

impl MigrationName for LogFile {
    fn name(&self) -> &str {
        "m20261207_000001_scim_requests"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LogFile {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        requests::create(manager, Home::OwnFile).await?;
        numbered(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        requests::drop(manager).await
    }
}
