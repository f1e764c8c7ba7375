//! Directory users (the mirror of what a directory asserted) and the listing
//! machinery shared with groups.

use sea_orm::sea_query::{Expr, ExprTrait, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};
use tracing::instrument;

use super::entities::{directory_groups, directory_memberships, directory_users};
use super::filter::{Table, Translator};
use super::{Result, StoreError};
use crate::domain::filter::{AttrRef, Filter};

pub use directory_users::Model as User;

/// What to list: a filter, an order and a page.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Filter,
    pub sort: Option<SortKey>,
    pub page: Page,
}

#[derive(Debug, Clone)]
pub struct SortKey {
    pub attr: AttrRef,
    /// Where in `attr.path` a multi-valued attribute's element index goes.
    pub element_at: Option<usize>,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    /// `startIndex`/`count` paging (RFC 7644 §3.4.2.4), zero-based offset.
    Offset { offset: u64, limit: u64 },
    /// Keyset paging in id order (RFC 9865 cursors): rows after this id.
    After { after: Option<String>, limit: u64 },
}

impl Page {
    pub fn limit(&self) -> u64 {
        match self {
            Page::Offset { limit, .. } | Page::After { limit, .. } => *limit,
        }
    }
}

#[derive(Debug)]
pub struct Listing<M> {
    pub total: u64,
    pub items: Vec<M>,
}

/// Shared listing over users or groups: scope to the directory, apply the filter
/// as SQL, count, order (id breaks ties so pages are stable) and page.
pub(super) async fn list<E, C>(
    conn: &C,
    table: &Table,
    select: Select<E>,
    id: E::Column,
    query: &ListQuery,
) -> Result<Listing<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
    C: ConnectionTrait,
{
    let translator = Translator::new(conn.get_database_backend(), table);
    let select = select.filter(translator.condition(&query.filter));
    let limit = query.page.limit();
    if limit == 0 {
        let total = select.count(conn).await?;
        return Ok(Listing {
            total,
            items: Vec::new(),
        });
    }
    let counter = select.clone();
    let mut select = select;
    if let Some(sort) = &query.sort {
        let key = translator.sort_key(&sort.attr, sort.element_at);
        let order = if sort.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        // Absent values sort last in either direction (RFC 7644 §3.4.2.3 leaves
        // it to the provider; last keeps complete resources first, O14).
        select = select
            .order_by(key.clone().is_null(), Order::Asc)
            .order_by(key, order);
    }
    select = select.order_by(id, Order::Asc);
    let select = match &query.page {
        Page::Offset { offset, limit } => select.offset(*offset).limit(*limit),
        Page::After { after, limit } => {
            let select = match after {
                Some(after) => select.filter(id.gt(after.clone())),
                None => select,
            };
            select.limit(*limit)
        }
    };
    let items = select.all(conn).await?;
    // A first page that is not full already says how many there are; count
    // only when it cannot (the common `userName eq` lookup needs one query).
    let total = match &query.page {
        Page::Offset { offset: 0, limit } | Page::After { after: None, limit }
            if (items.len() as u64) < *limit =>
        {
            items.len() as u64
        }
        Page::Offset { offset, limit } if !items.is_empty() && (items.len() as u64) < *limit => {
            offset + items.len() as u64
        }
        _ => counter.count(conn).await?,
    };
    Ok(Listing { total, items })
}

#[instrument(skip_all, fields(directory_id))]
pub async fn list_users<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    query: &ListQuery,
) -> Result<Listing<User>> {
    let select = directory_users::Entity::find()
        .filter(directory_users::Column::DirectoryId.eq(directory_id));
    list(
        conn,
        &super::filter::USERS,
        select,
        directory_users::Column::Id,
        query,
    )
    .await
}

