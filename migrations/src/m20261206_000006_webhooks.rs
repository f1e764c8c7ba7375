//! Webhooks: the host application's endpoints and every delivery attempt.
//!
//! - `webhook_endpoints`: one row per endpoint of a tenant. `url`, the event
//!   types it takes (JSON array; null: every type), `batch_size` (events per
//!   POST). The signing secret is sealed (AES-256-GCM under the server's
//!   key, bound to the row's id); during a rotation the previous one stays
//!   sealed beside it until `previous_expires_at`. `delivered_seq` is the
//!   last event of the tenant's feed the endpoint took (or skipped by its
//!   types): the next delivery starts after it, which is also where a replay
//!   moves it. `failures` counts the failed attempts of the event at the
//!   head, `next_attempt_at` is when it is tried again. `enabled` false with
//!   `disabled_reason` says why (exhausted, 410 Gone, an operator).
//!   `lease_owner` / `lease_expires_at`: one replica at a time delivers an
//!   endpoint (taken by a conditional UPDATE, lost on expiry), as pull
//!   connections are run.
//! - `webhook_attempts`: every attempt, newest last: which events it carried
//!   (first and last sequence), when, the HTTP status or the error, the
//!   latency, and an excerpt of the answer (at most 1 KB).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000006_webhooks"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEndpoints {
    Table,
    Id,
    TenantId,
    Url,
    Description,
    EventTypes,
    BatchSize,
    Enabled,
    DisabledReason,
    SecretSealed,
    PreviousSecretSealed,
    PreviousExpiresAt,
    DeliveredSeq,
    Failures,
    NextAttemptAt,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookAttempts {
    Table,
    Id,
    EndpointId,
    TenantId,
    FirstSeq,
    LastSeq,
    AttemptedAt,
    Status,
    LatencyMs,
    Outcome,
    Excerpt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(string_len(WebhookEndpoints::Id, 36).primary_key())
                    .col(string_len(WebhookEndpoints::TenantId, 36))
                    .col(text(WebhookEndpoints::Url))
                    .col(text(WebhookEndpoints::Description))
                    .col(json_binary_null(WebhookEndpoints::EventTypes))
                    .col(integer(WebhookEndpoints::BatchSize))
                    .col(boolean(WebhookEndpoints::Enabled))
                    .col(text_null(WebhookEndpoints::DisabledReason))
                    .col(text(WebhookEndpoints::SecretSealed))
                    .col(text_null(WebhookEndpoints::PreviousSecretSealed))
                    .col(big_integer_null(WebhookEndpoints::PreviousExpiresAt))
                    .col(big_integer(WebhookEndpoints::DeliveredSeq))
                    .col(integer(WebhookEndpoints::Failures))
                    .col(big_integer(WebhookEndpoints::NextAttemptAt))
                    .col(string_len_null(WebhookEndpoints::LeaseOwner, 64))
                    .col(big_integer_null(WebhookEndpoints::LeaseExpiresAt))
                    .col(big_integer(WebhookEndpoints::CreatedAt))
                    .col(big_integer(WebhookEndpoints::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookEndpoints::Table, WebhookEndpoints::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_endpoints_tenant")
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::TenantId)
                    .col(WebhookEndpoints::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(string_len(WebhookAttempts::Id, 36).primary_key())
                    .col(string_len(WebhookAttempts::EndpointId, 36))
                    .col(string_len(WebhookAttempts::TenantId, 36))
                    .col(big_integer(WebhookAttempts::FirstSeq))
                    .col(big_integer(WebhookAttempts::LastSeq))
                    .col(big_integer(WebhookAttempts::AttemptedAt))
                    .col(integer_null(WebhookAttempts::Status))
                    .col(big_integer(WebhookAttempts::LatencyMs))
                    .col(string_len(WebhookAttempts::Outcome, 16))
                    .col(text(WebhookAttempts::Excerpt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookAttempts::Table, WebhookAttempts::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_endpoint")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::EndpointId)
                    .col(WebhookAttempts::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookAttempts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned())
            .await
    }
}
