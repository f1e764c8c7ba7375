//! Pulling from the fake Microsoft Graph through the engine, without HTTP on
//! dirsync's side: the connector, the listing and the rules end to end.

use dirsync::crypto::Secret;
use dirsync::pull::PullError;
use dirsync::pull::fake::{self, Directory};
use dirsync::pull::graph::{Config, Graph};
use dirsync::pull::sync_graph_users;
use dirsync::reconcile::listing::{ListingOptions, RunStatus};

use crate::helpers::spawn_app;

const NOW: i64 = 1_800_000_000_000;

fn config(fake: &fake::Running, secret: &str) -> Config {
    Config {
        authority_base: fake.base_url.clone(),
        graph_base: fake.graph_base(),
        tenant_id: "contoso".into(),
        client_id: "app-1".into(),
        client_secret: Secret::new(secret.into()),
    }
}

fn start(directory: Directory) -> fake::Running {
    fake::graph::start(
        fake::Shared::new(directory),
        fake::graph::Credentials {
            tenant_id: "contoso".into(),
            client_id: "app-1".into(),
            client_secret: Secret::new("s3cret".into()),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_first_graph_sync_imports_everyone_and_a_second_changes_nothing() {
    let app = spawn_app().await;
    let directory = Directory::generate(1500, 3, 11);
    let disabled = directory.users.iter().filter(|u| !u.active).count();
    let fake = start(directory);
    let mut graph = Graph::new(config(&fake, "s3cret"));

    let first = sync_graph_users(
        &app.store,
        &app.directory_id,
        &mut graph,
        ListingOptions::default(),
        NOW,
    )
    .await
    .unwrap();
    assert!(first.error.is_none());
    assert_eq!(first.report.status, RunStatus::Applied);
    assert_eq!(
        (first.report.counts.seen, first.report.counts.created),
        (1500, 1500)
    );
    let users = app.app_users().await;
    assert_eq!(users.len(), 1500);
    assert_eq!(
        users
            .iter()
            .filter(|u| u["status"] == "DEACTIVATED")
            .count(),
        disabled,
        "accountEnabled=false arrives deactivated by the directory"
    );
    let events = app.last_seq().await;

    let second = sync_graph_users(
        &app.store,
        &app.directory_id,
        &mut graph,
        ListingOptions::default(),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(
        (second.report.counts.unchanged, second.report.counts.created),
        (1500, 0)
    );
    assert_eq!(app.last_seq().await, events, "a no-op sync emits nothing");
}

#[tokio::test]
async fn a_bad_client_secret_fails_with_entras_reason_and_changes_nothing() {
    let app = spawn_app().await;
    let fake = start(Directory::generate(5, 1, 3));
    let mut graph = Graph::new(config(&fake, "wrong"));
    let outcome = sync_graph_users(
        &app.store,
        &app.directory_id,
        &mut graph,
        ListingOptions::default(),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(outcome.report.status, RunStatus::Incomplete);
    match outcome.error {
        Some(PullError::Auth(why)) => assert!(why.starts_with("AADSTS7000215"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(app.app_users().await.is_empty());
}
