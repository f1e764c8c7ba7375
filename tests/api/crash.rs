//! `kill -9` of a running `dirsync sync`: its connection is free again
//! within the lease (`--pull-lease-ttl`), and its run ends `failed` with the
//! counts its pages committed and its `sync.run.finished` event, closed by
//! whoever comes next: the next run, or the server's scheduler tick.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dirsync::admin::{self, AdminError};
use dirsync::config::ServerSettings;
use dirsync::crypto::SealingKey;
use dirsync::domain::limits::TEXT_BYTES;
use dirsync::pull::connector::Definition;
use dirsync::pull::fake::{Org, Shared};
use dirsync::pull::retry::Pacing;
use dirsync::pull::run::Request;
use dirsync::pull::scheduler;
use dirsync::store::pull::Run;
use rstest::rstest;
use serde_json::json;

use crate::helpers::spawn_app_keyed;
use crate::pull::{Provider, start_fake};

/// The lease the killed process held: the test waits at most about this.
const LEASE: Duration = Duration::from_secs(3);

/// Poll `check` every 50 ms until it gives a value, for at most `limit`.
async fn until<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Clone, Copy)]
enum Closer {
    /// The next `dirsync sync`-like run takes the lease once it lapsed.
    NextRun,
    /// The server's scheduler tick, with nothing due.
    SchedulerTick,
}

#[rstest]
#[case::by_the_next_run(Closer::NextRun)]
#[case::by_the_scheduler_tick(Closer::SchedulerTick)]
#[tokio::test]
async fn a_killed_sync_frees_its_connection_within_the_lease_and_its_run_fails_with_its_counts_and_event(
    #[case] closer: Closer,
) {
    let secret = SealingKey::generate();
    let key = SealingKey::parse(secret.expose()).unwrap();
    let app = spawn_app_keyed(ServerSettings::for_tests(), Some(key.clone())).await;
    // Two pages of users (Graph's $top is 999), each a second late: the run
    // commits the first and waits on the second.
    // The first page's first user has a title past its cap: the drop is
    // counted with the page that commits it.
    let mut org = Org::generate(1500, 0, 13);
    org.users[0].title = "T".repeat(TEXT_BYTES + 1);
    let shared = Shared::new(org);
    shared.faults.pace(Duration::from_secs(1));
    let (_fake, mut definition) = start_fake(Provider::Entra, shared.clone());
    definition["schedule"] = json!({"enabled": false});
    let definition: Definition = serde_json::from_value(definition).unwrap();
    let view = admin::connections::create(&app.store, Some(&key), &app.tenant, "crash", definition)
        .await
        .unwrap();
    let directory = view.directory_id;

    let mut child = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["sync", &directory])
        .env("DIRSYNC_DATABASE_URL", &app.db_url)
        .env("DIRSYNC_SECRET_KEY", secret.expose())
        .env("DIRSYNC_PULL_LEASE_TTL", format!("{}s", LEASE.as_secs()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Mid-way: a page of users committed, the run still running.
    let (store, dir, key) = (&app.store, directory.as_str(), &key);
    until(Duration::from_secs(120), || async move {
        let run = store.runs_of(dir, 1).await.unwrap().pop()?;
        (run.counts["users"]["created"].as_u64()? > 0).then_some(())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = Instant::now();
    let killed: Run = store.runs_of(&directory, 1).await.unwrap().pop().unwrap();
    assert_eq!(killed.status, "running");
    let created = killed.counts["users"]["created"].as_u64().unwrap();
    // The record shows what committed: every user it counts exists.
    assert_eq!(app.app_users().await.len() as u64, created);
    assert!(created < 1500, "the run got through: {}", killed.counts);
    assert_eq!(killed.counts["values_dropped"], 1, "{}", killed.counts);

    shared.faults.pace(Duration::ZERO);
    let next: Run = match closer {
        Closer::NextRun => {
            until(LEASE * 3, || async move {
                let started = admin::connections::sync(
                    store,
                    Some(key),
                    dir,
                    &Request::manual(),
                    "the-next-run",
                    &mut |_| {},
                )
                .await;
                match started {
                    Ok(run) => Some(store.run(run["id"].as_str().unwrap()).await.unwrap()),
                    Err(AdminError::Busy(_)) => None,
                    Err(other) => panic!("{other}"),
                }
            })
            .await
        }
        Closer::SchedulerTick => {
            let killed_id = killed.id.as_str();
            until(LEASE * 3, || async move {
                let ran = scheduler::tick(store, Some(key), "a-replica", &Pacing::default())
                    .await
                    .unwrap();
                assert!(ran.is_empty(), "nothing is due");
                let run = store.run(killed_id).await.unwrap();
                (run.status != "running").then_some(run)
            })
            .await
        }
    };
    let waited = killed_at.elapsed();
    assert!(
        waited <= LEASE + Duration::from_secs(2),
        "the connection was held {waited:?} after the kill"
    );
    if let Closer::NextRun = closer {
        assert_eq!(next.status, "succeeded", "{:?}", next.errors);
        assert_eq!(next.counts["users"]["seen"], 1500);
    }

    let failed = store.run(&killed.id).await.unwrap();
    assert_eq!(failed.status, "failed");
    assert!(failed.finished_at.is_some());
    assert_eq!(failed.counts, killed.counts);
    assert_eq!(failed.errors[0]["kind"], "worker");
    let events = app.events_after(0).await;
    let finished: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "sync.run.finished" && e["resource_id"] == killed.id.as_str())
        .collect();
    assert_eq!(finished.len(), 1, "{events:?}");
    assert_eq!(finished[0]["data"]["run"]["status"], "failed");
    assert_eq!(finished[0]["data"]["run"]["counts"], killed.counts);
}
