//! The SCIM request log stored a batch to a row.
//!
//! A row per request cost the log's writer a row's worth of b-tree work for
//! every SCIM request (an insert, and once the directory was at its cap a
//! delete, each in two b-trees): about 35,000 instructions a request, a
//! few percent of a SCIM create. What the writer takes together for one
//! directory is now one row, `scim_request_batches`: the requests as a
//! JSON array (newest first), their newest and oldest ids, the newest
//! arrival time, how many, and `total`, the number of the directory's
//! requests up to the newest of them (the cap's trim deletes the rows
//! wholly below it and cuts the one it falls in).
//!
//! Keys: `(directory_id, last_id)`, which reads go along; `(directory_id,
//! total)` for the trim. The logged
//! requests are copied across, a row each, and back again on the way down.
//! - On SQLite the table is in the log's own file (`LogMigrator`).
//! - On PostgreSQL it is in the database, each row going with its
//!   directory (a foreign key).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261207_000011_scim_requests::{self as requests, AT_INDEX, Home};
use crate::m20261207_000014_scim_requests_own_file::numbered;
use crate::m20261207_000015_scim_requests_keyed::create_keyed;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000016_scim_request_batches"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return Ok(());
        }
        create(manager, Home::WithDirectories).await?;
        copy_into_batches(manager).await?;
        requests::drop(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return Ok(());
        }
        // The table as migration 000015 left it.
        requests::create(manager, Home::WithDirectories).await?;
        numbered(manager).await?;
        manager
            .drop_index(
                Index::drop()
                    .name(AT_INDEX)
                    .table(requests::ScimRequests::Table)
                    .to_owned(),
            )
            .await?;
        copy_into_requests(manager).await?;
        drop(manager).await
    }
}

/// The log file's batches (`LogMigrator`).
pub struct LogFile;

impl MigrationName for LogFile {
    fn name(&self) -> &str {
        "m20261207_000003_scim_request_batches"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LogFile {
    /// One transaction, so one connection (as `m20261207_000002`).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, Home::OwnFile).await?;
        copy_into_batches(manager).await?;
        requests::drop(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_keyed(manager).await?;
        copy_into_requests(manager).await?;
        drop(manager).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum ScimRequestBatches {
    Table,
    DirectoryId,
    LastId,
    FirstId,
    LastAt,
    Total,
    Count,
    Records,
}

#[derive(DeriveIden, Clone, Copy)]
enum Directories {
    Table,
    Id,
}

async fn create(manager: &SchemaManager<'_>, home: Home) -> Result<(), DbErr> {
    use ScimRequestBatches as B;
    let mut table = Table::create();
    table
        .table(B::Table)
        .col(ColumnDef::new(B::DirectoryId).string().not_null())
        .col(ColumnDef::new(B::LastId).string().not_null())
        .col(ColumnDef::new(B::FirstId).string().not_null())
        .col(ColumnDef::new(B::LastAt).big_integer().not_null())
        .col(ColumnDef::new(B::Total).big_integer().not_null())
        .col(ColumnDef::new(B::Count).integer().not_null())
        // Last: reading the others does not read it.
        .col(ColumnDef::new(B::Records).text().not_null())
        .primary_key(Index::create().col(B::DirectoryId).col(B::LastId));
    if home == Home::WithDirectories {
        table.foreign_key(
            ForeignKey::create()
                .from(B::Table, B::DirectoryId)
                .to(Directories::Table, Directories::Id)
                .on_delete(ForeignKeyAction::Cascade),
        );
    }
    manager.create_table(table.to_owned()).await?;
    manager
        .create_index(
            Index::create()
                .name("scim_request_batches_total")
                .table(B::Table)
                .col(B::DirectoryId)
                .col(B::Total)
                .to_owned(),
        )
        .await
}

async fn drop(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(ScimRequestBatches::Table).to_owned())
        .await
}

/// The fields of a request in a batch's JSON, as `store::scim_requests`
/// writes them, each a column of `scim_requests` of the same name.
const FIELDS: [&str; 12] = [
    "id",
    "at",
    "method",
    "path",
    "status",
    "duration_ms",
    "scim_type",
    "detail",
    "outcomes",
    "request_headers",
    "request_body",
    "response_body",
];

/// Each logged request a batch of its own, numbered as it was.
async fn copy_into_batches(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let (object, array) = match backend {
        DbBackend::Postgres => ("json_build_object", "json_build_array"),
        _ => ("json_object", "json_array"),
    };
    let pairs: Vec<String> = FIELDS.iter().map(|f| format!("'{f}', {f}")).collect();
    let records = format!("{array}({object}({}))", pairs.join(", "));
    let records = match backend {
        DbBackend::Postgres => format!("CAST({records} AS text)"),
        _ => records,
    };
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "INSERT INTO scim_request_batches \
             (directory_id, last_id, first_id, last_at, total, count, records) \
             SELECT directory_id, id, id, at, COALESCE(number, 0), 1, {records} FROM scim_requests"
        ))
        .await?;
    Ok(())
}

/// Each request of each batch a row again, numbered back from the batch's
/// `total` (a batch lists its requests newest first).
async fn copy_into_requests(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let text = |f: &str| match backend {
        DbBackend::Postgres => format!("r.value->>'{f}'"),
        _ => format!("json_extract(r.value, '$.{f}')"),
    };
    let columns: Vec<String> = FIELDS
        .iter()
        .map(|f| match (*f, backend) {
            ("at" | "duration_ms", DbBackend::Postgres) => format!("CAST({} AS bigint)", text(f)),
            ("status", DbBackend::Postgres) => format!("CAST({} AS integer)", text(f)),
            _ => text(f),
        })
        .collect();
    let (elements, position) = match backend {
        DbBackend::Postgres => (
            "json_array_elements(CAST(b.records AS json)) WITH ORDINALITY AS r(value, n)",
            "r.n - 1",
        ),
        _ => ("json_each(b.records) AS r", "r.key"),
    };
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "INSERT INTO scim_requests ({}, directory_id, number) \
             SELECT {}, b.directory_id, b.total - ({position}) \
             FROM scim_request_batches AS b CROSS JOIN {elements}",
            FIELDS.join(", "),
            columns.join(", "),
        ))
        .await?;
    Ok(())
}
