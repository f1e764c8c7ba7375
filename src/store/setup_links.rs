//! Setup links of the customer's setup portal: found by the hash of their
//! secret; redeemed by one conditional update, so a link opens at most one
//! session however many browsers race for it.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tracing::instrument;

use super::entities::setup_links;
use super::{Conn, Result, StoreError};

pub use setup_links::Model as SetupLink;

#[instrument(skip_all, fields(tenant_id = %link.tenant_id))]
pub async fn insert<C: Conn>(conn: &C, link: SetupLink) -> Result<SetupLink> {
    let model: setup_links::ActiveModel = link.into();
    Ok(model.insert(conn).await?)
}

/// A tenant's links, newest first.
pub async fn of_tenant<C: Conn>(conn: &C, tenant_id: &str) -> Result<Vec<SetupLink>> {
    Ok(setup_links::Entity::find()
        .filter(setup_links::Column::TenantId.eq(tenant_id))
        .order_by_desc(setup_links::Column::Id)
        .all(conn)
        .await?)
}

/// The tenant's link with this id.
pub async fn in_tenant<C: Conn>(conn: &C, tenant_id: &str, id: &str) -> Result<SetupLink> {
    setup_links::Entity::find_by_id(id.to_owned())
        .filter(setup_links::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// The link whose secret hashes to `secret_hash`.
pub async fn by_hash<C: Conn>(conn: &C, secret_hash: &str) -> Result<SetupLink> {
    setup_links::Entity::find()
        .filter(setup_links::Column::SecretHash.eq(secret_hash))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// The link that opened the session whose cookie hashes to `session_hash`.
pub async fn by_session<C: Conn>(conn: &C, session_hash: &str) -> Result<SetupLink> {
    setup_links::Entity::find()
        .filter(setup_links::Column::SessionHash.eq(session_hash))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Mark the link used by the session `session_hash`, if it is still
/// unused, unrevoked and unexpired at `now`; whether it was.
#[instrument(skip(conn, session_hash))]
pub async fn mark_used<C: Conn>(conn: &C, id: &str, session_hash: &str, now: i64) -> Result<bool> {
    let done = setup_links::Entity::update_many()
        .col_expr(setup_links::Column::UsedAt, Expr::value(now))
        .col_expr(setup_links::Column::SessionHash, Expr::value(session_hash))
        .filter(setup_links::Column::Id.eq(id))
        .filter(setup_links::Column::UsedAt.is_null())
        .filter(setup_links::Column::RevokedAt.is_null())
        .filter(setup_links::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Revoke the tenant's link (a revoked one stays revoked); NotFound if
/// the tenant has no such link.
#[instrument(skip(conn))]
pub async fn revoke<C: Conn>(conn: &C, tenant_id: &str, id: &str, now: i64) -> Result<SetupLink> {
    setup_links::Entity::update_many()
        .col_expr(setup_links::Column::RevokedAt, Expr::value(now))
        .filter(setup_links::Column::Id.eq(id))
        .filter(setup_links::Column::TenantId.eq(tenant_id))
        .filter(setup_links::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    in_tenant(conn, tenant_id, id).await
}

/// Set a link's expiry (tests make a link expire without waiting).
pub async fn set_expires_at<C: Conn>(conn: &C, id: &str, at: i64) -> Result<()> {
    setup_links::Entity::update_many()
        .col_expr(setup_links::Column::ExpiresAt, Expr::value(at))
        .filter(setup_links::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}
