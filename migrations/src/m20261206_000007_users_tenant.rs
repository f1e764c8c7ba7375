//! `users_tenant`: a tenant's app users in id order, as `groups_tenant`
//! keeps its groups. The host API pages users by id within a tenant
//! (`tenant_id = $1 AND id > $2 ORDER BY id LIMIT n`); with only
//! `(tenant_id, email_folded)` to go by, SQLite read every user of the
//! tenant and sorted them for each page (a 100-user page cost the whole
//! tenant), and PostgreSQL walked the primary key past other tenants' users.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000007_users_tenant"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    TenantId,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("users_tenant")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("users_tenant")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await
    }
}
