//! Event retention: a pass deletes every tenant's events older than the
//! retention through the same prune as `dirsync events prune`, keeps the
//! newer, and the feed's sequence goes on; `serve` runs it when the setting
//! is given, and refuses a setting that is not a duration.

use dirsync::admin;
use dirsync::reconcile::model::EventType;
use dirsync::retention::{self, Retention};
use dirsync::store::events::{self, NewEvent};
use rstest::rstest;
use serde_json::json;

use crate::helpers::{Served, TestApp, spawn_app};

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Write `count` events for `tenant` (a name) as if at `at` (epoch ms).
async fn write_events_at(app: &TestApp, tenant: &str, count: usize, at: i64) {
    let tenant = app.store.tenant_by_name(tenant).await.expect("tenant");
    let batch = (0..count)
        .map(|i| NewEvent {
            r#type: EventType::UserUpdated,
            resource_type: "user",
            resource_id: format!("user-{i}"),
            data: json!({ "i": i }).to_string(),
        })
        .collect();
    let tx = app.store.write().await.expect("write");
    events::append(tx.conn(), &tenant.id, batch, at)
        .await
        .expect("append");
    tx.commit().await.expect("commit");
}

/// The sequence numbers of a tenant's feed, in order.
async fn seqs(app: &TestApp, tenant: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = admin::event_page(&app.store, tenant, after, 1000)
            .await
            .expect("events");
        out.extend(page.events.iter().map(|e| e.seq));
        match page.next_after {
            Some(next) => after = next,
            None => return out,
        }
    }
}

async fn other_tenant(app: &TestApp) -> String {
    let name = format!("tenant-{}", uuid::Uuid::new_v4().simple());
    admin::create_tenant(&app.store, &name)
        .await
        .expect("tenant");
    name
}

#[tokio::test]
async fn a_pass_deletes_every_tenants_events_older_than_the_retention_and_keeps_the_newer() {
    let app = spawn_app().await;
    let other = other_tenant(&app).await;
    let now = now();
    write_events_at(&app, &app.tenant, 3, now - 40 * DAY).await;
    write_events_at(&app, &app.tenant, 2, now - 29 * DAY).await;
    app.create_user("ada@example.com").await;
    write_events_at(&app, &other, 4, now - 31 * DAY).await;
    write_events_at(&app, &other, 1, now - DAY).await;
    let thirty_days = Retention::parse("30d").unwrap();

    let pruned = retention::prune_once(&app.store, thirty_days, now)
        .await
        .expect("pass");
    assert_eq!(pruned.deleted, 7);
    assert!(pruned.is_complete);
    assert_eq!(seqs(&app, &app.tenant).await, vec![4, 5, 6]);
    assert_eq!(seqs(&app, &other).await, vec![5]);

    // Nothing left to do; the feed goes on after the oldest kept event.
    let again = retention::prune_once(&app.store, thirty_days, now)
        .await
        .expect("pass");
    assert_eq!(again.deleted, 0);
    app.create_user("bob@example.com").await;
    let feed = seqs(&app, &app.tenant).await;
    assert_eq!(feed.first(), Some(&4));
    assert_eq!(feed, (4..=feed[feed.len() - 1]).collect::<Vec<_>>());
    assert!(
        app.event_types_after(6)
            .await
            .contains(&"user.created".to_owned())
    );
}

#[tokio::test]
async fn a_prune_stops_at_its_budget_oldest_first_and_the_next_finishes() {
    let app = spawn_app().await;
    let now = now();
    // More than one chunk of a thousand, then one that stays.
    write_events_at(&app, &app.tenant, 2_500, now - 100 * DAY).await;
    write_events_at(&app, &app.tenant, 1, now).await;
    let cutoff = now - 90 * DAY;

    let first = admin::prune_events(&app.store, None, cutoff, 1_200)
        .await
        .expect("prune");
    assert_eq!(
        (first.deleted, first.is_complete),
        (1_200, false),
        "{first:?}"
    );
    assert_eq!(seqs(&app, &app.tenant).await.first(), Some(&1_201));

    let rest = admin::prune_events(&app.store, None, cutoff, u64::MAX)
        .await
        .expect("prune");
    assert_eq!((rest.deleted, rest.is_complete), (1_300, true), "{rest:?}");
    assert_eq!(seqs(&app, &app.tenant).await, vec![2_501]);
}

#[tokio::test]
async fn replicas_pruning_at_once_delete_each_event_once_and_keep_the_newer() {
    let app = spawn_app().await;
    let now = now();
    write_events_at(&app, &app.tenant, 2_500, now - 100 * DAY).await;
    write_events_at(&app, &app.tenant, 3, now - DAY).await;
    // Two replicas: two pools on one database, no lock in common.
    let other = dirsync::store::Store::connect(&app.db_url, 4)
        .await
        .expect("second replica");
    let ninety_days = Retention::parse("90d").unwrap();
    let (a, b) = tokio::join!(
        retention::prune_once(&app.store, ninety_days, now),
        retention::prune_once(&other, ninety_days, now),
    );
    let (a, b) = (a.expect("first replica"), b.expect("second replica"));
    assert_eq!(a.deleted + b.deleted, 2_500, "{a:?} {b:?}");
    assert_eq!(seqs(&app, &app.tenant).await, vec![2_501, 2_502, 2_503]);
}

#[tokio::test]
async fn serve_with_a_retention_prunes_at_start_and_logs_how_many_and_the_cutoff() {
    let app = spawn_app().await;
    let now = now();
    write_events_at(&app, &app.tenant, 3, now - 10 * DAY).await;
    write_events_at(&app, &app.tenant, 2, now - DAY).await;

    let served = Served::start(&app.db_url, &[("DIRSYNC_EVENT_RETENTION", "1w")]);
    let line = served.wait_for_log("events older than the retention deleted");
    let log = served.stop();
    let line = line.unwrap_or_else(|| panic!("no retention pass logged:\n{log}"));
    let fields = &line["fields"];
    assert_eq!(fields["deleted"], 3, "{line}");
    assert_eq!(fields["retention"], "7days", "{line}");
    let cutoff = chrono::DateTime::parse_from_rfc3339(fields["cutoff"].as_str().unwrap())
        .expect("cutoff is RFC 3339")
        .timestamp_millis();
    assert!(
        (now - 7 * DAY..now - 7 * DAY + 600_000).contains(&cutoff),
        "{line}"
    );
    assert_eq!(seqs(&app, &app.tenant).await, vec![4, 5]);
}

/// `dirsync serve` refuses the setting before it touches a database.
#[rstest]
#[case::no_unit(
    &["--event-retention", "90"],
    &[],
    "\"90\" has no unit: write a duration such as 90d (days)"
)]
#[case::words(&["--event-retention", "ninety days"], &[], "\"ninety days\" is not a duration")]
#[case::zero(&[], &[("DIRSYNC_EVENT_RETENTION", "0d")], "\"0d\" is shorter than an hour")]
#[case::minutes(&[], &[("DIRSYNC_EVENT_RETENTION", "30m")], "\"30m\" is shorter than an hour")]
fn serve_refuses_a_retention_that_is_not_a_duration_and_says_what_to_write(
    #[case] args: &[&str],
    #[case] env: &[(&str, &str)],
    #[case] says: &str,
) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["--database-url", "sqlite::memory:", "serve"])
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run dirsync");
    let err = String::from_utf8(out.stderr).expect("utf-8");
    assert!(!out.status.success(), "{args:?} {env:?} started: {err}");
    assert!(err.contains("--event-retention"), "{err}");
    assert!(err.contains(says), "{args:?} {env:?}: {err}");
}
