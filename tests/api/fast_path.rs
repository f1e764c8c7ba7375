//! The engine's no-op fast path (a change that says again what a link last
//! took, judged under the same policy for an app user that has not moved
//! since, is `unchanged` without planning) never changes an answer: any
//! sequence of pages from two directories, admin actions and policy changes
//! ends in the same app users, links and events as the same sequence with
//! every link's stamp wiped before each step (so every change takes the
//! full path).

use std::collections::BTreeMap;

use dirsync::admin::PolicyChange;
use dirsync::reconcile::apply::{Options, UserChange};
use dirsync::reconcile::host::Action;
use dirsync::reconcile::model::{Change, Profile, Snapshot};
use dirsync::reconcile::policy::{OnDelete, OnMissing};
use dirsync::reconcile::unit::Unit;
use proptest::prelude::*;
use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

const PEOPLE: usize = 3;

#[derive(Debug, Clone)]
enum Said {
    Upsert {
        email: usize,
        active: bool,
        name: usize,
    },
    Removed,
    Missing,
}

#[derive(Debug, Clone)]
enum Step {
    /// A page from directory 0 or 1: (person, what the directory says).
    Page(usize, Vec<(usize, Said)>),
    Admin(usize, Action),
    OnDelete(usize, OnDelete),
    OnMissing(usize, OnMissing),
}

