//! Keyset pages for the host API: users, groups and a group's members,
//! tenants and directories in id order (UUIDv7: creation order), a
//! directory's runs newest first. Each page is `key > after` (or `key <
//! before`; the other way round newest first) with `LIMIT`, never an
//! OFFSET scan, so a page deep in a tenant costs what the first does and a
//! concurrent insert never shifts one.

use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::Result;
use super::app::groups::AppGroup;
use super::app::users::AppUser;
use super::entities::{group_members, groups, user_links, users};

/// Where a page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Anchor {
    #[default]
    Start,
    /// Keys after this one.
    After(String),
    /// Keys before this one (the page before).
    Before(String),
}

/// One page of rows and whether more lie beyond each end of it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    /// More rows follow the last.
    pub more_after: bool,
    /// More rows precede the first.
    pub more_before: bool,
}

/// What the host application filters users by.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Linked (live) from this directory.
    pub directory_id: Option<String>,
    pub status: Option<String>,
    /// Folded.
    pub email: Option<String>,
    /// A member of this app group.
    pub group_id: Option<String>,
    pub department: Option<String>,
    /// Changed after this time (epoch milliseconds).
    pub updated_after: Option<i64>,
    /// A prefix of the folded email, or of the display, given or family
    /// name (case-insensitive).
    pub prefix: Option<String>,
}

/// `LIKE` pattern for a prefix, its wildcards escaped.
fn prefix_pattern(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Which way a list runs along its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Oldest first (ids are UUIDv7).
    Ascending,
    /// Newest first: a run history.
    Descending,
}

/// Apply a keyset window on `key`, oldest first, and fetch `limit + 1` rows
/// to know whether more follow.
pub(super) async fn window<C, E>(
    conn: &C,
    select: sea_orm::Select<E>,
    key: E::Column,
    from: &Anchor,
    limit: u64,
) -> Result<Page<E::Model>>
where
    C: ConnectionTrait,
    E: EntityTrait,
{
    window_along(conn, select, key, from, limit, Direction::Ascending).await
}

/// A keyset window newest first (keys are UUIDv7).
pub(super) async fn window_newest_first<C, E>(
    conn: &C,
    select: sea_orm::Select<E>,
    key: E::Column,
    from: &Anchor,
    limit: u64,
) -> Result<Page<E::Model>>
where
    C: ConnectionTrait,
    E: EntityTrait,
{
    window_along(conn, select, key, from, limit, Direction::Descending).await
}

async fn window_along<C, E>(
    conn: &C,
    select: sea_orm::Select<E>,
    key: E::Column,
    from: &Anchor,
    limit: u64,
    direction: Direction,
) -> Result<Page<E::Model>>
where
    C: ConnectionTrait,
    E: EntityTrait,
{
    use sea_orm::Order;
    // Forward is the list's own order; a page before a key reads backward
    // from it and is turned round.
    let (forward, backward) = match direction {
        Direction::Ascending => (Order::Asc, Order::Desc),
        Direction::Descending => (Order::Desc, Order::Asc),
    };
    let past = |k: &str| match direction {
        Direction::Ascending => key.gt(k),
        Direction::Descending => key.lt(k),
    };
    let short_of = |k: &str| match direction {
        Direction::Ascending => key.lt(k),
        Direction::Descending => key.gt(k),
    };
    let (rows, more, backwards) = match from {
        Anchor::Start | Anchor::After(_) => {
            let mut s = select.clone().order_by(key, forward);
            if let Anchor::After(k) = from {
                s = s.filter(past(k));
            }
            let mut rows = s.limit(limit + 1).all(conn).await?;
            let more = rows.len() as u64 > limit;
            rows.truncate(limit as usize);
            (rows, more, false)
        }
        Anchor::Before(k) => {
            let mut rows = select
                .clone()
                .filter(short_of(k))
                .order_by(key, backward)
                .limit(limit + 1)
                .all(conn)
                .await?;
            let more = rows.len() as u64 > limit;
            rows.truncate(limit as usize);
            rows.reverse();
            (rows, more, true)
        }
    };
    let (more_after, more_before) = match (backwards, from) {
        (false, Anchor::Start) => (more, false),
        // A page after a key has rows before it (that key, at least).
        (false, _) => (more, true),
        (true, _) => (true, more),
    };
    Ok(Page {
        rows,
        more_after,
        more_before,
    })
}

