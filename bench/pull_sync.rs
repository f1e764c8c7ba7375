//! Pull benchmark: a fake Microsoft Graph on loopback with N users in G
//! groups, synced through the whole pull path (connector, run, engine,
//! store): a first full sync, a no-op full re-sync, then an incremental
//! (delta) sync after K users changed.
//!
//! cargo bench --bench pull_sync -- [--users N] [--groups G] [--changes K] [--database-url URL] [--keep]
//!
//! Without `--database-url` it runs on a fresh SQLite file in a temp
//! directory; with a `postgres://` URL it creates a fresh database beside it
//! and drops it afterwards (unless `--keep`). The fake runs in a child
//! process (this binary with `--serve-fake`), so the peak RSS printed is
//! dirsync's alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

#[path = "support.rs"]
mod support;
use support::peak_rss_mib;

/// The allocator `dirsync` itself runs with (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use dirsync::admin;
use dirsync::crypto::SealingKey;
use dirsync::pull::fake::{self, Org, Shared};
use dirsync::pull::run::Request;
use dirsync::store::Store;
use serde_json::Value;

fn n(run: &Value, path: &str) -> u64 {
    run["counts"]
        .pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

async fn timed(store: &Store, key: &SealingKey, label: &str, request: Request) -> (f64, Value) {
    let started = Instant::now();
    // When the run moved on from users to groups.
    let mut groups_from: Option<f64> = None;
    let run = admin::connections::sync(
        store,
        Some(key),
        "bench/graph",
        &request,
        "bench",
        &mut |p| {
            if p.groups > 0 && groups_from.is_none() {
                groups_from = Some(started.elapsed().as_secs_f64());
            }
        },
    )
    .await
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    if let Some(at) = groups_from {
        println!("  users {at:.2} s, then groups {:.2} s", secs - at);
    }
    println!(
        "{label}: {secs:.2} s  [{} {}; users {} seen, {} created, {} updated, {} unchanged; groups {} seen, {} created; members +{}]",
        run["status"].as_str().unwrap_or_default(),
        run["mode"].as_str().unwrap_or_default(),
        n(&run, "/users/seen"),
        n(&run, "/users/created"),
        n(&run, "/users/updated"),
        n(&run, "/users/unchanged"),
        n(&run, "/groups/seen"),
        n(&run, "/groups/created"),
        n(&run, "/groups/members_added"),
    );
    assert_eq!(run["status"], "succeeded", "{run:#}");
    (secs, run)
}

/// The fake Graph in a child process (this same binary with `--serve-fake`),
/// so the peak RSS measured here is dirsync's alone.
struct Fake {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    definition: Value,
}

impl Fake {
    fn spawn(users: usize, groups: usize) -> Fake {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--serve-fake", &users.to_string(), &groups.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let definition = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        Fake {
            child,
            lines,
            definition,
        }
    }

    /// `users` users change their title at the fake.
    fn change(&mut self, users: usize) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "change {users}").unwrap();
        assert_eq!(self.lines.next().unwrap().unwrap(), "ok");
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child: serve the fake, print its connection definition as one line,
/// then take `change N` commands from stdin, answering `ok`.
async fn serve_fake(users: usize, groups: usize) {
    let shared = Shared::new(Org::generate(users, groups, 7));
    let credentials = fake::graph::Credentials::default();
    let running = fake::graph::start(shared.clone(), credentials.clone()).unwrap();
    println!("{}", fake::graph::dev_connection(&running, &credentials));
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        for line in std::io::stdin().lines() {
            let Some(n) = line
                .unwrap()
                .strip_prefix("change ")
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            let mut directory = shared.directory_mut();
            let ids: Vec<String> = directory
                .users
                .iter()
                .take(n)
                .map(|u| u.id.clone())
                .collect();
            for id in ids {
                directory.update_user(&id, |u| u.title = "Principal Engineer".into());
            }
            drop(directory);
            println!("ok");
            std::io::stdout().flush().unwrap();
        }
    })
    .await
    .unwrap();
    drop(running);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-fake") {
        let users = args[i + 1].parse().unwrap();
        let groups = args[i + 2].parse().unwrap();
        return serve_fake(users, groups).await;
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let users: usize = arg("--users").map_or(100_000, |v| v.parse().unwrap());
    let groups: usize = arg("--groups").map_or(500, |v| v.parse().unwrap());
    let changes: usize = arg("--changes").map_or(1_000, |v| v.parse().unwrap());
    // Keep the PostgreSQL database afterwards (to EXPLAIN against it).
    let keep = args.iter().any(|a| a == "--keep");
    let database = support::Database::fresh(arg("--database-url")).await;
    let (url, backend) = (database.url.clone(), database.backend);
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    admin::create_tenant(&store, "bench").await.unwrap();

    let mut fake = Fake::spawn(users, groups);
    let key = SealingKey::parse(SealingKey::generate().expose()).unwrap();
    let mut definition = fake.definition.clone();
    definition["schedule"] = serde_json::json!({"enabled": false});
    admin::connections::create(
        &store,
        Some(&key),
        "bench",
        "graph",
        serde_json::from_value(definition).unwrap(),
    )
    .await
    .unwrap();
    println!(
        "pull-sync from a fake Microsoft Graph on {backend}: {users} users in {groups} groups"
    );

    let (first, run) = timed(&store, &key, "first full sync", Request::manual()).await;
    assert_eq!(n(&run, "/users/created") as usize, users);
    let (again, run) = timed(&store, &key, "no-op full re-sync", Request::manual()).await;
    assert_eq!(n(&run, "/users/unchanged") as usize, users);

    fake.change(changes);
    let incremental = Request {
        incremental: true,
        ..Request::manual()
    };
    let (delta, run) = timed(&store, &key, "incremental (delta) sync", incremental).await;
    assert_eq!(n(&run, "/users/updated") as usize, changes);
    println!(
        "summary {backend}: first {first:.2} s, no-op {again:.2} s, delta of {changes} {delta:.2} s, peak RSS {:.1} MiB",
        peak_rss_mib()
    );
    drop(fake);
    drop(store);
    database.finish(keep).await;
}
