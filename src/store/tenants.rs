//! Tenants, directories and SCIM tokens.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use tracing::instrument;

use super::entities::{directories, scim_tokens, tenants};
use super::{Result, Store, StoreError};

pub use directories::Model as Directory;
pub use scim_tokens::Model as Token;
pub use tenants::Model as Tenant;

impl Store {
    #[instrument(skip(self))]
    pub async fn create_tenant(&self, id: &str, name: &str, now: i64) -> Result<Tenant> {
        let model = tenants::ActiveModel {
            id: Set(id.to_owned()),
            name: Set(name.to_owned()),
            created_at: Set(now),
        };
        Ok(model.insert(self.connection()).await?)
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Tenant> {
        tenants::Entity::find()
            .filter(tenants::Column::Name.eq(name))
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Every tenant, by name.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        Ok(tenants::Entity::find()
            .order_by_asc(tenants::Column::Name)
            .all(self.connection())
            .await?)
    }

    pub async fn tenant(&self, id: &str) -> Result<Tenant> {
        tenants::Entity::find_by_id(id.to_owned())
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound)
    }

    #[instrument(skip_all, fields(tenant_id = %directory.tenant_id, name = %directory.name))]
    pub async fn create_directory(&self, directory: Directory) -> Result<Directory> {
        let model: directories::ActiveModel = directory.into();
        Ok(model.insert(self.connection()).await?)
    }

    pub async fn directory(&self, id: &str) -> Result<Directory> {
        directories::Entity::find_by_id(id.to_owned())
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn directories_of(&self, tenant_id: &str) -> Result<Vec<Directory>> {
        Ok(directories::Entity::find()
            .filter(directories::Column::TenantId.eq(tenant_id))
            .order_by_asc(directories::Column::Name)
            .all(self.connection())
            .await?)
    }

    #[instrument(skip(self, secret_hash))]
    pub async fn create_token(
        &self,
        id: &str,
        directory_id: &str,
        label: Option<&str>,
        prefix: &str,
        secret_hash: &str,
        now: i64,
    ) -> Result<Token> {
        let model = scim_tokens::ActiveModel {
            id: Set(id.to_owned()),
            directory_id: Set(directory_id.to_owned()),
            label: Set(label.map(str::to_owned)),
            prefix: Set(prefix.to_owned()),
            secret_hash: Set(secret_hash.to_owned()),
            created_at: Set(now),
            last_used_at: Set(None),
            revoked_at: Set(None),
        };
        Ok(model.insert(self.connection()).await?)
    }

    /// The unrevoked token whose secret hashes to `secret_hash`.
    pub async fn active_token_by_hash(&self, secret_hash: &str) -> Result<Token> {
        scim_tokens::Entity::find()
            .filter(scim_tokens::Column::SecretHash.eq(secret_hash))
            .filter(scim_tokens::Column::RevokedAt.is_null())
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn tokens_of(&self, directory_id: &str) -> Result<Vec<Token>> {
        Ok(scim_tokens::Entity::find()
            .filter(scim_tokens::Column::DirectoryId.eq(directory_id))
            .order_by_asc(scim_tokens::Column::CreatedAt)
            .all(self.connection())
            .await?)
    }

    #[instrument(skip(self))]
    pub async fn revoke_token(
        &self,
        directory_id: &str,
        token_id: &str,
        now: i64,
    ) -> Result<Token> {
        let token = scim_tokens::Entity::find_by_id(token_id.to_owned())
            .filter(scim_tokens::Column::DirectoryId.eq(directory_id))
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound)?;
        if token.revoked_at.is_some() {
            return Ok(token);
        }
        let mut model: scim_tokens::ActiveModel = token.into();
        model.revoked_at = Set(Some(now));
        Ok(model.update(self.connection()).await?)
    }
}

/// A directory read inside a transaction (the engine reads its policy there,
/// so a policy change applies from the next write on).
pub async fn directory_in<C: sea_orm::ConnectionTrait>(conn: &C, id: &str) -> Result<Directory> {
    directories::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Delete a directory. The schema's foreign keys take what hangs off it:
/// its tokens, mirror, connection and runs, its links to app users, its app
/// groups and their members, the changes waiting in it.
#[instrument(skip(conn))]
pub async fn delete_directory<C: sea_orm::ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    let done = directories::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Store a directory's policy (JSON).
pub async fn set_policy<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: &str,
    policy: serde_json::Value,
) -> Result<()> {
    use sea_orm::sea_query::Expr;
    let result = directories::Entity::update_many()
        .col_expr(directories::Column::Policy, Expr::val(policy))
        .filter(directories::Column::Id.eq(id))
        .exec(conn)
        .await?;
    if result.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