fn said() -> impl Strategy<Value = Said> {
    prop_oneof![
        6 => (0..PEOPLE, any::<bool>(), 0..2usize)
            .prop_map(|(email, active, name)| Said::Upsert { email, active, name }),
        1 => Just(Said::Removed),
        1 => Just(Said::Missing),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let action = prop_oneof![
        Just(Action::Deactivate),
        Just(Action::Reactivate),
        Just(Action::SetRole("admin".into())),
    ];
    let step = prop_oneof![
        6 => (0..2usize, proptest::collection::vec((0..PEOPLE, said()), 1..4))
            .prop_map(|(d, page)| Step::Page(d, page)),
        1 => (0..PEOPLE, action).prop_map(|(p, a)| Step::Admin(p, a)),
        1 => (0..2usize, prop_oneof![Just(OnDelete::Deactivate), Just(OnDelete::Delete)])
            .prop_map(|(d, o)| Step::OnDelete(d, o)),
        1 => (0..2usize, prop_oneof![Just(OnMissing::Deactivate), Just(OnMissing::Ignore)])
            .prop_map(|(d, o)| Step::OnMissing(d, o)),
    ];
    // Pages repeat what they said before often enough to hit the fast path.
    proptest::collection::vec(step, 1..20).prop_flat_map(|steps| {
        let n = steps.len();
        (Just(steps), proptest::collection::vec(0..n, 0..10)).prop_map(|(mut steps, again)| {
            for i in again {
                let repeat = steps[i].clone();
                steps.push(repeat);
            }
            steps
        })
    })
}

fn snapshot(email: usize, active: bool, name: usize) -> Snapshot {
    Snapshot {
        external_id: None,
        email: Some(format!("p{email}@example.com")),
        profile: Profile {
            given_name: Some(format!("Name{name}")),
            ..Profile::default()
        },
        active,
        groups: Vec::new(),
        ..Default::default()
    }
}

/// App users by email, links by (directory, person), events (type, changed).
type Ended = (
    BTreeMap<String, Value>,
    Vec<(usize, String, bool, bool)>,
    Vec<(String, Value)>,
);

async fn run(steps: &[Step], full_path_only: bool) -> Ended {
    let app = spawn_app().await;
    let (other, _) = app.other_directory(false).await;
    let dirs = [app.directory_id.clone(), other];
    let start = app.last_seq().await;
    for (i, step) in steps.iter().enumerate() {
        if full_path_only {
            app.store
                .connection()
                .execute_unprepared("UPDATE user_links SET judged = NULL")
                .await
                .unwrap();
        }
        match step {
            Step::Page(d, page) => {
                let mut unit = Unit::begin(&app.store, chrono::Utc::now().timestamp_millis())
                    .await
                    .unwrap();
                let dir = unit.directory(&dirs[*d]).await.unwrap();
                let changes = page
                    .iter()
                    .map(|(p, said)| UserChange {
                        source_id: format!("person-{p}"),
                        change: match said {
                            Said::Upsert {
                                email,
                                active,
                                name,
                            } => Change::upsert(snapshot(*email, *active, *name)),
                            Said::Removed => Change::Removed,
                            Said::Missing => Change::Missing,
                        },
                    })
                    .collect();
                let said = format!("step {i} (full path only: {full_path_only})");
                unit.users(&dir, changes, Options::default())
                    .await
                    .expect(&said);
                unit.commit().await.expect(&said);
                one_live_link_per_user(&app).await.expect(&said);
            }
            Step::Admin(p, action) => {
                // Refused when nobody has that address (yet): fine.
                let _ = dirsync::admin::user_action(
                    &app.store,
                    &app.tenant,
                    &format!("p{p}@example.com"),
                    action.clone(),
                )
                .await;
            }
            Step::OnDelete(d, on_delete) => {
                let change = PolicyChange {
                    on_delete: Some(*on_delete),
                    ..PolicyChange::default()
                };
                dirsync::admin::update_policy(&app.store, &dirs[*d], change)
                    .await
                    .unwrap();
            }
            Step::OnMissing(d, on_missing) => {
                let change = PolicyChange {
                    on_missing: Some(*on_missing),
                    ..PolicyChange::default()
                };
                dirsync::admin::update_policy(&app.store, &dirs[*d], change)
                    .await
                    .unwrap();
            }
        }
    }
    ended(&app, &dirs, start).await
}

async fn ended(app: &TestApp, dirs: &[String; 2], start: i64) -> Ended {
    let keep = [
        "email",
        "status",
        "deactivated_by",
        "role",
        "given_name",
        "has_signed_in",
    ];
    let users: BTreeMap<String, Value> = app
        .app_users()
        .await
        .into_iter()
        .map(|u| {
            let email = u["email"].as_str().unwrap_or_default().to_owned();
            let picked: serde_json::Map<String, Value> = keep
                .iter()
                .map(|k| ((*k).to_owned(), u[*k].clone()))
                .collect();
            (email, Value::Object(picked))
        })
        .collect();
    let rows = app
        .store
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            app.store.connection().get_database_backend(),
            "SELECT directory_id, source_id, directory_active, removed_at IS NOT NULL AS removed \
             FROM user_links ORDER BY directory_id, source_id",
        ))
        .await
        .unwrap();
    let links = rows
        .iter()
        .map(|r| {
            let d: String = r.try_get("", "directory_id").unwrap();
            let s: String = r.try_get("", "source_id").unwrap();
            let active: bool = r.try_get("", "directory_active").unwrap();
            let removed: bool = r.try_get("", "removed").unwrap();
            (usize::from(d == dirs[1]), s, active, removed)
        })
        .collect();
    let events = app
        .events_after(start)
        .await
        .into_iter()
        .map(|e| {
            (
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap_or_default(),
                    e["data"]["user"]["email"].as_str().unwrap_or_default()
                ),
                e["data"]["changed"].clone(),
            )
        })
        .collect();
    (users, links, events)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn the_fast_path_answers_as_the_full_path_does(steps in steps()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (fast, full) = runtime.block_on(async {
            (run(&steps, false).await, run(&steps, true).await)
        });
        prop_assert_eq!(&fast.0, &full.0, "app users");
        prop_assert_eq!(&fast.1, &full.1, "links");
        prop_assert_eq!(&fast.2, &full.2, "events");
    }
}

