//! `/api/v1/events`: the tenant's ordered, gap-free event feed. A consumer
//! keeps the last `seq` it handled and asks for what comes `after` it; with
//! `wait`, the request returns as soon as a matching event commits (or empty
//! at the timeout), so no consumer needs a tight polling loop. A page is
//! bounded by bytes as well as by `limit` (`store::events::read`), so its
//! memory follows the server's settings, never the events' sizes.

use std::time::Duration;

use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Principal, Scope};
use super::problem::Problem;
use super::{ApiState, TenantParam};
use crate::admin::EventView;
use crate::store::events::{self, Budget, EventFilter};

pub fn scope() -> actix_web::Scope {
    web::scope("/events")
        .service(super::resource("", "GET").route(web::get().to(list_events)))
        .default_service(web::to(super::not_found))
}

/// Most events one request returns.
pub const MAX_EVENTS: u64 = 1000;
/// The longest a long-poll waits.
pub const MAX_WAIT_SECS: u64 = 60;
/// How often a long-poll looks again without a local commit (another
/// replica's commits reach this one only through the database).
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Events after this sequence number (0: from the first).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many, 1 to 1000 (default 100). A page also ends
    /// before the event that would take it past the server's byte budget
    /// (`--max-page-bytes`, 4 MiB of events by default), so it may answer
    /// fewer; it always answers at least one when any is there. Follow
    /// `next_after` either way.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// Only these types, comma-separated (`user.created,user.updated`).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub r#type: Option<String>,
    /// Only events about this resource (a user's or group's id).
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub resource_id: Option<String>,
    /// Wait up to this many seconds (at most 60) for an event when none is
    /// there yet.
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
}

/// A page of the feed: at most `limit` events and at most the server's
/// byte budget of them (`--max-page-bytes`, 4 MiB by default; a single
/// larger event comes alone), so a page may hold fewer than `limit` while
/// more follow. Reading on from `next_after` reads every event once, in
/// order, with no gap.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<EventView>,
    /// Pass as `after` next time: the last event's `seq`, or `after` again
    /// when none came.
    pub next_after: i64,
}

/// Read the feed.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(TenantParam, EventQuery),
    responses(
        (status = 200, body = EventPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
pub async fn list_events(
    state: web::Data<ApiState>,
    caller: Principal,
    tenant: web::Query<TenantParam>,
    query: web::Query<EventQuery>,
) -> Result<web::Json<EventPage>, Problem> {
    caller.require(Scope::Read)?;
    let tenant_id = tenant.resolve(&state.store, &caller).await?;
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(Problem::invalid_field(
            "after",
            "a sequence number, 0 or more",
        ));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit",
            format!("must be 1 to {MAX_EVENTS}"),
        ));
    }
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(Problem::invalid_field(
            "wait",
            format!("at most {MAX_WAIT_SECS} seconds"),
        ));
    }
    let types: Vec<String> = query
        .r#type
        .as_deref()
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if types
        .iter()
        .any(|t| t.len() > 64 || t.chars().any(char::is_control))
    {
        return Err(Problem::invalid_field(
            "type",
            "event types, comma-separated",
        ));
    }
    if query
        .resource_id
        .as_ref()
        .is_some_and(|r| r.len() > 256 || r.chars().any(char::is_control))
    {
        return Err(Problem::invalid_field(
            "resource_id",
            "at most 256 printable characters",
        ));
    }
    let filter = EventFilter {
        types,
        resource_id: query.resource_id.clone(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    // Subscribe before reading, so a commit between the read and the wait
    // still wakes this request.
    let mut commits = state.store.commits();
    let budget = Budget {
        count: limit,
        bytes: state.max_page_bytes,
    };
    loop {
        let read = events::read(
            state.store.connection(),
            &tenant_id,
            after,
            &filter,
            budget,
            EventView::size_of,
        )
        .await?;
        let now = tokio::time::Instant::now();
        if !read.events.is_empty() || now >= deadline {
            let next_after = read.events.last().map_or(after, |e| e.seq);
            return Ok(web::Json(EventPage {
                data: read.events.into_iter().map(EventView::from).collect(),
                next_after,
            }));
        }
        let nap = POLL.min(deadline - now);
        tokio::select! {
            changed = commits.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(nap).await;
                }
            }
            () = tokio::time::sleep(nap) => {}
        }
    }
}
