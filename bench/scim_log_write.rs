//! SCIM request log writer benchmark: what the log's writer spends on each
//! request it writes, in batches the size S1 fills them (README "SCIM
//! request log").
//!
//! cargo bench --bench scim_log_write -- [--batches N] [--per M] [--keep K] [--database-url URL]
//!
//! Writes N batches of M requests of one directory (each as the middleware
//! records a SCIM create: its path, status, duration and the engine's
//! outcome) through `scim_requests::insert`, the directory kept to its
//! newest K (1000, the default `--scim-log-keep`: past the first batches
//! every write also trims). Prints requests/s. Under
//! `valgrind --tool=callgrind`, the instructions of `--batches 40` less
//! those of `--batches 0` (the set-up), divided by 40×M, are the writer's
//! instructions a request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

#[path = "support.rs"]
mod support;
use support::peak_rss_mib;

/// The allocator `dirsync` itself runs with (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use dirsync::store::Store;
use dirsync::store::scim_requests::{self, Request};

/// A SCIM create as the middleware records it.
fn created(directory_id: &str) -> Request {
    let id = uuid::Uuid::now_v7().to_string();
    let user = uuid::Uuid::now_v7().to_string();
    Request {
        outcomes: format!(r#"[{{"resource":"{user}","outcome":"created"}}]"#),
        id,
        directory_id: directory_id.to_owned(),
        at: chrono::Utc::now().timestamp_millis(),
        method: "POST".into(),
        path: "/scim/v2/Users".into(),
        status: 201,
        duration_ms: 3,
        scim_type: None,
        detail: None,
        request_headers: None,
        request_body: None,
        response_body: None,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let batches: usize = arg("--batches").map_or(200, |v| v.parse().unwrap());
    let per: usize = arg("--per").map_or(240, |v| v.parse().unwrap());
    let keep: u64 = arg("--keep").map_or(1000, |v| v.parse().unwrap());
    let database = support::Database::fresh(arg("--database-url")).await;
    let store = Store::connect(&database.url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let directory = uuid::Uuid::now_v7().to_string();
    println!(
        "scim-log-write on {}, {batches} batches of {per}, keep {keep}",
        database.backend
    );
    let mut writing = std::time::Duration::ZERO;
    for _ in 0..batches {
        let batch: Vec<Request> = (0..per).map(|_| created(&directory)).collect();
        let started = Instant::now();
        scim_requests::insert(&store, &batch, keep).await.unwrap();
        writing += started.elapsed();
    }
    let requests = batches * per;
    if requests > 0 {
        println!(
            "{requests} requests written in {:.2} s: {:.0} requests/s, {:.1} µs a request",
            writing.as_secs_f64(),
            requests as f64 / writing.as_secs_f64(),
            writing.as_secs_f64() * 1e6 / requests as f64
        );
    }
    println!("peak RSS {:.0} MiB", peak_rss_mib());
    drop(store);
    database.finish(false).await;
}
