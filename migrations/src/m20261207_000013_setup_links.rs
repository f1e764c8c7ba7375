//! Setup links for the customer's setup portal (issue 15).
//!
//! - `setup_links`: a link the host application or an operator gives a
//!   tenant's IT admin. `secret_hash` is the SHA-256 (hex) of the link's
//!   secret, as for SCIM tokens, so a read of the table yields no usable
//!   link. `allows` is what the portal may set up (`scim`, `pull`, or
//!   `scim,pull`). A link opens one portal session: `used_at` is set in the
//!   transaction that opens it; `expires_at` ends an unused link;
//!   `revoked_at` ends it early. `session_hash`: the session it opened
//!   (the SHA-256 of that session's cookie, as `sessions.id_hash`), through
//!   which the portal learns what the session may set up. `created_by` says who made it (an
//!   operator's email, `api`, `cli`). Gone with the tenant.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000013_setup_links"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum SetupLinks {
    Table,
    Id,
    TenantId,
    SecretHash,
    Allows,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    SessionHash,
    CreatedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SetupLinks::Table)
                    .if_not_exists()
                    .col(string_len(SetupLinks::Id, 36).primary_key())
                    .col(string_len(SetupLinks::TenantId, 36))
                    .col(string_len(SetupLinks::SecretHash, 64))
                    .col(string_len(SetupLinks::Allows, 32))
                    .col(big_integer(SetupLinks::CreatedAt))
                    .col(big_integer(SetupLinks::ExpiresAt))
                    .col(big_integer_null(SetupLinks::UsedAt))
                    .col(big_integer_null(SetupLinks::RevokedAt))
                    .col(string_len_null(SetupLinks::SessionHash, 64))
                    .col(text(SetupLinks::CreatedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SetupLinks::Table, SetupLinks::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("setup_links_secret_hash")
                    .table(SetupLinks::Table)
                    .col(SetupLinks::SecretHash)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("setup_links_tenant")
                    .table(SetupLinks::Table)
                    .col(SetupLinks::TenantId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(SetupLinks::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