/// The fast path is taken: a page that says again what every link took
/// writes nothing at all (not even the links), and its users come out
/// `unchanged`.
#[tokio::test]
async fn a_page_said_again_writes_nothing() {
    let app = spawn_app().await;
    let page = || -> Vec<UserChange> {
        (0..PEOPLE)
            .map(|p| UserChange {
                source_id: format!("person-{p}"),
                change: Change::upsert(snapshot(p, true, 0)),
            })
            .collect()
    };
    for _ in 0..2 {
        let mut unit = Unit::begin(&app.store, chrono::Utc::now().timestamp_millis())
            .await
            .unwrap();
        let dir = unit.directory(&app.directory_id).await.unwrap();
        unit.users(&dir, page(), Options::default()).await.unwrap();
        unit.commit().await.unwrap();
    }
    let stamped = |sql: &'static str| {
        let app = &app;
        async move {
            app.store
                .connection()
                .query_one_raw(sea_orm::Statement::from_string(
                    app.store.connection().get_database_backend(),
                    sql,
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap()
        }
    };
    assert_eq!(
        stamped("SELECT COUNT(*) AS n FROM user_links WHERE judged IS NOT NULL").await,
        PEOPLE as i64,
        "each link records what it was judged under"
    );
    // Mark the links: a write of any of them would overwrite the mark.
    app.store
        .connection()
        .execute_unprepared("UPDATE user_links SET updated_at = -1")
        .await
        .unwrap();
    let seq = app.last_seq().await;
    let mut unit = Unit::begin(&app.store, chrono::Utc::now().timestamp_millis())
        .await
        .unwrap();
    let dir = unit.directory(&app.directory_id).await.unwrap();
    let batch = unit.users(&dir, page(), Options::default()).await.unwrap();
    unit.commit().await.unwrap();
    assert!(
        batch
            .applied
            .iter()
            .all(|a| a.outcome.as_str() == "unchanged"),
        "{:?}",
        batch.applied
    );
    assert_eq!(
        batch
            .applied
            .iter()
            .map(|a| a.source_id.clone())
            .collect::<Vec<_>>(),
        (0..PEOPLE)
            .map(|p| format!("person-{p}"))
            .collect::<Vec<_>>(),
        "in the page's order"
    );
    assert_eq!(app.last_seq().await, seq, "no event");
    assert_eq!(
        stamped("SELECT COUNT(*) AS n FROM user_links WHERE updated_at = -1").await,
        PEOPLE as i64,
        "no link written"
    );
}

/// Sequences where a stamp left alone would answer wrongly: a user missing
/// from a listing (an admin had deactivated them, so the app user does not
/// move) comes back saying what it said before; and one person in two
/// directories.
#[tokio::test]
async fn what_the_fast_path_must_not_skip() {
    let up = |email, active| Said::Upsert {
        email,
        active,
        name: 0,
    };
    let cases = [
        vec![
            Step::Page(0, vec![(0, up(0, true))]),
            Step::Admin(0, Action::Deactivate),
            Step::Page(0, vec![(0, up(0, true))]),
            Step::OnMissing(0, OnMissing::Deactivate),
            Step::Page(0, vec![(0, Said::Missing)]),
            Step::Page(0, vec![(0, up(0, true))]),
        ],
        vec![
            Step::Page(0, vec![(0, up(0, true))]),
            Step::Page(1, vec![(0, up(0, true))]),
            Step::Page(0, vec![(0, up(0, false))]),
            Step::Page(1, vec![(0, Said::Removed)]),
            Step::Page(0, vec![(0, up(0, false))]),
        ],
    ];
    for steps in cases {
        let (fast, full) = (run(&steps, false).await, run(&steps, true).await);
        assert_eq!(fast, full, "{steps:?}");
    }
}

/// A removal said again, after the policy turned to delete, is about nobody:
/// it must not delete the user its removed link once named while another
/// user of the same page adopts that user by address (it did: a foreign-key
/// failure on the whole page, found by the property test above).
#[tokio::test]
async fn a_removal_said_again_deletes_nobody_another_user_of_the_page_adopts() {
    let up = |email, active, name| Said::Upsert {
        email,
        active,
        name,
    };
    let steps = vec![
        Step::Page(0, vec![(1, up(1, true, 0)), (0, up(0, true, 0))]),
        Step::Page(1, vec![(2, up(0, true, 0)), (1, up(2, false, 1))]),
        Step::Page(1, vec![(1, Said::Removed)]),
        Step::OnDelete(1, OnDelete::Delete),
        Step::Page(
            1,
            vec![(1, Said::Removed), (0, up(2, true, 0)), (2, up(2, true, 1))],
        ),
    ];
    let full = run(&steps, true).await;
    let (users, _, events) = &full;
    let adopted = &users["p2@example.com"];
    // Kept, not deactivated, and now person-0's (its profile).
    assert_eq!(adopted["status"], "PENDING", "{users:?}");
    assert_eq!(adopted["given_name"], "Name0", "{users:?}");
    assert!(
        events.iter().all(|(t, _)| t != "user.deleted"),
        "{events:?}"
    );
    assert_eq!(run(&steps, false).await, full);
}

/// Found by the property above (its shrunk case): a directory user whose
/// link was removed comes back with the address its old app user holds,
/// in the same page that releases another directory user's change waiting
/// for that address. The returning user takes their app user back; the
/// waiting one keeps waiting (never two live links of one directory to one
/// app user, which the next page's writes then tripped over as a UNIQUE
/// violation on the address).
#[tokio::test]
async fn a_returning_user_and_a_change_waiting_for_their_address_keep_one_link_each() {
    use Said::*;
    let u = |email, active, name| Upsert {
        email,
        active,
        name,
    };
    let steps = vec![
        Step::Page(
            1,
            vec![(0, u(0, false, 1)), (0, u(2, false, 1)), (2, u(0, true, 1))],
        ),
        Step::Page(
            1,
            vec![(2, u(0, true, 1)), (1, u(2, false, 0)), (0, u(2, false, 0))],
        ),
        Step::Page(1, vec![(2, u(2, true, 1)), (0, Removed)]),
        Step::Page(1, vec![(2, u(0, false, 0)), (0, u(2, true, 1))]),
        Step::Page(
            1,
            vec![(0, u(2, true, 0)), (0, u(0, false, 0)), (1, u(2, true, 0))],
        ),
        Step::Page(1, vec![(2, u(2, true, 1)), (0, Removed)]),
        Step::Page(
            1,
            vec![(0, u(2, true, 0)), (0, u(0, false, 0)), (1, u(2, true, 0))],
        ),
    ];
    let full = run(&steps, true).await;
    let fast = run(&steps, false).await;
    assert_eq!(fast, full);
}

/// A directory user whose link was removed, and whose app user another
/// directory user of the same directory took by address since, comes back
/// as a new user: their change waits for the address, and the app user
/// keeps the one link it has.
#[tokio::test]
async fn a_returning_user_whose_app_user_was_taken_since_waits_for_the_address() {
    use Said::*;
    let u = |email, active, name| Upsert {
        email,
        active,
        name,
    };
    let steps = vec![
        Step::Page(0, vec![(0, u(0, true, 0))]),
        Step::Page(0, vec![(0, Removed)]),
        Step::Page(0, vec![(1, u(0, true, 1))]),
        Step::Page(0, vec![(0, u(0, true, 0))]),
    ];
    let (users, links, _) = run(&steps, true).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users["p0@example.com"]["given_name"], "Name1", "{users:?}");
    let live: Vec<_> = links
        .iter()
        .filter(|l| !l.3)
        .map(|l| l.1.as_str())
        .collect();
    assert_eq!(live, ["person-1"], "{links:?}");
}

/// The engine's invariant: one live link of a directory per app user.
async fn one_live_link_per_user(app: &TestApp) -> Result<(), String> {
    let rows = app
        .store
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            app.store.connection().get_database_backend(),
            "SELECT directory_id, app_user_id, COUNT(*) AS n FROM user_links \
             WHERE removed_at IS NULL GROUP BY directory_id, app_user_id HAVING COUNT(*) > 1",
        ))
        .await
        .map_err(|e| e.to_string())?;
    if rows.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} app users with two live links of one directory",
            rows.len()
        ))
    }
}
