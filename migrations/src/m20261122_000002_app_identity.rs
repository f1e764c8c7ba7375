//! The host application's identity (users, groups, their memberships), the
//! links from what a directory asserted to those rows, and the event outbox.
//!
//! - `users` are per tenant and unique by folded email, with the profile
//!   fields sync refreshes as columns (names, avatar, department, title, …).
//! - `user_links` ties one directory's user (its stable id in that directory:
//!   the mirror row id for SCIM, the provider's id for a pull) to one app user,
//!   with the last normalized snapshot and what that directory says of activity.
//! - `groups` follow directory groups one to one; `group_members` are app users.
//! - `events` is the outbox, `(tenant_id, seq)` gap-free per tenant: writers
//!   take the next numbers from `event_sequences` under its row lock just
//!   before they commit, so sequences become visible in order.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000002_app_identity"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Directories {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    EmailFolded,
    Status,
    DeactivatedBy,
    DeactivatedAt,
    Role,
    HasSignedIn,
    GivenName,
    FamilyName,
    DisplayName,
    AvatarUrl,
    Department,
    Title,
    EmployeeNumber,
    Manager,
    ProfileDirectoryId,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserLinks {
    Table,
    DirectoryId,
    SourceId,
    TenantId,
    AppUserId,
    ExternalId,
    DirectoryActive,
    Snapshot,
    SnapshotHash,
    RemovedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Groups {
    Table,
    Id,
    TenantId,
    DirectoryId,
    SourceId,
    Name,
    ExternalId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GroupMembers {
    Table,
    GroupId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    TenantId,
    Seq,
    Type,
    ResourceType,
    ResourceId,
    Data,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EventSequences {
    Table,
    TenantId,
    LastSeq,
}

fn id_col<T: IntoIden>(name: T) -> ColumnDef {
    string_len(name, 36)
}

fn index<T: IntoIden + Clone>(
    name: &str,
    table: T,
    cols: &[T],
    unique: bool,
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(col.clone());
    }
    if unique {
        index.unique();
    }
    index.to_owned()
}

fn cascade(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id_col(Users::Id).primary_key())
                    .col(id_col(Users::TenantId))
                    .col(string(Users::Email))
                    .col(string(Users::EmailFolded))
                    .col(string_len(Users::Status, 16))
                    .col(string_len_null(Users::DeactivatedBy, 16))
                    .col(big_integer_null(Users::DeactivatedAt))
                    .col(string(Users::Role))
                    .col(boolean(Users::HasSignedIn))
                    .col(string_null(Users::GivenName))
                    .col(string_null(Users::FamilyName))
                    .col(string_null(Users::DisplayName))
                    .col(string_null(Users::AvatarUrl))
                    .col(string_null(Users::Department))
                    .col(string_null(Users::Title))
                    .col(string_null(Users::EmployeeNumber))
                    .col(string_null(Users::Manager))
                    .col(string_len_null(Users::ProfileDirectoryId, 36))
                    .col(big_integer(Users::Version))
                    .col(big_integer(Users::CreatedAt))
                    .col(big_integer(Users::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Users::Table, Users::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "users_tenant_email",
                Users::Table,
                &[Users::TenantId, Users::EmailFolded],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserLinks::Table)
                    .col(id_col(UserLinks::DirectoryId))
                    .col(string(UserLinks::SourceId))
                    .col(id_col(UserLinks::TenantId))
                    .col(id_col(UserLinks::AppUserId))
                    .col(string_null(UserLinks::ExternalId))
                    .col(boolean(UserLinks::DirectoryActive))
                    .col(json_binary_null(UserLinks::Snapshot))
                    .col(string_len(UserLinks::SnapshotHash, 64))
                    .col(big_integer_null(UserLinks::RemovedAt))
                    .col(big_integer(UserLinks::CreatedAt))
                    .col(big_integer(UserLinks::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(UserLinks::DirectoryId)
                            .col(UserLinks::SourceId),
                    )
                    .foreign_key(&mut cascade(
                        (UserLinks::Table, UserLinks::DirectoryId),
                        (Directories::Table, Directories::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (UserLinks::Table, UserLinks::AppUserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "user_links_app_user",
                UserLinks::Table,
                &[UserLinks::AppUserId],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "user_links_external_id",
                UserLinks::Table,
                // External id first: with directory_id first, PostgreSQL's
                // planner (stale statistics during a bulk import) took this
                // index for `directory_id = $1 AND source_id IN (…)` and read
                // the whole directory instead of using the primary key.
                &[UserLinks::ExternalId, UserLinks::DirectoryId],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Groups::Table)
                    .col(id_col(Groups::Id).primary_key())
                    .col(id_col(Groups::TenantId))
                    .col(id_col(Groups::DirectoryId))
                    .col(string(Groups::SourceId))
                    .col(string(Groups::Name))
                    .col(string_null(Groups::ExternalId))
                    .col(big_integer(Groups::CreatedAt))
                    .col(big_integer(Groups::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Groups::Table, Groups::DirectoryId),
                        (Directories::Table, Directories::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "groups_directory_source",
                Groups::Table,
                &[Groups::DirectoryId, Groups::SourceId],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "groups_tenant",
                Groups::Table,
                &[Groups::TenantId, Groups::Id],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(GroupMembers::Table)
                    .col(id_col(GroupMembers::GroupId))
                    .col(id_col(GroupMembers::UserId))
                    .col(big_integer(GroupMembers::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(GroupMembers::GroupId)
                            .col(GroupMembers::UserId),
                    )
                    .foreign_key(&mut cascade(
                        (GroupMembers::Table, GroupMembers::GroupId),
                        (Groups::Table, Groups::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (GroupMembers::Table, GroupMembers::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "group_members_user",
                GroupMembers::Table,
                &[GroupMembers::UserId],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(id_col(Events::TenantId))
                    .col(big_integer(Events::Seq))
                    .col(string_len(Events::Type, 40))
                    .col(string_len(Events::ResourceType, 16))
                    .col(string(Events::ResourceId))
                    .col(json_binary(Events::Data))
                    .col(big_integer(Events::CreatedAt))
                    .primary_key(Index::create().col(Events::TenantId).col(Events::Seq))
                    .foreign_key(&mut cascade(
                        (Events::Table, Events::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventSequences::Table)
                    .col(id_col(EventSequences::TenantId).primary_key())
                    .col(big_integer(EventSequences::LastSeq))
                    .foreign_key(&mut cascade(
                        (EventSequences::Table, EventSequences::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EventSequences::Table.into_iden(),
            Events::Table.into_iden(),
            GroupMembers::Table.into_iden(),
            Groups::Table.into_iden(),
            UserLinks::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
