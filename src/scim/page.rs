//! List and search responses (RFC 7644 §3.4.2, §3.4.3) bounded by bytes as
//! well as by `count`: the window's rows are read a chunk at a time, rendered
//! one by one and streamed as they are made, and the page ends where the next
//! resource would pass the byte budget (`--max-page-bytes`), with
//! `itemsPerPage` and `nextCursor` saying where it ended. The server holds one
//! chunk of rows, never the page. No `sea_orm`: rows come through the
//! resource's [`Endpoint`].

use std::collections::VecDeque;
use std::marker::PhantomData;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;
use serde_json::Value;
use tracing::instrument;

use super::ScimState;
use super::auth::Caller;
use super::body::ScimBody;
use super::endpoint::{Endpoint, represent};
use super::error::ScimError;
use super::list::{self, ListParams, Pagination, QueryPlan};
use super::projection::Projection;
use crate::store::mirror::list::{Tally, Window};

/// Rows read by a page's first query: few enough that resources at the
/// largest size (`schema::MAX_RESOURCE_BYTES`) make half a megabyte.
const FIRST_CHUNK: u64 = 8;

/// About how many bytes of resources each later query reads: the rows per
/// query follow the sizes seen so far (a page of small users takes a few
/// queries, one of the largest eight rows at a time).
const CHUNK_BYTES: u64 = 512 * 1024;

/// The most rows one query reads.
const MAX_CHUNK: u64 = 256;

/// Streamed bytes are handed to the connection in pieces of about this size.
const PIECE_BYTES: usize = 64 * 1024;

/// One page of a listing being answered.
pub struct Pager<E: Endpoint> {
    state: web::Data<ScimState>,
    caller: Caller,
    plan: QueryPlan,
    projection: Projection,
    budget: u64,
    /// Whether the page answers its first resource whatever its size (a
    /// page of its own does, so a client always makes progress).
    first_always: bool,
    /// Rows of the window not read yet (a cursor page's look-ahead included).
    unread: u64,
    /// Rows read so far, and the last one's id: where the next chunk starts.
    read: u64,
    last_read: Option<String>,
    exhausted: bool,
    /// Rendered resources read but not answered yet, with their ids.
    pending: VecDeque<(String, Value)>,
    answered: u64,
    bytes: u64,
    last_answered: Option<String>,
    /// The ListResponse's tail is written (or the stream failed): nothing follows.
    finished: bool,
    _endpoint: PhantomData<E>,
}

impl<E: Endpoint> Pager<E> {
    /// Plan the page and read its first chunk; returns the pager and how many
    /// resources the filter matches in all (`totalResults`). Errors here are
    /// the client's answer; after this only the database can fail.
    async fn open(
        state: web::Data<ScimState>,
        caller: Caller,
        params: &ListParams,
        plan: QueryPlan,
        budget: u64,
        first_always: bool,
    ) -> Result<(Self, u64), ScimError> {
        let projection = Projection::parse(
            E::TYPE,
            params.attributes.as_deref(),
            params.excluded_attributes.as_deref(),
        )?;
        let unread = plan.query.page.limit();
        let mut pager = Pager {
            state,
            caller,
            plan,
            projection,
            budget,
            first_always,
            unread,
            read: 0,
            last_read: None,
            exhausted: false,
            pending: VecDeque::new(),
            answered: 0,
            bytes: 0,
            last_answered: None,
            finished: false,
            _endpoint: PhantomData,
        };
        let total = pager.read_chunk(FIRST_CHUNK, Tally::Count).await?;
        Ok((pager, total))
    }

    /// Read and render up to `at_most` more rows of the window.
    async fn read_chunk(&mut self, at_most: u64, tally: Tally) -> Result<u64, ScimError> {
        let n = at_most.min(self.unread);
        let page = match (&self.plan.query.page, &self.last_read) {
            (Window::Offset { offset, .. }, _) if self.read == 0 => Window::Offset {
                offset: *offset,
                limit: n,
            },
            (Window::After { after, .. }, _) if self.read == 0 => Window::After {
                after: after.clone(),
                limit: n,
            },
            // Unsorted listings are in id order: the rest of the window is
            // what follows the last id read, whichever way the page began.
            (_, Some(last)) if self.plan.query.sort.is_none() => Window::After {
                after: Some(last.clone()),
                limit: n,
            },
            // Sorted listings page by offset (`list::plan` never sorts a
            // keyset window).
            (Window::Offset { offset, .. }, _) => Window::Offset {
                offset: offset + self.read,
                limit: n,
            },
            (Window::After { .. }, _) => Window::Offset {
                offset: self.read,
                limit: n,
            },
        };
        let mut query = self.plan.query.clone();
        query.page = page;
        query.tally = tally;
        let conn = self.state.store.connection();
        let matches = E::list(conn, &self.caller.directory_id, &query).await?;
        let got = matches.items.len() as u64;
        self.exhausted = got < n || n == 0;
        self.unread -= got.min(self.unread);
        self.read += got;
        if let Some(last) = matches.items.last() {
            self.last_read = Some(E::id(last).to_owned());
        }
        let rendered = represent::<E>(
            &self.state,
            &self.caller,
            &matches.items,
            &self.projection,
            false,
        )
        .await?;
        let ids = matches.items.iter().map(|row| E::id(row).to_owned());
        self.pending.extend(ids.zip(rendered));
        Ok(matches.total)
    }