pub async fn find_user<C: ConnectionTrait>(conn: &C, directory_id: &str, id: &str) -> Result<User> {
    directory_users::Entity::find_by_id(id.to_owned())
        .filter(directory_users::Column::DirectoryId.eq(directory_id))
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

#[instrument(skip_all, fields(directory_id = %user.directory_id, user_id = %user.id))]
pub async fn insert_user<C: ConnectionTrait>(conn: &C, user: User) -> Result<User> {
    let model: directory_users::ActiveModel = user.into();
    Ok(model.insert(conn).await?)
}

/// Write `user` if the stored row still has `expected_version`; the row's
/// version must already be bumped in `user`. `VersionMismatch` means a
/// concurrent writer won and the caller should re-read.
#[instrument(skip_all, fields(directory_id = %user.directory_id, user_id = %user.id))]
pub async fn update_user<C: ConnectionTrait>(
    conn: &C,
    user: &User,
    expected_version: i64,
) -> Result<()> {
    let result = directory_users::Entity::update_many()
        .col_expr(
            directory_users::Column::UserName,
            Expr::val(user.user_name.clone()),
        )
        .col_expr(
            directory_users::Column::UserNameFolded,
            Expr::val(user.user_name_folded.clone()),
        )
        .col_expr(
            directory_users::Column::ExternalId,
            Expr::val(user.external_id.clone()),
        )
        .col_expr(
            directory_users::Column::DisplayName,
            Expr::val(user.display_name.clone()),
        )
        .col_expr(
            directory_users::Column::PrimaryEmail,
            Expr::val(user.primary_email.clone()),
        )
        .col_expr(directory_users::Column::Active, Expr::val(user.active))
        .col_expr(directory_users::Column::Data, Expr::val(user.data.clone()))
        .col_expr(directory_users::Column::Version, Expr::val(user.version))
        .col_expr(
            directory_users::Column::UpdatedAt,
            Expr::val(user.updated_at),
        )
        .filter(directory_users::Column::Id.eq(user.id.clone()))
        .filter(directory_users::Column::DirectoryId.eq(user.directory_id.clone()))
        .filter(directory_users::Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    if result.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::VersionMismatch)
    }
}

/// Delete a user and its memberships; groups that lost it get a new version.
#[instrument(skip_all, fields(directory_id, user_id = id))]
pub async fn delete_user<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    id: &str,
    now: i64,
) -> Result<()> {
    let deleted = directory_users::Entity::delete_many()
        .filter(directory_users::Column::Id.eq(id))
        .filter(directory_users::Column::DirectoryId.eq(directory_id))
        .exec(conn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    detach_member(conn, directory_id, id, now).await
}

/// Remove `member_id` from every group of the directory, bumping their versions.
pub(super) async fn detach_member<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    member_id: &str,
    now: i64,
) -> Result<()> {
    let groups: Vec<String> = directory_memberships::Entity::find()
        .select_only()
        .column(directory_memberships::Column::GroupId)
        .filter(directory_memberships::Column::DirectoryId.eq(directory_id))
        .filter(directory_memberships::Column::MemberId.eq(member_id))
        .into_tuple()
        .all(conn)
        .await?;
    if groups.is_empty() {
        return Ok(());
    }
    directory_memberships::Entity::delete_many()
        .filter(directory_memberships::Column::DirectoryId.eq(directory_id))
        .filter(directory_memberships::Column::MemberId.eq(member_id))
        .exec(conn)
        .await?;
    for chunk in groups.chunks(500) {
        directory_groups::Entity::update_many()
            .col_expr(
                directory_groups::Column::Version,
                Expr::col(directory_groups::Column::Version).add(1),
            )
            .col_expr(directory_groups::Column::UpdatedAt, Expr::val(now))
            .filter(directory_groups::Column::Id.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// One group a user belongs to, for the User `groups` attribute.
#[derive(Debug, Clone, FromQueryResult)]
pub struct GroupOfUser {
    pub member_id: String,
    pub group_id: String,
    pub display_name: String,
}

/// The direct groups of each of `user_ids`, in one query.
pub async fn groups_of_users<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    user_ids: &[String],
) -> Result<Vec<GroupOfUser>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for chunk in user_ids.chunks(500) {
        let rows = directory_memberships::Entity::find()
            .select_only()
            .column(directory_memberships::Column::MemberId)
            .column(directory_memberships::Column::GroupId)
            .column_as(directory_groups::Column::DisplayName, "display_name")
            .join(
                sea_orm::JoinType::InnerJoin,
                directory_memberships::Entity::belongs_to(directory_groups::Entity)
                    .from(directory_memberships::Column::GroupId)
                    .to(directory_groups::Column::Id)
                    .into(),
            )
            .filter(directory_memberships::Column::DirectoryId.eq(directory_id))
            .filter(directory_memberships::Column::MemberId.is_in(chunk.iter().cloned()))
            .order_by_asc(directory_groups::Column::DisplayNameFolded)
            .into_model::<GroupOfUser>()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}
