//! List and search responses (RFC 7644 §3.4.2, §3.4.3) bounded by bytes as
//! well as by `count`: the window's rows are read a chunk at a time and each
//! resource is written as it is rendered (its related rows, a group's
//! members, a chunk at a time too: `representation`); the page ends where
//! the next resource would pass the byte budget (`--max-page-bytes`), with
//! `itemsPerPage` and `nextCursor` saying where it ended. The server holds
//! one chunk of rows and one of related rows, never the page nor a
//! resource's members. The root `/.search` streams users, then groups, in
//! one budget. No `sea_orm`: rows come through the resource's [`Endpoint`].

use std::collections::VecDeque;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::{StreamExt, stream};
use tracing::instrument;

use super::ScimState;
use super::auth::Caller;
use super::body::ScimBody;
use super::endpoint::Endpoint;
use super::error::ScimError;
use super::groups::Groups;
use super::list::{self, ListParams, Pagination, QueryPlan};
use super::projection::Projection;
use super::representation::{Batch, Context, Representation};
use super::users::Users;
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
    ctx: Context<E>,
    budget: u64,
    /// Whether the page answers its first resource whatever its size (a
    /// page of its own does, so a client always makes progress).
    first_always: bool,
    /// Whether resources of the response come before the page's (the root
    /// search's users before its groups): its first takes a comma.
    preceded: bool,
    /// Rows of the window not read yet (a cursor page's look-ahead included).
    unread: u64,
    /// Rows read so far, and the last one's id: where the next chunk starts.
    read: u64,
    last_read: Option<String>,
    exhausted: bool,
    /// Rows read but not answered yet.
    pending: VecDeque<E::Row>,
    /// The related rows of the last chunk of rows read.
    batch: Batch<E>,
    /// A resource answered but not written whole yet: one too large to hold,
    /// written a chunk of its related rows at a time.
    writing: Option<Representation<E>>,
    answered: u64,
    /// Bytes of the resources written (separators aside).
    bytes: u64,
    last_answered: Option<String>,
    /// The ListResponse's tail is written (or the stream failed): nothing follows.
    finished: bool,
}

impl<E: Endpoint> Pager<E> {
    /// Plan the page and read its first chunk; returns the pager and, when
    /// `tally` says so, how many resources the filter matches in all
    /// (`totalResults`). Errors here are the client's answer; after this
    /// only the database can fail.
    async fn open(
        state: web::Data<ScimState>,
        caller: Caller,
        params: &ListParams,
        plan: QueryPlan,
        budget: u64,
        first_always: bool,
        tally: Tally,
    ) -> Result<(Self, u64), ScimError> {
        let projection = Projection::parse(
            E::TYPE,
            params.attributes.as_deref(),
            params.excluded_attributes.as_deref(),
        )?;
        let unread = plan.query.page.limit();
        let ctx = Context::new(state.clone(), &caller.directory_id, projection, false);
        let mut pager = Pager {
            state,
            caller,
            plan,
            ctx,
            budget,
            first_always,
            preceded: false,
            unread,
            read: 0,
            last_read: None,
            exhausted: false,
            pending: VecDeque::new(),
            batch: Batch::new(Vec::new()),
            writing: None,
            answered: 0,
            bytes: 0,
            last_answered: None,
            finished: false,
        };
        let total = pager.read_chunk(FIRST_CHUNK, tally).await?;
        pager.batch.prefetch(&pager.ctx).await?;
        Ok((pager, total))
    }

