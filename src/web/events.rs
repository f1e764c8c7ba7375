//! A tenant's event feed, newest first: a page of events before a sequence
//! number (the cursor), optionally of one type, read from `store::events`
//! (the outbox the host API's feed reads, oldest first, so the page walks
//! back through windows of sequence numbers). Uses actix_web and askama.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::page::{Chrome, present, render};
use super::session::Operator;
use super::{WebError, WebState};
use crate::admin::{EventView, TenantView};
use crate::domain::event::EventType;
use crate::store::events::{self, Budget, EventFilter};

/// Events one page shows.
const PER_PAGE: usize = 50;
/// Sequence numbers one read looks back over.
const WINDOW: i64 = 500;
/// Windows one page reads at most (a rare type may be far back: the page
/// then ends early, and its "Older" link goes on from where it stopped).
const MAX_WINDOWS: usize = 40;

#[derive(Debug, Default, Deserialize)]
pub struct Feed {
    /// Events before this sequence number.
    before: Option<i64>,
    r#type: Option<String>,
}

pub struct Shown {
    pub event: EventView,
    pub kind: String,
    pub data: String,
}

#[derive(Template)]
#[template(path = "admin/events.html")]
struct EventsPage {
    chrome: Option<Chrome>,
    tenant: TenantView,
    events: Vec<Shown>,
    types: Vec<&'static str>,
    /// The type chosen; empty: any.
    chosen: String,
    error: Option<String>,
    older: Option<String>,
    newest: bool,
}

impl EventsPage {
    fn is_chosen(&self, t: impl AsRef<str>) -> bool {
        t.as_ref() == self.chosen
    }
}

pub async fn events(
    state: web::Data<WebState>,
    operator: Operator,
    tenant_id: web::Path<String>,
    feed: web::Query<Feed>,
) -> Result<HttpResponse, WebError> {
    let tenant = state.store.tenant(&tenant_id).await.map_err(|_| {
        WebError::NotFound(format!(
            "tenant {}",
            crate::domain::text::quoted(&tenant_id)
        ))
    })?;
    let conn = state.store.connection();
    let kind = present(&feed.r#type).unwrap_or_default();
    let mut error = None;
    let mut filter = EventFilter::default();
    if !kind.is_empty() {
        match kind.parse::<EventType>() {
            Ok(t) => filter.types = vec![t.as_str().to_owned()],
            Err(_) => {
                error = Some(format!(
                    "{} is no event type",
                    crate::domain::text::quoted(&kind)
                ))
            }
        }
    }
    let last = events::last_seq(conn, &tenant.id).await?;
    let before = feed.before.map_or(last + 1, |b| b.clamp(1, last + 1));
    let mut shown = Vec::new();
    // Sequence numbers below `top` are still to be read.
    let mut top = before;
    let mut windows = 0;
    while error.is_none() && top > 1 && shown.len() < PER_PAGE && windows < MAX_WINDOWS {
        windows += 1;
        let from = (top - 1 - WINDOW).max(0);
        let read = events::read(
            conn,
            &tenant.id,
            from,
            &filter,
            Budget {
                count: (top - 1 - from) as u64,
                bytes: u64::MAX / 2,
            },
            |_| 0,
        )
        .await?;
        let mut window: Vec<_> = read.events.into_iter().filter(|e| e.seq < top).collect();
        window.reverse();
        for e in window {
            if shown.len() == PER_PAGE {
                break;
            }
            top = e.seq;
            shown.push(e);
        }
        if shown.len() < PER_PAGE {
            top = from + 1;
        }
    }
    let older = (top > 1).then(|| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        if !kind.is_empty() {
            url.append_pair("type", &kind);
        }
        url.append_pair("before", &top.to_string());
        format!("/admin/tenants/{}/events?{}", tenant.id, url.finish())
    });
    let events = shown
        .into_iter()
        .map(|e| {
            let event = EventView::from(e);
            let data = serde_json::to_string_pretty(&event.data).unwrap_or_default();
            Shown {
                kind: event.r#type.clone(),
                event,
                data,
            }
        })
        .collect();
    render(&EventsPage {
        chrome: Some(Chrome::of(&operator)),
        tenant: TenantView {
            id: tenant.id,
            name: tenant.name,
        },
        events,
        types: EventType::ALL.iter().map(|t| t.as_str()).collect(),
        chosen: kind,
        error,
        older,
        newest: feed.before.is_none(),
    })
}
