//! A SCIM directory's request log as every front end reads it (the CLI's
//! `dirsync directory requests`, the host API, the dashboard): newest
//! first, filtered by status class and method, a page at a time; and its
//! pruning by age (the server's retention). The log is written by
//! `scim::request_log`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AdminError;
use super::directory;
use crate::domain::time::rfc3339;
use crate::store::Store;
use crate::store::events::Pruned;
use crate::store::pages::Page;
use crate::store::scim_requests::{self, Request};

/// A class of HTTP statuses (RFC 9110 §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Success,
    Redirection,
    ClientError,
    ServerError,
}

impl StatusClass {
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub fn parse(raw: &str) -> Result<StatusClass, AdminError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "2xx" => Ok(StatusClass::Success),
            "3xx" => Ok(StatusClass::Redirection),
            "4xx" => Ok(StatusClass::ClientError),
            "5xx" => Ok(StatusClass::ServerError),
            _ => Err(AdminError::Invalid(format!(
                "status class {} is not one of 2xx, 3xx, 4xx, 5xx",
                crate::domain::text::quoted(raw)
            ))),
        }
    }

    fn range(self) -> (i32, i32) {
        match self {
            StatusClass::Success => (200, 300),
            StatusClass::Redirection => (300, 400),
            StatusClass::ClientError => (400, 500),
            StatusClass::ServerError => (500, 600),
        }
    }
}

/// The methods a SCIM client sends (RFC 7644 §3.2).
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A method a SCIM client sends, upper case.
pub fn method(raw: &str) -> Result<String, AdminError> {
    let upper = raw.trim().to_ascii_uppercase();
    if !METHODS.contains(&upper.as_str()) {
        return Err(AdminError::Invalid(format!(
            "method {} is not one of {}",
            crate::domain::text::quoted(raw),
            METHODS.join(", ")
        )));
    }
    Ok(upper)
}

/// Which requests a read wants.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<StatusClass>,
    /// GET, POST, PUT, PATCH or DELETE (any case).
    pub method: Option<String>,
    /// Only requests older than this one (its id: the last of the previous
    /// page).
    pub before: Option<String>,
}

/// What the engine made of one resource of a request, or why a Bulk
/// operation was refused (as `scim::request_log` writes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceOutcome {
    /// The Bulk operation (0-based, request order); absent outside Bulk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<usize>,
    /// The directory's id for the user (its SCIM id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `created`, `updated`, `unchanged`, `deactivated`, `reactivated`,
    /// `deleted`, `skipped`, `conflict`, `deferred`; `refused` (a Bulk
    /// operation that failed); `omitted` (outcomes past the record's cap).
    pub outcome: String,
    /// Why: a skip's, a conflict's or a deferral's reason; a refused
    /// operation's status, scimType and detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What an update changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// One SCIM request as the log shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub id: String,
    /// When it arrived (RFC 3339).
    pub at: String,
    pub method: String,
    /// The path and query string (cut at 2,048 characters).
    pub path: String,
    pub status: i32,
    pub duration_ms: i64,
    /// The SCIM error's `scimType` (RFC 7644 §3.12), when it had one.
    pub scim_type: Option<String>,
    /// The SCIM error's `detail` (cut at 1,024 characters).
    pub detail: Option<String>,
    /// What the engine made of each user the request wrote (at most 100).
    pub outcomes: Vec<ResourceOutcome>,
    /// Kept only when the server runs with `--scim-log-bodies`: the
    /// request's headers, and the bodies as JSON text (cut at 64 KiB), with
    /// passwords and anything token-like replaced by `[removed]`.
    pub request_headers: Option<BTreeMap<String, String>>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

impl RequestView {
    fn of(row: Request) -> Result<RequestView, AdminError> {
        let stored = |what: &str, e: serde_json::Error| {
            AdminError::Invalid(format!(
                "SCIM request {}: its {what} do not read: {e}",
                row.id
            ))
        };
        let outcomes = serde_json::from_str(&row.outcomes).map_err(|e| stored("outcomes", e))?;
        let request_headers = row
            .request_headers
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| stored("headers", e))?;
        Ok(RequestView {
            at: rfc3339(row.at),
            outcomes,
            request_headers,
            id: row.id,
            method: row.method,
            path: row.path,
            status: row.status,
            duration_ms: row.duration_ms,
            scim_type: row.scim_type,
            detail: row.detail,
            request_body: row.request_body,
            response_body: row.response_body,
        })
    }
}

/// The SCIM directory's (its id or `TENANT/NAME`) logged requests that
/// `filter` wants, newest first, at most `limit` (1 to 1,000); whether
/// older ones follow is the page's `more_after`.
pub async fn scim_requests(
    store: &Store,
    directory: &str,
    filter: &RequestFilter,
    limit: u64,
) -> Result<Page<RequestView>, AdminError> {
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::Invalid(format!(
            "limit {limit} is not 1 to 1000"
        )));
    }
    let named = directory::resolve(store, directory).await?.scim()?;
    let method = filter.method.as_deref().map(method).transpose()?;
    let older_than = match &filter.before {
        Some(id) => {
            let id = uuid::Uuid::parse_str(id).map_err(|_| {
                AdminError::Invalid(format!(
                    "{} names no logged request",
                    crate::domain::text::quoted(id)
                ))
            })?;
            Some(id.hyphenated().to_string())
        }
        None => None,
    };
    let rows_filter = scim_requests::Filter {
        status: filter.status.map(StatusClass::range),
        method,
    };
    let page = scim_requests::page(
        store,
        &named.directory.id,
        &rows_filter,
        older_than.as_deref(),
        limit,
    )
    .await
    .map_err(AdminError::Store)?;
    Ok(Page {
        rows: page
            .rows
            .into_iter()
            .map(RequestView::of)
            .collect::<Result<_, _>>()?,
        more_after: page.more_after,
        more_before: page.more_before,
    })
}

/// Delete the logged SCIM requests that arrived before `before` (epoch
/// ms), at most `at_most` (the server's retention pass).
pub async fn prune_scim_requests(
    store: &Store,
    before: i64,
    at_most: u64,
) -> Result<Pruned, AdminError> {
    scim_requests::prune(store, before, at_most)
        .await
        .map_err(AdminError::Store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("2xx", StatusClass::Success)]
    #[case("4XX", StatusClass::ClientError)]
    #[case(" 5xx ", StatusClass::ServerError)]
    fn a_status_class_reads_as_its_first_digit_and_xx(
        #[case] raw: &str,
        #[case] class: StatusClass,
    ) {
        assert_eq!(StatusClass::parse(raw).ok(), Some(class));
    }

    #[rstest]
    #[case("200")]
    #[case("4")]
    #[case("")]
    #[case("6xx")]
    fn anything_else_is_not_a_status_class(#[case] raw: &str) {
        assert!(StatusClass::parse(raw).is_err());
    }
}