    /// The next resource of the page, serialised; `None` when the page is
    /// complete: `count` reached, the window read, or the next resource would
    /// pass the byte budget (a page always answers at least one, so a client
    /// makes progress whatever the sizes).
    async fn next(&mut self) -> Result<Option<Vec<u8>>, ScimError> {
        if self.answered >= self.plan.count() {
            return Ok(None);
        }
        if self.pending.is_empty() && !self.exhausted {
            let seen = self.bytes / self.answered.max(1);
            let rows = (CHUNK_BYTES / seen.max(1)).clamp(1, MAX_CHUNK);
            self.read_chunk(rows, Tally::Skip).await?;
        }
        let Some((id, resource)) = self.pending.pop_front() else {
            return Ok(None);
        };
        let text = resource.to_string().into_bytes();
        let size = text.len() as u64;
        let first = self.answered == 0 && self.first_always;
        if !first && self.bytes + size > self.budget {
            self.pending.push_front((id, resource));
            return Ok(None);
        }
        self.answered += 1;
        self.bytes += size;
        self.last_answered = Some(id);
        Ok(Some(text))
    }

    /// After the last resource: the cursor to the next page, if one follows
    /// (cursor paging only; an index page's next `startIndex` is this one's
    /// plus `itemsPerPage`).
    async fn next_cursor(&mut self) -> Result<Option<String>, ScimError> {
        if self.plan.paging != Pagination::Cursor {
            return Ok(None);
        }
        if self.pending.is_empty() && !self.exhausted {
            self.read_chunk(1, Tally::Skip).await?;
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        Ok(self
            .plan
            .cursor_after(self.answered, self.last_answered.as_deref()))
    }

    /// Bytes of the page to send next: the resources (comma-separated) until
    /// a piece is full or the page ends, then the ListResponse's tail.
    async fn piece(&mut self) -> Result<Option<Bytes>, ScimError> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::new();
        while out.len() < PIECE_BYTES {
            let first = self.answered == 0;
            match self.next().await? {
                Some(text) => {
                    if !first {
                        out.push(b',');
                    }
                    out.extend_from_slice(&text);
                }
                None => {
                    let next = self.next_cursor().await?;
                    out.extend_from_slice(
                        list::list_tail(self.answered, next.as_deref()).as_bytes(),
                    );
                    self.finished = true;
                    break;
                }
            }
        }
        Ok(Some(Bytes::from(out)))
    }

    /// The page's resources, whole (the root `/.search`, which joins two
    /// listings into one page): at most the budget's worth.
    async fn collect(mut self) -> Result<Vec<Value>, ScimError> {
        let mut out = Vec::new();
        while let Some(text) = self.next().await? {
            out.push(serde_json::from_slice(&text).map_err(|e| {
                tracing::error!(error = %e, "a rendered resource did not parse");
                ScimError::internal("internal error")
            })?);
        }
        Ok(out)
    }
}

/// A page of representations and how many match in all (the root search).
pub struct SearchPage {
    pub total: u64,
    pub resources: Vec<Value>,
    /// Bytes of the resources, to take from the budget of a shared page.
    pub bytes: u64,
}

/// Resources for the root `/.search`, at an explicit offset and limit, at
/// most `budget` bytes of them (passed only by a first resource when
/// `first_always`).
pub async fn search_page<E: Endpoint>(
    state: &web::Data<ScimState>,
    caller: &Caller,
    params: &ListParams,
    offset: u64,
    limit: u64,
    budget: u64,
    first_always: bool,
) -> Result<SearchPage, ScimError> {
    let mut plan = list::plan(E::TYPE, params, &state.settings)?;
    plan.query.page = Window::Offset { offset, limit };
    let (pager, total) = Pager::<E>::open(
        state.clone(),
        caller.clone(),
        params,
        plan,
        budget,
        first_always,
    )
    .await?;
    let resources = pager.collect().await?;
    let bytes = resources.iter().map(|r| r.to_string().len() as u64).sum();
    Ok(SearchPage {
        total,
        resources,
        bytes,
    })
}

/// A ListResponse, streamed: its head once the first chunk is read (so a
/// bad filter or cursor is still a SCIM error), then each resource as it is
/// rendered. A database failure after the head can no longer change the
/// status: it is logged and the connection closed before the body ends, so
/// the client sees a broken response rather than a short one.
async fn list<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    params: ListParams,
) -> Result<HttpResponse, ScimError> {
    let plan = list::plan(E::TYPE, &params, &state.settings)?;
    let budget = state.settings.max_page_bytes;
    let paging = plan.paging.clone();
    let (pager, total) = Pager::<E>::open(state, caller, &params, plan, budget, true).await?;
    let head = list::list_head(total, &paging);
    let first = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) });
    let rest = stream::unfold(pager, |mut pager| async move {
        match pager.piece().await {
            Ok(Some(bytes)) => Some((Ok(bytes), pager)),
            Ok(None) => None,
            Err(err) => {
                tracing::error!(detail = %err.detail, "a list response failed after it began");
                pager.finished = true;
                Some((Err(std::io::Error::other(err.detail)), pager))
            }
        }
    });
    Ok(HttpResponse::build(StatusCode::OK)
        .content_type(super::CONTENT_TYPE)
        .streaming(futures_util::StreamExt::chain(first, rest)))
}

#[instrument(skip_all, fields(resource = E::TYPE.name, directory_id = %caller.directory_id))]
pub async fn list_resources<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ScimError> {
    let params = ListParams::from_query(req.query_string())?;
    list::<E>(state, caller, params).await
}

#[instrument(skip_all, fields(resource = E::TYPE.name, directory_id = %caller.directory_id))]
pub async fn search_resources<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let params = ListParams::from_search(&body.0)?;
    list::<E>(state, caller, params).await
}
