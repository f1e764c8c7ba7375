//! Listing the mirror: a SCIM filter, order and page over directory users or
//! groups, as SQL (`filter`), scoped to one directory. Shared by `users` and
//! `groups`.

use sea_orm::sea_query::{ExprTrait, Order};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};

use super::filter::{Table, Translator};
use crate::domain::filter::{AttrRef, Filter};
use crate::store::Result;

/// What to list: a filter, an order and a page.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Filter,
    pub sort: Option<SortKey>,
    pub page: Window,
    pub tally: Tally,
}

/// Whether a listing counts every match or reads only its window (a page
/// read a chunk at a time counts once, with its first chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Count,
    Skip,
}

#[derive(Debug, Clone)]
pub struct SortKey {
    pub attr: AttrRef,
    /// Where in `attr.path` a multi-valued attribute's element index goes.
    pub element_at: Option<usize>,
    pub descending: bool,
}

/// Which rows of the ordered listing: an offset or a keyset, and how many.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// `startIndex`/`count` paging (RFC 7644 §3.4.2.4), zero-based offset.
    Offset { offset: u64, limit: u64 },
    /// Keyset paging in id order (RFC 9865 cursors): rows after this id.
    After { after: Option<String>, limit: u64 },
}

impl Window {
    pub fn limit(&self) -> u64 {
        match self {
            Window::Offset { limit, .. } | Window::After { limit, .. } => *limit,
        }
    }
}

/// The rows of one window and how many rows the filter matched in all (0
/// when the query said [`Tally::Skip`]).
#[derive(Debug)]
pub struct Matches<M> {
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
) -> Result<Matches<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Send + Sync,
    C: ConnectionTrait,
{
    let translator = Translator::new(conn.get_database_backend(), table);
    let select = select.filter(translator.condition(&query.filter));
    let limit = query.page.limit();
    if limit == 0 && query.tally == Tally::Skip {
        return Ok(Matches {
            total: 0,
            items: Vec::new(),
        });
    }
    if limit == 0 {
        let total = select.count(conn).await?;
        return Ok(Matches {
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
        Window::Offset { offset, limit } => select.offset(*offset).limit(*limit),
        Window::After { after, limit } => {
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
        _ if query.tally == Tally::Skip => 0,
        Window::Offset { offset: 0, limit } | Window::After { after: None, limit }
            if (items.len() as u64) < *limit =>
        {
            items.len() as u64
        }
        Window::Offset { offset, limit } if !items.is_empty() && (items.len() as u64) < *limit => {
            offset + items.len() as u64
        }
        _ => counter.count(conn).await?,
    };
    Ok(Matches { total, items })
}
