//! The engine without HTTP: one snapshot, or a complete listing fed page by
//! page, as the pull worker will call it.

use dirsync::admin::PolicyChange;
use dirsync::reconcile::host::Action;
use dirsync::reconcile::listing::{self, Listing, ListingOptions, ListingStatus};
use dirsync::reconcile::model::{
    Change, GroupChange, GroupOutcome, GroupSnapshot, Outcome, Profile, Snapshot,
};
use dirsync::reconcile::policy::OnMissing;
use proptest::prelude::*;

use crate::helpers::{TestApp, spawn_app};

const NOW: i64 = 1_800_000_000_000;

fn snapshot(n: usize, given: &str, active: bool) -> Snapshot {
    Snapshot {
        external_id: Some(format!("ext-{n}")),
        email: Some(format!("user{n}@example.com")),
        profile: Profile {
            given_name: Some(given.into()),
            department: Some("Sales".into()),
            ..Profile::default()
        },
        active,
        groups: Vec::new(),
        ..Default::default()
    }
}

fn listing_of(range: std::ops::Range<usize>) -> Vec<(String, Snapshot)> {
    range
        .map(|n| (format!("src-{n}"), snapshot(n, "Given", true)))
        .collect()
}

async fn run(
    app: &TestApp,
    users: Vec<(String, Snapshot)>,
    options: ListingOptions,
) -> listing::Report {
    let mut run = Listing::begin(&app.store, &app.directory_id, options)
        .await
        .unwrap();
    run.page(&app.store, users, NOW).await.unwrap();
    run.finish(&app.store, true, NOW).await.unwrap()
}

