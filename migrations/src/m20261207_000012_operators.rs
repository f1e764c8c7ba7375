//! Operator accounts and browser sessions (issue 15).
//!
//! - `operators`: who signs in to the dashboard at /admin. `email` as typed,
//!   `email_folded` (lowercase) unique, `password_hash`: an argon2id PHC
//!   string (salt and parameters inside it).
//! - `sessions`: a signed-in browser. `id_hash` is the SHA-256 (hex) of the
//!   cookie's value, so a read of the table does not yield a usable session.
//!   `kind` says whose session it is (`operator`; the setup portal's
//!   `portal` sessions live here too): `operator_id` is set for an
//!   operator's, `tenant_id` for a portal session, which sees one tenant.
//!   `csrf_token`: what every form of the session carries back.
//!   `expires_at`: the session ends then whatever happens.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000012_operators"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Operators {
    Table,
    Id,
    Email,
    EmailFolded,
    PasswordHash,
    CreatedAt,
    LastSignInAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    IdHash,
    Kind,
    OperatorId,
    TenantId,
    CsrfToken,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Operators::Table)
                    .if_not_exists()
                    .col(string_len(Operators::Id, 36).primary_key())
                    .col(text(Operators::Email))
                    .col(text(Operators::EmailFolded))
                    .col(text(Operators::PasswordHash))
                    .col(big_integer(Operators::CreatedAt))
                    .col(big_integer_null(Operators::LastSignInAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("operators_email_folded")
                    .table(Operators::Table)
                    .col(Operators::EmailFolded)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(string_len(Sessions::IdHash, 64).primary_key())
                    .col(string_len(Sessions::Kind, 16))
                    .col(string_len_null(Sessions::OperatorId, 36))
                    .col(string_len_null(Sessions::TenantId, 36))
                    .col(text(Sessions::CsrfToken))
                    .col(big_integer(Sessions::CreatedAt))
                    .col(big_integer(Sessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::OperatorId)
                            .to(Operators::Table, Operators::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_expires_at")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_operator")
                    .table(Sessions::Table)
                    .col(Sessions::OperatorId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Operators::Table).if_exists().to_owned())
            .await
    }
}