    /// Read up to `at_most` more rows of the window.
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
        let owners = match self.ctx.related() {
            true => matches.items.iter().map(|r| E::id(r).to_owned()).collect(),
            false => Vec::new(),
        };
        self.batch = Batch::new(owners);
        self.pending.extend(matches.items);
        Ok(matches.total)
    }

    /// Write the page's next resource into `out` (whole, or as far as its
    /// first chunk of related rows when it is too large to hold: `writing`
    /// then goes on with it); `false` when the page is complete: `count`
    /// reached, the window read, or the next resource would pass the byte
    /// budget (a page always answers at least one, so a client makes
    /// progress whatever the sizes). A resource too large to hold is
    /// measured first (`Representation::fits`), so the page ends where it
    /// would if each resource were built whole.
    async fn next_resource(&mut self, out: &mut Vec<u8>) -> Result<bool, ScimError> {
        if self.answered >= self.plan.count() {
            return Ok(false);
        }
        if self.pending.is_empty() && !self.exhausted {
            let seen = self.bytes / self.answered.max(1);
            let rows = (CHUNK_BYTES / seen.max(1)).clamp(1, MAX_CHUNK);
            self.read_chunk(rows, Tally::Skip).await?;
        }
        let Some(row) = self.pending.pop_front() else {
            return Ok(false);
        };
        let rows = self.batch.take(&self.ctx, E::id(&row)).await?;
        let mut representation = Representation::new(&self.ctx, &row, rows)?;
        let mut text = Vec::new();
        let complete = representation.write(&self.ctx, &mut text).await?;
        let size = text.len() as u64;
        let room = self.budget.saturating_sub(self.bytes);
        let fits = (self.answered == 0 && self.first_always)
            || (size <= room && (complete || representation.fits(&self.ctx, room - size).await?));
        if !fits {
            self.pending.push_front(row);
            return Ok(false);
        }
        if self.answered > 0 || self.preceded {
            out.push(b',');
        }
        out.extend_from_slice(&text);
        self.answered += 1;
        self.bytes += size;
        self.last_answered = Some(E::id(&row).to_owned());
        if !complete {
            self.writing = Some(representation);
        }
        Ok(true)
    }

    /// Write resources of the page (comma-separated) into `out` until a
    /// piece is full; `false` once the page has no more.
    async fn resources(&mut self, out: &mut Vec<u8>) -> Result<bool, ScimError> {
        while out.len() < PIECE_BYTES {
            if let Some(writing) = &mut self.writing {
                let before = out.len();
                let complete = writing.write(&self.ctx, out).await?;
                self.bytes += (out.len() - before) as u64;
                if complete {
                    self.writing = None;
                }
            } else if !self.next_resource(out).await? {
                return Ok(false);
            }
        }
        Ok(true)
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
}

/// A ListResponse's body after its head, written a piece at a time.
trait Pieces: 'static {
    /// The next bytes to send; `None` once the body is complete.
    async fn piece(&mut self) -> Result<Option<Bytes>, ScimError>;
}

impl<E: Endpoint> Pieces for Pager<E> {
    /// Resources until a piece is full or the page ends, then the
    /// ListResponse's tail.
    async fn piece(&mut self) -> Result<Option<Bytes>, ScimError> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::new();
        if !self.resources(&mut out).await? {
            let next = self.next_cursor().await?;
            out.extend_from_slice(list::list_tail(self.answered, next.as_deref()).as_bytes());
            self.finished = true;
        }
        Ok(Some(Bytes::from(out)))
    }
}

/// A 200 ListResponse: its head, then the pieces of `body`. A failure after
/// the head can no longer change the status: it is logged and the
/// connection closed before the body ends, so the client sees a broken
/// response rather than a short one.
fn streamed(head: String, body: impl Pieces) -> HttpResponse {
    let first = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) });
    let rest = stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        match body.piece().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(body))),
            Ok(None) => None,
            Err(err) => {
                tracing::error!(detail = %err.detail, "a list response failed after it began");
                Some((Err(std::io::Error::other(err.detail)), None))
            }
        }
    });
    HttpResponse::build(StatusCode::OK)
        .content_type(super::CONTENT_TYPE)
        .streaming(first.chain(rest))
}

/// A window of a listing at an explicit offset and limit (the root
/// `/.search`'s), and how many resources the filter matches in all when
/// `tally` says so.
async fn window<E: Endpoint>(
    state: &web::Data<ScimState>,
    caller: &Caller,
    params: &ListParams,
    (offset, limit): (u64, u64),
    budget: u64,
    first_always: bool,
    tally: Tally,
) -> Result<(Pager<E>, u64), ScimError> {
    let mut plan = list::plan(E::TYPE, params, &state.settings)?;
    plan.query.page = Window::Offset { offset, limit };
    Pager::<E>::open(
        state.clone(),
        caller.clone(),
        params,
        plan,
        budget,
        first_always,
        tally,
    )
    .await
}

/// What the root `/.search` is writing.
enum Phase {
    Users(Pager<Users>),
    Groups(Pager<Groups>),
    Tail,
    Done,
}

/// The root `/.search`'s response being written: users, then groups, in
/// one window and one byte budget.
struct RootSearch {
    state: web::Data<ScimState>,
    caller: Caller,
    params: ListParams,
    /// The window over users followed by groups: `[start, start + count)`.
    start: u64,
    count: u64,
    budget: u64,
    user_total: u64,
    /// Whether groups understood the filter (else none is listed).
    groups_listed: bool,
    /// Resources answered, and their bytes, before the current phase.
    answered: u64,
    bytes: u64,
    phase: Phase,
}

