//! The Prometheus series dirsync records, and the one process-wide recorder
//! that `/metrics` renders (`ops`). Callers record through the functions here,
//! so every name, label and bucket lives in this file. Imports no layer of
//! the crate: callers pass plain labels.
//!
//! The `metrics` facade is a no-op until `install` runs, so commands without
//! the HTTP server (`dirsync sync`, tests calling the engine) record nothing.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "dirsync_http_requests_total";
pub const HTTP_DURATION: &str = "dirsync_http_request_duration_seconds";
pub const SCIM_USER_WRITES: &str = "dirsync_scim_user_writes_total";
pub const PULL_RUNS: &str = "dirsync_pull_runs_total";
pub const PULL_RUN_DURATION: &str = "dirsync_pull_run_duration_seconds";
pub const PULL_VALUES_DROPPED: &str = "dirsync_pull_values_dropped_total";
pub const EVENTS_APPENDED: &str = "dirsync_events_appended_total";
pub const EVENTS_LAST_SEQ: &str = "dirsync_events_last_seq";
pub const WEBHOOK_ATTEMPTS: &str = "dirsync_webhook_attempts_total";
pub const WEBHOOK_DURATION: &str = "dirsync_webhook_attempt_duration_seconds";
pub const WEBHOOK_LAG: &str = "dirsync_webhook_lag_seconds";
pub const SCIM_LOG_DROPPED: &str = "dirsync_scim_log_dropped_total";

/// Request latency: a SCIM read takes milliseconds, a Bulk request seconds.
const HTTP_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Run length: an incremental run of a small directory takes a second, a
/// full run of 100,000 users minutes.
const PULL_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// How often recorded latencies are folded into their buckets. Between
/// folds every sample is kept, so without it memory grows with the traffic
/// between two scrapes (or forever, when nothing scrapes).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Install the recorder (once per process: the `metrics` facade has one
/// global recorder, and tests build many servers in one process) and return
/// the handle that renders it.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder()
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "metric buckets refused; latencies become summaries");
                PrometheusBuilder::new()
            })
            .build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_err() {
            // Only an application embedding dirsync with its own recorder
            // gets here; its recorder keeps the series.
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "no metrics upkeep thread; latencies fold at each scrape only");
        }
        handle
    })
}

/// Histograms with buckets (Prometheus histograms, which aggregate across
/// replicas) rather than the exporter's default summaries (which do not).
fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &HTTP_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(PULL_RUN_DURATION.into()), &PULL_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(WEBHOOK_DURATION.into()), &HTTP_BUCKETS)
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route pattern, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        ::metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route pattern, method and status"
    );
    describe_counter!(
        SCIM_USER_WRITES,
        "SCIM user writes by what the engine did with them"
    );
    describe_counter!(PULL_RUNS, "Pull runs finished, by provider and status");
    describe_histogram!(
        PULL_RUN_DURATION,
        ::metrics::Unit::Seconds,
        "Length of a pull run, by provider and status"
    );
    describe_counter!(
        PULL_VALUES_DROPPED,
        "Provider values dropped for passing dirsync's length caps, by property"
    );
    describe_counter!(EVENTS_APPENDED, "Events appended to the outbox, by type");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts, by endpoint and outcome"
    );
    describe_histogram!(
        WEBHOOK_DURATION,
        ::metrics::Unit::Seconds,
        "Time of a webhook delivery attempt, by endpoint"
    );
    describe_gauge!(
        WEBHOOK_LAG,
        "Age of the oldest event a webhook endpoint has not taken, in seconds"
    );
    describe_counter!(
        SCIM_LOG_DROPPED,
        "SCIM request log records dropped instead of written, by why (full: the queue was full; stopped: its writer had stopped)"
    );
    describe_gauge!(
        EVENTS_LAST_SEQ,
        "The newest event sequence number appended, per tenant"
    );
}

/// Methods outside this list are counted as `other`: the method is the
/// client's to choose, and every new label value is a new series.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

/// One answered request. `route` is the matched pattern
/// (`/scim/v2/Users/{id}`), never the raw path: ids would make a series each.
pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method_label(method).to_owned()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// One SCIM user change as the engine decided it (`created`, `unchanged`, …).
pub fn scim_user_write(outcome: &'static str) {
    counter!(SCIM_USER_WRITES, "outcome" => outcome).increment(1);
}

