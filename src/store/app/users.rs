//! App users: the host application's users, one per person per tenant
//! (unique folded email). Read `FOR UPDATE` on PostgreSQL, so a sync and an
//! admin action on the same user serialize instead of losing an update.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tracing::instrument;

use super::{CHUNK, find_in};
use crate::store::entities::users;
use crate::store::{Result, StoreError};

pub use users::{CustomAttributes, Model as AppUser};

/// App users by id, locked for the rest of the transaction on PostgreSQL.
pub async fn users_by_id<C: ConnectionTrait>(conn: &C, ids: &[String]) -> Result<Vec<AppUser>> {
    find_in(
        conn,
        users::Entity::find().lock_exclusive(),
        users::Column::Id,
        ids,
    )
    .await
}

/// App users of a tenant by folded email, locked like `users_by_id`.
pub async fn users_by_email<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    emails: &[String],
) -> Result<Vec<AppUser>> {
    let select = users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant_id))
        .lock_exclusive();
    find_in(conn, select, users::Column::EmailFolded, emails).await
}

/// The ids of a tenant's app users by folded email, read without a lock:
/// a look (the import wizard's preview), not the start of a write.
pub async fn ids_by_email<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    emails: &[String],
) -> Result<Vec<(String, String)>> {
    let select = users::Entity::find().filter(users::Column::TenantId.eq(tenant_id));
    Ok(find_in(conn, select, users::Column::EmailFolded, emails)
        .await?
        .into_iter()
        .map(|u| (u.email_folded, u.id))
        .collect())
}

pub async fn user_by_email<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    email_folded: &str,
) -> Result<AppUser> {
    users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant_id))
        .filter(users::Column::EmailFolded.eq(email_folded))
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// A tenant's app users in id (creation) order.
pub async fn users_of_tenant<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
) -> Result<Vec<AppUser>> {
    Ok(users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant_id))
        .order_by_asc(users::Column::Id)
        .all(conn)
        .await?)
}

pub async fn insert_users<C: ConnectionTrait>(conn: &C, rows: Vec<AppUser>) -> Result<()> {
    let backend = conn.get_database_backend();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        // The custom attributes are written out from their map: bound as a
        // JSON tree they would be copied into one first.
        let chunk = rows.by_ref().take(CHUNK / 2).map(|row| {
            let text = row
                .custom_attributes
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok());
            (users::ActiveModel::from(row), text)
        });
        let statement = crate::store::rows::insert_with_text(
            backend,
            Some(users::Column::CustomAttributes),
            chunk,
        );
        conn.execute(&statement).await?;
    }
    Ok(())
}

/// Overwrite an app user whose row this transaction read (and locked).
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn update_user<C: ConnectionTrait>(conn: &C, user: &AppUser) -> Result<()> {
    let model: users::ActiveModel = user.clone().into();
    let model = model.reset_all();
    users::Entity::update(model).exec(conn).await?;
    Ok(())
}

/// Move these app users off their addresses for the rest of the statement
/// sequence (a placeholder no email can be: it has no `@`), so users who
/// exchange addresses in one transaction never meet the tenant's unique
/// email index half-way.
pub async fn park_emails<C: ConnectionTrait>(conn: &C, ids: &[String]) -> Result<()> {
    use sea_orm::sea_query::Expr;
    for id in ids {
        let parked = format!("moving:{id}");
        users::Entity::update_many()
            .col_expr(users::Column::Email, Expr::value(parked.clone()))
            .col_expr(users::Column::EmailFolded, Expr::value(parked))
            .filter(users::Column::Id.eq(id.as_str()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

pub async fn delete_user<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    users::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// The profiles this directory owns go to whichever directory writes the
/// user next (as when a directory unlinks a user). Nothing the host
/// application sees changes, so the users keep their `updated_at`.
pub async fn release_profiles<C: ConnectionTrait>(conn: &C, directory_id: &str) -> Result<u64> {
    use sea_orm::sea_query::Expr;
    let done = users::Entity::update_many()
        .col_expr(
            users::Column::ProfileDirectoryId,
            Expr::value(Option::<String>::None),
        )
        .filter(users::Column::ProfileDirectoryId.eq(directory_id))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