impl RootSearch {
    /// The groups' part of the window, after the users answered (none when
    /// the budget cut the users short, or the window ends within them).
    async fn groups(&self) -> Result<Phase, ScimError> {
        let cut = self.answered < self.count && self.start + self.answered < self.user_total;
        let offset = self.start.saturating_sub(self.user_total);
        let limit = if cut { 0 } else { self.count - self.answered };
        if !self.groups_listed || limit == 0 {
            return Ok(Phase::Tail);
        }
        let budget = self.budget.saturating_sub(self.bytes);
        let first_always = self.answered == 0;
        let (mut pager, _) = window::<Groups>(
            &self.state,
            &self.caller,
            &self.params,
            (offset, limit),
            budget,
            first_always,
            Tally::Skip,
        )
        .await?;
        pager.preceded = self.answered > 0;
        Ok(Phase::Groups(pager))
    }
}

impl Pieces for RootSearch {
    async fn piece(&mut self) -> Result<Option<Bytes>, ScimError> {
        let mut out = Vec::new();
        loop {
            match &mut self.phase {
                Phase::Users(users) => {
                    if users.resources(&mut out).await? {
                        break;
                    }
                    (self.answered, self.bytes) = (users.answered, users.bytes);
                    self.phase = self.groups().await?;
                }
                Phase::Groups(groups) => {
                    if groups.resources(&mut out).await? {
                        break;
                    }
                    self.answered += groups.answered;
                    self.phase = Phase::Tail;
                }
                Phase::Tail => {
                    out.extend_from_slice(list::list_tail(self.answered, None).as_bytes());
                    self.phase = Phase::Done;
                    break;
                }
                Phase::Done => return Ok(None),
            }
        }
        Ok(Some(Bytes::from(out)))
    }
}

/// `POST /.search` (RFC 7644 §3.4.3): users then groups, one index-paged
/// ListResponse from `start_index`, `count` resources at most, streamed as
/// a listing's page is. A filter that names an attribute one type lacks
/// simply matches none of it; one neither understands is the client's
/// error.
pub async fn search_root(
    state: web::Data<ScimState>,
    caller: Caller,
    params: ListParams,
    start_index: u64,
    count: u64,
) -> Result<HttpResponse, ScimError> {
    let start = start_index - 1;
    let budget = state.settings.max_page_bytes;
    let users = window::<Users>(
        &state,
        &caller,
        &params,
        (start, count),
        budget,
        true,
        Tally::Count,
    )
    .await;
    // How many groups match, for `totalResults` (their window follows the
    // users answered).
    let groups = window::<Groups>(
        &state,
        &caller,
        &params,
        (0, 0),
        budget,
        false,
        Tally::Count,
    )
    .await;
    let (users, user_total, group_total) = match (users, groups) {
        (Err(e), Err(_)) => return Err(e),
        (Ok((users, total)), groups) => (Some(users), total, groups.ok().map(|(_, n)| n)),
        (Err(_), Ok((_, n))) => (None, 0, Some(n)),
    };
    let mut search = RootSearch {
        state,
        caller,
        params,
        start,
        count,
        budget,
        user_total,
        groups_listed: group_total.is_some(),
        answered: 0,
        bytes: 0,
        phase: Phase::Tail,
    };
    search.phase = match users {
        Some(users) => Phase::Users(users),
        None => search.groups().await?,
    };
    let total = user_total + group_total.unwrap_or(0);
    let head = list::list_head(total, &Pagination::Index { start_index });
    Ok(streamed(head, search))
}

/// A page of a listing, streamed: its head once the first chunk of rows and
/// of their related rows is read (so a bad filter or cursor, or a failure
/// there, is still a SCIM error), then each resource as it is rendered.
async fn list<E: Endpoint>(
    state: web::Data<ScimState>,
    caller: Caller,
    params: ListParams,
) -> Result<HttpResponse, ScimError> {
    let plan = list::plan(E::TYPE, &params, &state.settings)?;
    let budget = state.settings.max_page_bytes;
    let paging = plan.paging.clone();
    let (pager, total) =
        Pager::<E>::open(state, caller, &params, plan, budget, true, Tally::Count).await?;
    Ok(streamed(list::list_head(total, &paging), pager))
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
