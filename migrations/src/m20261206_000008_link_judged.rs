//! `user_links.judged`: the app user's version and the directory's policy
//! (as a fingerprint) when the engine last judged the link's snapshot. The
//! rules give the same answer for the same snapshot, app user and policy,
//! so a snapshot whose hash and `judged` both match is unchanged without
//! reading the app user or planning (the no-op fast path). NULL until a
//! link is next judged: such a link takes the full path once.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000008_link_judged"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum UserLinks {
    Table,
    Judged,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserLinks::Table)
                    .add_column(ColumnDef::new(UserLinks::Judged).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserLinks::Table)
                    .drop_column(UserLinks::Judged)
                    .to_owned(),
            )
            .await
    }
}