async fn statuses(app: &TestApp) -> Vec<String> {
    app.app_users()
        .await
        .iter()
        .map(|u| u["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_first_import_creates_and_an_identical_second_one_is_all_unchanged_without_events() {
    let app = spawn_app().await;
    let first = run(&app, listing_of(0..1200), ListingOptions::default()).await;
    assert_eq!(first.status, ListingStatus::Applied);
    assert_eq!((first.counts.seen, first.counts.created), (1200, 1200));
    assert_eq!(app.last_seq().await, 1200);
    let second = run(&app, listing_of(0..1200), ListingOptions::default()).await;
    assert_eq!((second.counts.unchanged, second.counts.created), (1200, 0));
    assert_eq!(app.last_seq().await, 1200, "a no-op run emits nothing");
}

#[tokio::test]
async fn re_import_refreshes_the_profile_but_never_role_or_invitation_status() {
    let app = spawn_app().await;
    run(&app, listing_of(0..3), ListingOptions::default()).await;
    app.act("user1@example.com", Action::SetRole("owner".into()))
        .await;
    app.act("user1@example.com", Action::SignedIn).await;
    let mut users = listing_of(0..3);
    users[1].1.profile.given_name = Some("Renamed".into());
    users[1].1.profile.avatar_url = Some("https://img.example.com/1.png".into());
    let report = run(&app, users, ListingOptions::default()).await;
    assert_eq!((report.counts.updated, report.counts.unchanged), (1, 2));
    let user = app.app_user("user1@example.com").await.unwrap();
    assert_eq!(user["given_name"], "Renamed");
    assert_eq!(user["avatar_url"], "https://img.example.com/1.png");
    assert_eq!(
        (user["role"].as_str(), user["status"].as_str()),
        (Some("owner"), Some("ACTIVE"))
    );
}

#[tokio::test]
async fn users_missing_from_a_complete_listing_follow_on_missing() {
    let app = spawn_app().await;
    run(&app, listing_of(0..10), ListingOptions::default()).await;
    let report = run(&app, listing_of(0..9), ListingOptions::default()).await;
    assert_eq!((report.counts.deactivated, report.counts.missing), (1, 1));
    let user = app.app_user("user9@example.com").await.unwrap();
    assert_eq!(
        (user["status"].as_str(), user["deactivated_by"].as_str()),
        (Some("DEACTIVATED"), Some("directory"))
    );
    // Back in the listing: restored.
    let report = run(&app, listing_of(0..10), ListingOptions::default()).await;
    assert_eq!(report.counts.reactivated, 1);

    app.set_policy(PolicyChange {
        on_missing: Some(OnMissing::Ignore),
        ..PolicyChange::default()
    })
    .await;
    let report = run(&app, listing_of(0..9), ListingOptions::default()).await;
    assert_eq!(report.counts.deactivated, 0);
    assert_eq!((report.counts.missing, report.counts.unchanged), (1, 9));
    assert!(statuses(&app).await.iter().all(|s| s == "PENDING"));
}

#[tokio::test]
async fn an_incomplete_listing_deactivates_no_one() {
    let app = spawn_app().await;
    run(&app, listing_of(0..10), ListingOptions::default()).await;
    let mut users = listing_of(0..5);
    users[0].1.active = false;
    let mut partial = Listing::begin(&app.store, &app.directory_id, ListingOptions::default())
        .await
        .unwrap();
    partial.page(&app.store, users, NOW).await.unwrap();
    let report = partial.finish(&app.store, false, NOW).await.unwrap();
    assert_eq!(report.status, ListingStatus::Incomplete);
    assert!(statuses(&app).await.iter().all(|s| s == "PENDING"));
}

#[tokio::test]
async fn the_mass_deactivation_guard_refuses_the_run_until_approved() {
    let app = spawn_app().await;
    run(&app, listing_of(0..10), ListingOptions::default()).await;
    // 3 of 10 missing is 30%, over the default 20%; one more says suspended.
    let mut users = listing_of(0..7);
    users[0].1.active = false;
    users[1].1.profile.given_name = Some("Still applied".into());
    let report = run(&app, users.clone(), ListingOptions::default()).await;
    assert_eq!(report.status, ListingStatus::NeedsApproval);
    assert!(report.guard_tripped);
    assert_eq!((report.deactivations, report.population), (4, 10));
    assert!(
        statuses(&app).await.iter().all(|s| s == "PENDING"),
        "nothing deactivated"
    );
    assert_eq!(
        app.app_user("user1@example.com").await.unwrap()["given_name"],
        "Still applied",
        "creations and updates still apply"
    );
    let approved = ListingOptions {
        approved: true,
        ..ListingOptions::default()
    };
    let report = run(&app, users, approved).await;
    assert_eq!(report.status, ListingStatus::Applied);
    assert_eq!(report.counts.deactivated, 4);

    app.set_policy(PolicyChange {
        max_deactivations: Some(Some(0)),
        max_deactivation_percent: Some(None),
        ..PolicyChange::default()
    })
    .await;
    let report = run(&app, listing_of(0..6), ListingOptions::default()).await;
    assert_eq!(
        report.status,
        ListingStatus::NeedsApproval,
        "a count threshold trips too"
    );
}

#[tokio::test]
async fn a_dry_run_returns_the_plan_and_writes_nothing() {
    let app = spawn_app().await;
    run(&app, listing_of(0..10), ListingOptions::default()).await;
    let before = app.last_seq().await;
    let mut users = listing_of(0..9);
    users.push(("src-new".into(), snapshot(100, "New", true)));
    let dry = ListingOptions {
        dry_run: true,
        ..ListingOptions::default()
    };
    let report = run(&app, users, dry).await;
    assert_eq!(report.status, ListingStatus::DryRun);
    assert_eq!((report.counts.created, report.counts.deactivated), (1, 1));
    assert!(report.plan.iter().any(|a| a.outcome == Outcome::Created));
    assert_eq!(app.last_seq().await, before);
    assert_eq!(app.app_users().await.len(), 10);
}

#[tokio::test]
async fn one_snapshot_applies_without_http() {
    let app = spawn_app().await;
    let applied = listing::apply_snapshot(
        &app.store,
        &app.directory_id,
        "src-1",
        Change::upsert(snapshot(1, "One", true)),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(applied.outcome, Outcome::Created);
    let again = listing::apply_snapshot(
        &app.store,
        &app.directory_id,
        "src-1",
        Change::upsert(snapshot(1, "One", true)),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(app.event_types_after(0).await, ["user.created"]);
}

/// A step a directory can take for one of three users.
fn steps() -> impl Strategy<Value = Vec<(usize, Option<(bool, u8)>)>> {
    // (user, Some((active, name variant)) = upsert | None = removal)
    prop::collection::vec(
        (
            0usize..3,
            prop::option::weighted(0.8, (any::<bool>(), 0u8..3)),
        ),
        1..12,
    )
}

fn change_of(user: usize, step: Option<(bool, u8)>) -> Change {
    match step {
        Some((active, variant)) => {
            Change::upsert(snapshot(user, &format!("Name{variant}"), active))
        }
        None => Change::Removed,
    }
}

/// The app state without times and versions.
async fn state(app: &TestApp) -> Vec<serde_json::Value> {
    let mut users = app.app_users().await;
    for u in &mut users {
        let o = u.as_object_mut().unwrap();
        o.remove("id");
        o.remove("created_at");
        o.remove("updated_at");
    }
    users
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    /// Applying any sequence twice ends where applying it once does; every
    /// change the engine reports has exactly one event; and no sequence of
    /// directory changes lifts an admin's deactivation.
    #[test]
    fn snapshot_sequences_are_idempotent_evented_and_never_undo_an_admin(seq in steps()) {
        block_on(async {
            let once = spawn_app().await;
            let twice = spawn_app().await;
            // User 2 exists and an admin deactivated it before the sequence.
            for app in [&once, &twice] {
                listing::apply_snapshot(&app.store, &app.directory_id, "src-2", change_of(2, Some((true, 0))), NOW).await.unwrap();
                app.act("user2@example.com", Action::Deactivate).await;
            }
            let mut changes = 0;
            let base = once.last_seq().await;
            for (user, step) in &seq {
                let applied = listing::apply_snapshot(&once.store, &once.directory_id, &format!("src-{user}"), change_of(*user, *step), NOW).await.unwrap();
                if !matches!(applied.outcome, Outcome::Unchanged | Outcome::Skipped(_) | Outcome::Conflict(_)) {
                    changes += 1;
                }
            }
            prop_assert_eq!(once.last_seq().await - base, changes, "one event per change");
            for _ in 0..2 {
                for (user, step) in &seq {
                    listing::apply_snapshot(&twice.store, &twice.directory_id, &format!("src-{user}"), change_of(*user, *step), NOW).await.unwrap();
                }
            }
            prop_assert_eq!(state(&once).await, state(&twice).await);
            let admin_deactivated = once.app_user("user2@example.com").await.unwrap();
            prop_assert_eq!(admin_deactivated["status"].as_str(), Some("DEACTIVATED"));
            prop_assert_eq!(admin_deactivated["deactivated_by"].as_str(), Some("admin"));
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_group_snapshot_with_its_members_applies_without_http() {
    let app = spawn_app().await;
    run(&app, listing_of(0..3), ListingOptions::default()).await;
    let snapshot = |name: &str| {
        GroupChange::Upsert(GroupSnapshot {
            name: name.into(),
            external_id: Some("grp-1".into()),
        })
    };
    let members = ["src-0".to_owned(), "src-1".to_owned()];
    let outcome = listing::apply_group_snapshot(
        &app.store,
        &app.directory_id,
        "g-1",
        snapshot("Sales"),
        Some(&members),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(outcome, GroupOutcome::Created);
    let mut expected = Vec::new();
    for n in [0, 1] {
        expected.push(app.app_user(&format!("user{n}@example.com")).await.unwrap()["id"].clone());
    }
    expected.sort_by_key(|v| v.as_str().unwrap().to_owned());
    assert_eq!(
        app.app_groups().await[0]["members"],
        serde_json::Value::Array(expected)
    );

    let before = app.last_seq().await;
    let again = listing::apply_group_snapshot(
        &app.store,
        &app.directory_id,
        "g-1",
        snapshot("Sales"),
        Some(&members),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(again, GroupOutcome::Unchanged);
    assert_eq!(
        app.last_seq().await,
        before,
        "an identical group snapshot emits nothing"
    );

    let members = ["src-1".to_owned(), "src-2".to_owned()];
    listing::apply_group_snapshot(
        &app.store,
        &app.directory_id,
        "g-1",
        snapshot("Sales EMEA"),
        Some(&members),
        NOW,
    )
    .await
    .unwrap();
    let mut types = app.event_types_after(before).await;
    types.sort();
    assert_eq!(
        types,
        [
            "group.member_added",
            "group.member_removed",
            "group.updated"
        ]
    );

    let removed = listing::apply_group_snapshot(
        &app.store,
        &app.directory_id,
        "g-1",
        GroupChange::Removed,
        None,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(removed, GroupOutcome::Deleted);
    assert!(app.app_groups().await.is_empty());
}
