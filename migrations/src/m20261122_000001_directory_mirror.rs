//! Tenants, directories, SCIM tokens and the directory mirror (users, groups,
//! memberships as rows). Ids are UUID text; times are milliseconds since the
//! epoch (BIGINT) so both backends compare and sort them the same way.
//! A membership keeps the `display` its client sent (RFC 7643 §2.4: immutable).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000001_directory_mirror"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Directories {
    Table,
    Id,
    TenantId,
    Name,
    Kind,
    Vendor,
    Policy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ScimTokens {
    Table,
    Id,
    DirectoryId,
    Label,
    Prefix,
    SecretHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum DirectoryUsers {
    Table,
    Id,
    DirectoryId,
    UserName,
    UserNameFolded,
    ExternalId,
    DisplayName,
    PrimaryEmail,
    Active,
    Data,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DirectoryGroups {
    Table,
    Id,
    DirectoryId,
    DisplayName,
    DisplayNameFolded,
    ExternalId,
    Data,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DirectoryMemberships {
    Table,
    DirectoryId,
    GroupId,
    MemberId,
    MemberType,
    Display,
    CreatedAt,
}

fn id_col<T: IntoIden>(name: T) -> ColumnDef {
    string_len(name, 36)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(id_col(Tenants::Id).primary_key())
                    .col(string_uniq(Tenants::Name))
                    .col(big_integer(Tenants::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Directories::Table)
                    .col(id_col(Directories::Id).primary_key())
                    .col(id_col(Directories::TenantId))
                    .col(string(Directories::Name))
                    .col(string(Directories::Kind))
                    .col(string(Directories::Vendor))
                    .col(json_binary(Directories::Policy))
                    .col(big_integer(Directories::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Directories::Table, Directories::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("directories_tenant_name")
                    .table(Directories::Table)
                    .col(Directories::TenantId)
                    .col(Directories::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ScimTokens::Table)
                    .col(id_col(ScimTokens::Id).primary_key())
                    .col(id_col(ScimTokens::DirectoryId))
                    .col(string_null(ScimTokens::Label))
                    .col(string(ScimTokens::Prefix))
                    .col(string_uniq(ScimTokens::SecretHash))
                    .col(big_integer(ScimTokens::CreatedAt))
                    .col(big_integer_null(ScimTokens::LastUsedAt))
                    .col(big_integer_null(ScimTokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ScimTokens::Table, ScimTokens::DirectoryId)
                            .to(Directories::Table, Directories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scim_tokens_directory")
                    .table(ScimTokens::Table)
                    .col(ScimTokens::DirectoryId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DirectoryUsers::Table)
                    .col(id_col(DirectoryUsers::Id).primary_key())
                    .col(id_col(DirectoryUsers::DirectoryId))
                    .col(string(DirectoryUsers::UserName))
                    .col(string(DirectoryUsers::UserNameFolded))
                    .col(string_null(DirectoryUsers::ExternalId))
                    .col(string_null(DirectoryUsers::DisplayName))
                    .col(string_null(DirectoryUsers::PrimaryEmail))
                    .col(boolean(DirectoryUsers::Active))
                    .col(json_binary(DirectoryUsers::Data))
                    .col(big_integer(DirectoryUsers::Version))
                    .col(big_integer(DirectoryUsers::CreatedAt))
                    .col(big_integer(DirectoryUsers::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DirectoryUsers::Table, DirectoryUsers::DirectoryId)
                            .to(Directories::Table, Directories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "directory_users_user_name",
                vec![DirectoryUsers::DirectoryId, DirectoryUsers::UserNameFolded],
                true,
            ),
            (
                "directory_users_external_id",
                vec![DirectoryUsers::DirectoryId, DirectoryUsers::ExternalId],
                false,
            ),
            (
                "directory_users_primary_email",
                vec![DirectoryUsers::DirectoryId, DirectoryUsers::PrimaryEmail],
                false,
            ),
            (
                "directory_users_directory_id",
                vec![DirectoryUsers::DirectoryId, DirectoryUsers::Id],
                true,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(DirectoryUsers::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(DirectoryGroups::Table)
                    .col(id_col(DirectoryGroups::Id).primary_key())
                    .col(id_col(DirectoryGroups::DirectoryId))
                    .col(string(DirectoryGroups::DisplayName))
                    .col(string(DirectoryGroups::DisplayNameFolded))
                    .col(string_null(DirectoryGroups::ExternalId))
                    .col(json_binary(DirectoryGroups::Data))
                    .col(big_integer(DirectoryGroups::Version))
                    .col(big_integer(DirectoryGroups::CreatedAt))
                    .col(big_integer(DirectoryGroups::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DirectoryGroups::Table, DirectoryGroups::DirectoryId)
                            .to(Directories::Table, Directories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "directory_groups_display_name",
                vec![
                    DirectoryGroups::DirectoryId,
                    DirectoryGroups::DisplayNameFolded,
                ],
                true,
            ),
            (
                "directory_groups_external_id",
                vec![DirectoryGroups::DirectoryId, DirectoryGroups::ExternalId],
                false,
            ),
            (
                "directory_groups_directory_id",
                vec![DirectoryGroups::DirectoryId, DirectoryGroups::Id],
                true,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(DirectoryGroups::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(DirectoryMemberships::Table)
                    .col(id_col(DirectoryMemberships::DirectoryId))
                    .col(id_col(DirectoryMemberships::GroupId))
                    .col(id_col(DirectoryMemberships::MemberId))
                    .col(string_len(DirectoryMemberships::MemberType, 8))
                    .col(string_null(DirectoryMemberships::Display))
                    .col(big_integer(DirectoryMemberships::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(DirectoryMemberships::GroupId)
                            .col(DirectoryMemberships::MemberId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DirectoryMemberships::Table, DirectoryMemberships::GroupId)
                            .to(DirectoryGroups::Table, DirectoryGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("directory_memberships_member")
                    .table(DirectoryMemberships::Table)
                    .col(DirectoryMemberships::MemberId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DirectoryMemberships::Table.into_iden(),
            DirectoryGroups::Table.into_iden(),
            DirectoryUsers::Table.into_iden(),
            ScimTokens::Table.into_iden(),
            Directories::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
