//! On SQLite the SCIM request log moves to a file of its own (the
//! database's file name with `-scim-log` appended, schema in
//! `LogMigrator`): its writes, a row per SCIM request and a trim, no longer
//! queue behind SQLite's one writer lock with the directories' own. The
//! table leaves the main file with the requests it held (a debugging log,
//! kept for days; it starts again empty in its file). On PostgreSQL, which
//! has no one writer, the table stays where it is and this step does
//! nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261207_000011_scim_requests::{self as requests, Home};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000014_scim_requests_own_file"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        requests::drop(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        requests::create(manager, Home::WithDirectories).await
    }
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
        requests::create(manager, Home::OwnFile).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        requests::drop(manager).await
    }
}
