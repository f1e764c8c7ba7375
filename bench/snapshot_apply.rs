//! Snapshot-apply benchmark: N users through the reconciliation engine without
//! HTTP (the path the pull worker takes), first import then a no-op re-apply.
//!
//! cargo bench --bench snapshot_apply -- [--users N] [--rules R] [--database-url URL]
//!
//! Each user comes with its SCIM document, as an edge hands it over; with
//! `--rules R` (at most 10) the directory maps R of its attributes to custom
//! attributes (issue 14: the engine reads them before it compares).
//!
//! Without `--database-url` it runs on a fresh SQLite file in a temp directory;
//! with a `postgres://` URL it creates a fresh database beside it and drops it
//! afterwards. Prints users/s for each pass, events written and peak RSS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

#[path = "support.rs"]
mod support;
use support::peak_rss_mib;

/// The allocator `dirsync` itself runs with (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use dirsync::admin;
use dirsync::reconcile::listing::{Listing, ListingOptions};
use dirsync::reconcile::model::{Profile, Snapshot};
use dirsync::store::Store;
use serde_json::json;

/// The custom extension the documents carry ten attributes under.
const EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:Bench:2.0:User";

/// Users handed to the engine per call (the size of a connector's page).
const FEED: usize = 1000;

fn snapshot(n: usize) -> (String, Snapshot) {
    (
        format!("00u{n:08}"),
        Snapshot {
            external_id: Some(format!("00u{n:08}")),
            email: Some(format!("user{n:07}@example.com")),
            profile: Profile {
                given_name: Some(format!("Given{n}")),
                family_name: Some("Family".into()),
                display_name: Some(format!("Given{n} Family")),
                department: Some(format!("Dept{}", n % 50)),
                title: Some("Engineer".into()),
                employee_number: Some(n.to_string()),
                ..Profile::default()
            },
            active: true,
            groups: Vec::new(),
            document: Some(std::sync::Arc::new(document(n))),
            ..Default::default()
        },
    )
}

/// The user as a SCIM client writes it: core attributes, the enterprise
/// extension, and ten attributes of a custom one.
fn document(n: usize) -> serde_json::Value {
    let custom: serde_json::Map<String, serde_json::Value> = (0..10)
        .map(|k| (format!("attr{k}"), json!(format!("Value {k} of {n}"))))
        .collect();
    json!({
        "userName": format!("user{n:07}@example.com"),
        "name": {"givenName": format!("Given{n}"), "familyName": "Family"},
        "emails": [{"value": format!("user{n:07}@example.com"), "type": "work", "primary": true}],
        "title": "Engineer",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": format!("Dept{}", n % 50),
            "employeeNumber": n.to_string(),
        },
        EXTENSION: custom,
    })
}

/// `count` rules, each a custom attribute from one of the custom
/// extension's attributes, every other one lowercased and trimmed.
fn rules(count: usize) -> Vec<dirsync::reconcile::mapping::Rule> {
    (0..count)
        .map(|k| {
            serde_json::from_value(json!({
                "source": format!("{EXTENSION}:attr{k}"),
                "target": format!("custom.attr{k}"),
                "lowercase": k % 2 == 0,
                "trim": k % 2 == 0,
            }))
            .unwrap()
        })
        .collect()
}

async fn pass(
    store: &Store,
    directory_id: &str,
    users: usize,
) -> (f64, dirsync::reconcile::listing::Report) {
    let started = Instant::now();
    let mut run = Listing::begin(store, directory_id, ListingOptions::default())
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let mut n = 0;
    while n < users {
        let end = (n + FEED).min(users);
        run.page(store, (n..end).map(snapshot).collect(), now)
            .await
            .unwrap();
        n = end;
    }
    let report = run.finish(store, true, now).await.unwrap();
    (started.elapsed().as_secs_f64(), report)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let users: usize = arg("--users").map_or(100_000, |v| v.parse().unwrap());
    let rule_count: usize = arg("--rules").map_or(0, |v| v.parse().unwrap());
    let database = support::Database::fresh(arg("--database-url")).await;
    let (url, backend) = (database.url.clone(), database.backend);
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    admin::create_tenant(&store, "bench").await.unwrap();
    let directory = admin::create_directory(&store, "bench", "bench", "generic")
        .await
        .unwrap();
    if rule_count > 0 {
        let change = admin::PolicyChange {
            attribute_mapping: Some(rules(rule_count)),
            ..admin::PolicyChange::default()
        };
        admin::update_policy(&store, &directory.id, change)
            .await
            .unwrap();
    }
    println!(
        "snapshot-apply on {backend}, {users} users, pages of {FEED}, {rule_count} mapping rules"
    );
    let (first, report) = pass(&store, &directory.id, users).await;
    assert_eq!(report.counts.created as usize, users, "{report:?}");
    println!(
        "first import: {:.2} s, {:.0} users/s ({} created)",
        first,
        users as f64 / first,
        report.counts.created
    );
    let (again, report) = pass(&store, &directory.id, users).await;
    assert_eq!(report.counts.unchanged as usize, users, "{report:?}");
    println!(
        "no-op re-apply: {:.2} s, {:.0} users/s ({} unchanged)",
        again,
        users as f64 / again,
        report.counts.unchanged
    );
    let events = admin::events(&store, "bench", users as i64 - 1, 10)
        .await
        .unwrap();
    println!(
        "events: last seq {} ; peak RSS {:.1} MiB",
        events.last().map_or(0, |e| e.seq),
        peak_rss_mib()
    );
    drop(store);
    database.finish(false).await;
}