/// A page of a tenant's app users.
pub async fn users<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    filter: &UserFilter,
    from: &Anchor,
    limit: u64,
) -> Result<Page<AppUser>> {
    let mut select = users::Entity::find().filter(users::Column::TenantId.eq(tenant_id));
    if let Some(directory_id) = &filter.directory_id {
        select = select.filter(
            users::Column::Id.in_subquery(
                Query::select()
                    .column(user_links::Column::AppUserId)
                    .from(user_links::Entity)
                    .and_where(user_links::Column::DirectoryId.eq(directory_id.as_str()))
                    .and_where(user_links::Column::RemovedAt.is_null())
                    .to_owned(),
            ),
        );
    }
    if let Some(group_id) = &filter.group_id {
        select = select.filter(
            users::Column::Id.in_subquery(
                Query::select()
                    .column(group_members::Column::UserId)
                    .from(group_members::Entity)
                    .and_where(group_members::Column::GroupId.eq(group_id.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(status) = &filter.status {
        select = select.filter(users::Column::Status.eq(status.as_str()));
    }
    if let Some(email) = &filter.email {
        select = select.filter(users::Column::EmailFolded.eq(email.as_str()));
    }
    if let Some(department) = &filter.department {
        select = select.filter(users::Column::Department.eq(department.as_str()));
    }
    if let Some(after) = filter.updated_after {
        select = select.filter(users::Column::UpdatedAt.gt(after));
    }
    if let Some(prefix) = &filter.prefix {
        let pattern = prefix_pattern(prefix);
        let like = |column: users::Column| {
            Expr::expr(Func::lower(Expr::col(column)))
                .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
        };
        select = select.filter(
            Condition::any()
                .add(like(users::Column::EmailFolded))
                .add(like(users::Column::DisplayName))
                .add(like(users::Column::GivenName))
                .add(like(users::Column::FamilyName)),
        );
    }
    window(conn, select, users::Column::Id, from, limit).await
}

/// A page of a tenant's app groups, optionally of one directory or with a
/// name prefix.
pub async fn groups<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    directory_id: Option<&str>,
    name_prefix: Option<&str>,
    from: &Anchor,
    limit: u64,
) -> Result<Page<AppGroup>> {
    let mut select = groups::Entity::find().filter(groups::Column::TenantId.eq(tenant_id));
    if let Some(directory_id) = directory_id {
        select = select.filter(groups::Column::DirectoryId.eq(directory_id));
    }
    if let Some(prefix) = name_prefix {
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(groups::Column::Name)))
                .like(sea_orm::sea_query::LikeExpr::new(prefix_pattern(prefix)).escape('\\')),
        );
    }
    window(conn, select, groups::Column::Id, from, limit).await
}

/// A page of one group's members (app users), in user id order.
pub async fn members<C: ConnectionTrait>(
    conn: &C,
    group_id: &str,
    from: &Anchor,
    limit: u64,
) -> Result<Page<AppUser>> {
    let select = users::Entity::find().filter(
        users::Column::Id.in_subquery(
            Query::select()
                .column(group_members::Column::UserId)
                .from(group_members::Entity)
                .and_where(group_members::Column::GroupId.eq(group_id))
                .to_owned(),
        ),
    );
    window(conn, select, users::Column::Id, from, limit).await
}

/// A page of the app users a run the guard stopped would have deactivated,
/// in user id order, each with why (`missing` or `directory`).
pub async fn held_back<C: ConnectionTrait>(
    conn: &C,
    run_id: &str,
    from: &Anchor,
    limit: u64,
) -> Result<Page<(AppUser, String)>> {
    use super::entities::run_deactivations as held;
    let select = users::Entity::find().filter(
        users::Column::Id.in_subquery(
            Query::select()
                .column(held::Column::UserId)
                .from(held::Entity)
                .and_where(held::Column::RunId.eq(run_id))
                .to_owned(),
        ),
    );
    let page = window(conn, select, users::Column::Id, from, limit).await?;
    let ids: Vec<&str> = page.rows.iter().map(|u| u.id.as_str()).collect();
    let reasons: std::collections::HashMap<String, String> = held::Entity::find()
        .filter(held::Column::RunId.eq(run_id))
        .filter(held::Column::UserId.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|h| (h.user_id, h.reason))
        .collect();
    Ok(Page {
        rows: page
            .rows
            .into_iter()
            .map(|u| {
                let reason = reasons.get(&u.id).cloned().unwrap_or_default();
                (u, reason)
            })
            .collect(),
        more_after: page.more_after,
        more_before: page.more_before,
    })
}

/// An app user of a tenant by id.
pub async fn user<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    id: &str,
) -> Result<Option<AppUser>> {
    Ok(users::Entity::find_by_id(id.to_owned())
        .filter(users::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?)
}

/// An app group of a tenant by id.
pub async fn group<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    id: &str,
) -> Result<Option<AppGroup>> {
    Ok(groups::Entity::find_by_id(id.to_owned())
        .filter(groups::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?)
}

/// The app groups a user is a member of.
pub async fn groups_of_user<C: ConnectionTrait>(conn: &C, user_id: &str) -> Result<Vec<AppGroup>> {
    Ok(groups::Entity::find()
        .filter(
            groups::Column::Id.in_subquery(
                Query::select()
                    .column(group_members::Column::GroupId)
                    .from(group_members::Entity)
                    .and_where(group_members::Column::UserId.eq(user_id))
                    .to_owned(),
            ),
        )
        .order_by_asc(groups::Column::Id)
        .all(conn)
        .await?)
}

/// A page of every tenant (the operator's view).
pub async fn tenants<C: ConnectionTrait>(
    conn: &C,
    from: &Anchor,
    limit: u64,
) -> Result<Page<super::entities::tenants::Model>> {
    let select = super::entities::tenants::Entity::find();
    window(
        conn,
        select,
        super::entities::tenants::Column::Id,
        from,
        limit,
    )
    .await
}

/// A page of a tenant's directories, in id (creation) order.
pub async fn directories<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    from: &Anchor,
    limit: u64,
) -> Result<Page<super::tenants::Directory>> {
    use super::entities::directories;
    let select = directories::Entity::find().filter(directories::Column::TenantId.eq(tenant_id));
    window(conn, select, directories::Column::Id, from, limit).await
}

/// A page of a directory's runs, newest first.
pub async fn runs<C: ConnectionTrait>(
    conn: &C,
    directory_id: &str,
    from: &Anchor,
    limit: u64,
) -> Result<Page<super::pull::Run>> {
    use super::entities::sync_runs;
    let select = sync_runs::Entity::find().filter(sync_runs::Column::DirectoryId.eq(directory_id));
    window_along(
        conn,
        select,
        sync_runs::Column::Id,
        from,
        limit,
        Direction::Descending,
    )
    .await
}
