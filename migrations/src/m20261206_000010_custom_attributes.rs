//! `users.custom_attributes`: the named values a directory's attribute
//! mapping gives an app user (issue 14), a JSON object of name → string or
//! list of strings; NULL when it has none (every existing user).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000010_custom_attributes"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    CustomAttributes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too: its first statement reads the
    /// schema (`has_column`), which brings the connection's copy of it up
    /// to date, so the ALTER that follows on the same connection is parsed
    /// against the table as it is. On a pooled connection that last saw the
    /// table before another connection altered it, a bare ALTER fails with
    /// "no such column" (SQLite parses DDL before it checks the schema
    /// cookie).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("users", "custom_attributes").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::CustomAttributes).json_binary().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !manager.has_column("users", "custom_attributes").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::CustomAttributes)
                    .to_owned(),
            )
            .await
    }
}
