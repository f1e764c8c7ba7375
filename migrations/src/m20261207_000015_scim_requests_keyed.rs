//! The SCIM request log with fewer b-trees to write a row into.
//!
//! A logged request was written into five: the table, its primary key, and
//! the indexes by directory and id, by directory and number, and by time.
//! Retention now goes through each directory's requests oldest first (by
//! `directory_id, id`: ids are UUIDv7, so id order is time order), which
//! the index by time only served.
//!
//! - On SQLite the log's file (`LogMigrator`) gets the table keyed by
//!   `(directory_id, id)` itself (`WITHOUT ROWID`) with the index by
//!   number beside it: two b-trees. Its requests are copied across.
//! - On PostgreSQL the index by time goes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261207_000011_scim_requests::{self as requests, AT_INDEX, Home, ScimRequests};
use crate::m20261207_000014_scim_requests_own_file::{drop_number_index, number_index, numbered};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000015_scim_requests_keyed"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return Ok(());
        }
        manager
            .drop_index(
                Index::drop()
                    .name(AT_INDEX)
                    .table(ScimRequests::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return Ok(());
        }
        manager.create_index(requests::at_index()).await
    }
}

/// The table's name while its requests are copied into it.
const KEYED: &str = "scim_requests_keyed";

/// The log file's table keyed by `(directory_id, id)` (`LogMigrator`).
pub struct LogFile;

impl MigrationName for LogFile {
    fn name(&self) -> &str {
        "m20261207_000002_scim_requests_keyed"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LogFile {
    /// One transaction, so one connection: the pool's others would not all
    /// see each step's schema, and a step that fails undoes the rest.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(keyed(Alias::new(KEYED))).await?;
        // Both tables have the columns in the same order: those of
        // `requests::columns`, then `number`.
        manager
            .get_connection()
            .execute_unprepared(&format!("INSERT INTO {KEYED} SELECT * FROM scim_requests"))
            .await?;
        requests::drop(manager).await?;
        manager
            .rename_table(
                Table::rename()
                    .table(Alias::new(KEYED), ScimRequests::Table)
                    .to_owned(),
            )
            .await?;
        manager.create_index(number_index()).await
    }

    /// The table as `m20261207_000001_scim_requests` made it, with the
    /// requests copied back.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(drop_number_index()).await?;
        manager
            .rename_table(
                Table::rename()
                    .table(ScimRequests::Table, Alias::new(KEYED))
                    .to_owned(),
            )
            .await?;
        requests::create(manager, Home::OwnFile).await?;
        numbered(manager).await?;
        manager
            .get_connection()
            .execute_unprepared(&format!("INSERT INTO scim_requests SELECT * FROM {KEYED}"))
            .await?;
        manager
            .drop_table(Table::drop().table(Alias::new(KEYED)).to_owned())
            .await
    }
}

/// The table keyed by `(directory_id, id)`, named `name`.
fn keyed(name: impl IntoIden) -> TableCreateStatement {
    let mut table = Table::create();
    requests::columns(table.table(name))
        .col(ColumnDef::new(ScimRequests::Number).big_integer().null())
        .primary_key(
            Index::create()
                .col(ScimRequests::DirectoryId)
                .col(ScimRequests::Id),
        )
        .extra("WITHOUT ROWID");
    table.to_owned()
}

/// The log file's `scim_requests` as this migration leaves it, empty.
pub(crate) async fn create_keyed(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager.create_table(keyed(ScimRequests::Table)).await?;
    manager.create_index(number_index()).await
}
