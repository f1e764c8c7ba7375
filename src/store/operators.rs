//! Operator accounts and browser sessions (the dashboard's; the setup
//! portal's sessions share the table). Sessions are found by the hash of
//! their cookie, and only while unexpired.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tracing::instrument;

use super::entities::{operators, sessions};
use super::{Conn, Result, StoreError};

pub use operators::Model as Operator;
pub use sessions::Model as Session;

#[instrument(skip_all, fields(operator_id = %operator.id))]
pub async fn insert_operator<C: Conn>(conn: &C, operator: Operator) -> Result<Operator> {
    let model: operators::ActiveModel = operator.into();
    Ok(model.insert(conn).await?)
}

/// The operator with this folded email.
pub async fn operator_by_email<C: Conn>(conn: &C, email_folded: &str) -> Result<Operator> {
    operators::Entity::find()
        .filter(operators::Column::EmailFolded.eq(email_folded))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

pub async fn operator<C: Conn>(conn: &C, id: &str) -> Result<Operator> {
    operators::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Every operator, by email.
pub async fn operators<C: Conn>(conn: &C) -> Result<Vec<Operator>> {
    Ok(operators::Entity::find()
        .order_by_asc(operators::Column::EmailFolded)
        .all(conn)
        .await?)
}

/// Delete an operator (their sessions go with them); NotFound if none.
#[instrument(skip(conn))]
pub async fn delete_operator<C: Conn>(conn: &C, id: &str) -> Result<()> {
    sessions::Entity::delete_many()
        .filter(sessions::Column::OperatorId.eq(id))
        .exec(conn)
        .await?;
    let done = operators::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn set_last_sign_in<C: Conn>(conn: &C, id: &str, at: i64) -> Result<()> {
    operators::Entity::update_many()
        .col_expr(operators::Column::LastSignInAt, Expr::value(at))
        .filter(operators::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

#[instrument(skip_all, fields(kind = %session.kind))]
pub async fn insert_session<C: Conn>(conn: &C, session: Session) -> Result<Session> {
    let model: sessions::ActiveModel = session.into();
    Ok(model.insert(conn).await?)
}

/// The session whose cookie hashes to `id_hash`, if it has not expired.
pub async fn live_session<C: Conn>(conn: &C, id_hash: &str, now: i64) -> Result<Session> {
    sessions::Entity::find_by_id(id_hash.to_owned())
        .filter(sessions::Column::ExpiresAt.gt(now))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

pub async fn delete_session<C: Conn>(conn: &C, id_hash: &str) -> Result<()> {
    sessions::Entity::delete_by_id(id_hash.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Delete sessions that expired before `now`; how many went.
pub async fn delete_expired_sessions<C: Conn>(conn: &C, now: i64) -> Result<u64> {
    Ok(sessions::Entity::delete_many()
        .filter(sessions::Column::ExpiresAt.lte(now))
        .exec(conn)
        .await?
        .rows_affected)
}