/// A SCIM request log record dropped (`full`, `stopped`).
pub fn scim_log_dropped(why: &'static str) {
    counter!(SCIM_LOG_DROPPED, "why" => why).increment(1);
}

/// One pull run that ended with this status (the run record's).
pub fn pull_run(provider: &str, status: &str, elapsed: Duration) {
    let labels = [
        ("provider", provider.to_owned()),
        ("status", status.to_owned()),
    ];
    counter!(PULL_RUNS, &labels).increment(1);
    histogram!(PULL_RUN_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// A provider's value dropped for its length (`property`: the provider's
/// own path, a small fixed set).
pub fn pull_value_dropped(property: &str) {
    counter!(PULL_VALUES_DROPPED, "property" => property.to_owned()).increment(1);
}

/// One webhook delivery attempt to an endpoint and how it ended
/// (`delivered`, `failed`, `gone`, `error`).
pub fn webhook_attempt(endpoint_id: &str, outcome: &'static str, elapsed: Duration) {
    let labels = [
        ("endpoint", endpoint_id.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    counter!(WEBHOOK_ATTEMPTS, &labels).increment(1);
    histogram!(WEBHOOK_DURATION, "endpoint" => endpoint_id.to_owned())
        .record(elapsed.as_secs_f64());
}

/// How old the oldest event an endpoint has not taken yet is, in seconds
/// (0 when it is caught up).
pub fn webhook_lag(endpoint_id: &str, seconds: f64) {
    gauge!(WEBHOOK_LAG, "endpoint" => endpoint_id.to_owned()).set(seconds);
}

/// Events of these types appended for a tenant, the last numbered `last_seq`.
pub fn events_appended(tenant_id: &str, types: &[&'static str], last_seq: i64) {
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    for t in types {
        *by_type.entry(t).or_default() += 1;
    }
    for (t, n) in by_type {
        counter!(EVENTS_APPENDED, "type" => t).increment(n);
    }
    // f64 holds every integer up to 2^53: far beyond any tenant's sequence.
    gauge!(EVENTS_LAST_SEQ, "tenant" => tenant_id.to_owned()).set(last_seq as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Record with a recorder of this test's own and render what it holds.
    fn rendered(record: impl FnOnce()) -> String {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, || {
            describe();
            record();
        });
        handle.render()
    }

    #[test]
    fn latencies_are_histograms_with_buckets_not_summaries() {
        let text = rendered(|| {
            http_request("/scim/v2/Users/{id}", "GET", 200, Duration::from_millis(3));
            pull_run("okta", "succeeded", Duration::from_secs(2));
        });
        assert!(text.contains("# TYPE dirsync_http_request_duration_seconds histogram"));
        assert!(text.contains(
            r#"dirsync_http_request_duration_seconds_bucket{route="/scim/v2/Users/{id}",method="GET",status="200",le="0.005"} 1"#
        ), "{text}");
        assert!(text.contains("# TYPE dirsync_pull_run_duration_seconds histogram"));
        assert!(
            text.contains(r#"dirsync_pull_runs_total{provider="okta",status="succeeded"} 1"#),
            "{text}"
        );
    }

    #[rstest]
    #[case("GET", "GET")]
    #[case("PATCH", "PATCH")]
    #[case("get", "other")]
    #[case("PROPFIND", "other")]
    fn a_method_outside_the_standard_ones_is_counted_as_other(
        #[case] method: &str,
        #[case] label: &str,
    ) {
        assert_eq!(method_label(method), label);
    }

    #[test]
    fn events_are_counted_by_type_and_the_tenant_gauge_holds_the_last_sequence() {
        let text = rendered(|| {
            events_appended("t1", &["user.created", "user.updated", "user.created"], 7);
            events_appended("t1", &["user.deleted"], 8);
        });
        assert!(
            text.contains(r#"dirsync_events_appended_total{type="user.created"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"dirsync_events_appended_total{type="user.deleted"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"dirsync_events_last_seq{tenant="t1"} 8"#),
            "{text}"
        );
    }
}
