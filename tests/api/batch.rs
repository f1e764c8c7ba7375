//! Group commit (`reconcile::unit::Writer`): writes queued while a
//! transaction commits go together in the next. A refused write, or one
//! that fails after writing, undoes only itself (its batch runs again
//! without it, each write in a savepoint); its neighbours commit together,
//! with their events.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use dirsync::reconcile::apply::UserChange;
use dirsync::reconcile::model::{Change, GroupChange, Outcome, Snapshot};
use dirsync::reconcile::unit::{Unit, Writer};
use dirsync::store::StoreError;
use dirsync::store::mirror::groups;
use dirsync::store::mirror::users::{self as mirror, MirrorUser};

use crate::helpers::{TestApp, spawn_app};

fn row(app: &TestApp, name: &str) -> MirrorUser {
    row_in(&app.directory_id, name)
}

/// Write the mirror row and hand the user to the engine for the commit.
async fn create(unit: &mut Unit, user: MirrorUser) -> Result<i64, StoreError> {
    let saved = mirror::insert_user(unit.conn(), user).await?;
    let snapshot = Snapshot {
        email: saved.primary_email.clone(),
        active: true,
        ..Snapshot::default()
    };
    unit.user_later(
        &saved.directory_id,
        UserChange {
            source_id: saved.id.clone(),
            change: Change::upsert(snapshot),
        },
    );
    Ok(unit.now())
}

type Answer = Result<(i64, Vec<dirsync::reconcile::apply::Applied>), StoreError>;

/// Queue a create (and, with `fail_after`, a refusal after it wrote).
fn queue(writer: &Writer, user: MirrorUser, fail_after: bool) -> tokio::task::JoinHandle<Answer> {
    let writer = writer.clone();
    tokio::spawn(async move {
        writer
            .write(move |unit: &mut Unit| {
                let user = user.clone();
                Box::pin(async move {
                    let now = create(unit, user).await?;
                    if fail_after {
                        return Err(StoreError::Invalid("refused after writing".into()));
                    }
                    Ok(now)
                })
            })
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_undoes_only_itself_and_its_neighbours_commit_together() {
    let app = spawn_app().await;
    app.create_user("taken@example.com").await;
    let start = app.last_seq().await;
    let writer = Writer::new(app.store.clone(), 32);

    // The first write holds the transaction until the others are queued:
    // they go together in the next.
    let (go, wait) = oneshot::channel::<()>();
    let wait = std::sync::Arc::new(std::sync::Mutex::new(Some(wait)));
    let held = {
        let writer = writer.clone();
        tokio::spawn(async move {
            writer
                .write(move |unit: &mut Unit| {
                    let wait = wait.lock().unwrap().take();
                    Box::pin(async move {
                        if let Some(wait) = wait {
                            let _ = wait.await;
                        }
                        Ok::<_, StoreError>(unit.now())
                    })
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut kept = Vec::new();
    let mut kept_ids = Vec::new();
    let mut refused = Vec::new();
    let mut push = |name: &str, fail_after: bool, keep: bool| {
        let user = row(&app, name);
        if keep {
            kept_ids.push(user.id.clone());
            kept.push(queue(&writer, user, fail_after));
        } else {
            refused.push((user.id.clone(), queue(&writer, user, fail_after)));
        }
    };
    for n in 0..3 {
        push(&format!("b{n}@example.com"), false, true);
    }
    // Its userName is taken: a unique index refuses the mirror row.
    push("taken@example.com", false, false);
    push("b3@example.com", false, true);
    // It wrote its row, then failed: its row must go too.
    push("partial@example.com", true, false);
    push("b4@example.com", false, true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    go.send(()).unwrap();
    let first = held.await.unwrap().unwrap().0;

    let mut stamps = Vec::new();
    for job in kept {
        let (now, applied) = job
            .await
            .unwrap()
            .expect("a neighbour of a refusal commits");
        assert_eq!(applied.len(), 1, "{applied:?}");
        assert_eq!(applied[0].outcome, Outcome::Created);
        stamps.push(now);
    }
    stamps.dedup();
    assert_eq!(stamps.len(), 1, "one transaction: {stamps:?}");
    assert_ne!(stamps[0], first, "not the first write's transaction");
    let (_, conflict) = refused.remove(0);
    let conflict = conflict.await.unwrap();
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "{conflict:?}"
    );
    let (partial, failed) = refused.remove(0);
    assert!(failed.await.unwrap().is_err());

    let conn = app.store.connection();
    for id in &kept_ids {
        assert!(mirror::find_user(conn, &app.directory_id, id).await.is_ok());
    }
    assert!(
        mirror::find_user(conn, &app.directory_id, &partial)
            .await
            .is_err(),
        "the write that failed after writing left its row"
    );
    let events = app.events_after(start).await;
    let mut created: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "user.created")
        .map(|e| e["data"]["user"]["email"].as_str().unwrap().to_owned())
        .collect();
    created.sort();
    let expected: Vec<String> = (0..5).map(|n| format!("b{n}@example.com")).collect();
    assert_eq!(created, expected, "{events:?}");
    assert_eq!(events.len(), 5, "no event for a refused write: {events:?}");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

/// One write of the property test, on user `0..USERS`.
#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Rename(usize, String),
    Delete(usize),
    /// The user joins, or leaves, the directory's one group.
    Join(usize),
    Leave(usize),
}

const USERS: usize = 4;

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        (0..USERS).prop_map(Op::Create),
        (0..USERS, "[a-c]").prop_map(|(u, v)| Op::Rename(u, v)),
        (0..USERS).prop_map(Op::Delete),
        (0..USERS).prop_map(Op::Join),
        (0..USERS).prop_map(Op::Leave),
    ];
    proptest::collection::vec(op, 1..24)
}

/// Run `op` as a job of `writer`: the mirror write, then the engine (the
/// SCIM edge's own functions); Ok or the refusal's kind.
async fn run_op(
    writer: &Writer,
    app: &TestApp,
    ids: &[String],
    group: &str,
    op: Op,
) -> Result<(), String> {
    let directory_id = app.directory_id.clone();
    let (ids, group) = (ids.to_vec(), group.to_owned());
    writer
        .write(move |unit: &mut Unit| {
            let (op, directory_id, ids) = (op.clone(), directory_id.clone(), ids.clone());
            let group = group.clone();
            Box::pin(async move {
                let member = |u: usize, join: bool| {
                    let id = vec![ids[u].clone()];
                    let (added, removed) = if join {
                        (id, Vec::new())
                    } else {
                        (Vec::new(), id)
                    };
                    dirsync::reconcile::model::MemberChanges { added, removed }
                };
                match op {
                    Op::Join(u) | Op::Leave(u) => {
                        let join = matches!(op, Op::Join(_));
                        mirror::find_user(unit.conn(), &directory_id, &ids[u]).await?;
                        let row = groups::find_group(unit.conn(), &directory_id, &group).await?;
                        // As the SCIM edge does: the engine hears of a
                        // membership the mirror changed, not of a no-op.
                        let changed = if join {
                            let new = groups::NewMember {
                                id: ids[u].clone(),
                                kind: groups::MemberType::User,
                                display: None,
                            };
                            let now = unit.now();
                            groups::add_members(unit.conn(), &directory_id, &group, &[new], now)
                                .await?
                        } else {
                            groups::remove_members(unit.conn(), &group, &[ids[u].clone()]).await?
                        };
                        if changed == 0 {
                            return Ok(());
                        }
                        let change = GroupChange::Upsert(dirsync::scim::snapshot::group(&row));
                        dirsync::scim::snapshot::group_changed(
                            unit,
                            &directory_id,
                            &group,
                            change,
                            member(u, join),
                        );
                    }
                    Op::Create(u) => {
                        let mut user = row_in(&directory_id, &format!("u{u}@example.com"));
                        user.id = ids[u].clone();
                        let saved = mirror::insert_user(unit.conn(), user).await?;
                        dirsync::scim::snapshot::user_written(unit, &saved);
                    }
                    Op::Rename(u, name) => {
                        let mut user =
                            mirror::find_user(unit.conn(), &directory_id, &ids[u]).await?;
                        let version = user.version;
                        user.display_name = Some(name.clone());
                        user.data["displayName"] = json!(name);
                        user.version += 1;
                        mirror::update_user(unit.conn(), &user, version).await?;
                        dirsync::scim::snapshot::user_written(unit, &user);
                    }
                    Op::Delete(u) => {
                        mirror::delete_user(unit.conn(), &directory_id, &ids[u], unit.now())
                            .await?;
                        dirsync::scim::snapshot::user_removed(unit, &directory_id, &ids[u], &[]);
                    }
                }
                Ok::<_, StoreError>(())
            })
        })
        .await
        .map(|_| ())
        .map_err(|e| {
            format!("{e}")
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
}

fn row_in(directory_id: &str, name: &str) -> MirrorUser {
    let now = chrono::Utc::now().timestamp_millis();
    MirrorUser {
        id: uuid::Uuid::now_v7().to_string(),
        directory_id: directory_id.to_owned(),
        user_name: name.to_owned(),
        user_name_folded: name.to_lowercase(),
        external_id: None,
        display_name: None,
        primary_email: Some(name.to_lowercase()),
        active: true,
        data: json!({"userName": name, "displayName": null}),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// What a user's events said, in order, by email; and the mirror, by user.
type Replayed = (
    Vec<Result<(), String>>,
    BTreeMap<String, Vec<(String, Value)>>,
    Vec<Option<(String, Option<String>)>>,
);

async fn replay(ops: &[Op], batched: bool) -> Replayed {
    let app = spawn_app().await;
    let start = app.last_seq().await;
    let ids: Vec<String> = (0..USERS)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let group = app.create_group("Team", &[]).await;
    let start = start.max(app.last_seq().await);
    let results = if batched {
        let writer = Writer::new(app.store.clone(), 32);
        // Polled in order, each queues at once: one batch, in this order.
        join_all(
            ops.iter()
                .map(|op| run_op(&writer, &app, &ids, &group, op.clone())),
        )
        .await
    } else {
        let writer = Writer::new(app.store.clone(), 1);
        let mut results = Vec::new();
        for op in ops {
            results.push(run_op(&writer, &app, &ids, &group, op.clone()).await);
        }
        results
    };
    // Each user's events by its email: its own, and its memberships' (app
    // ids differ between the two runs; emails do not).
    let all = app.events_after(start).await;
    let emails: BTreeMap<String, String> = all
        .iter()
        .filter_map(|e| {
            let user = &e["data"]["user"];
            Some((
                user["id"].as_str()?.to_owned(),
                user["email"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut events: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for e in all {
        let who = e["data"]["user"]["email"]
            .as_str()
            .or_else(|| {
                emails
                    .get(e["data"]["user_id"].as_str()?)
                    .map(String::as_str)
            })
            .unwrap_or_default()
            .to_owned();
        events.entry(who).or_default().push((
            e["type"].as_str().unwrap().to_owned(),
            e["data"]["changed"].clone(),
        ));
    }
    let mut mirror_rows = Vec::new();
    for id in &ids {
        let found = mirror::find_user(app.store.connection(), &app.directory_id, id).await;
        mirror_rows.push(found.ok().map(|u| (u.user_name, u.display_name)));
    }
    (results, events, mirror_rows)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Any writes, queued together, answer, end and tell the application
    /// as the same writes one at a time: the same refusals, the same
    /// mirror, the same events for each user (its own and its
    /// memberships'), its own in the same order. A membership event may
    /// come at another place among a user's events: a batch's engine passes
    /// read the mirror as the whole batch left it, so a user created in a
    /// batch that later adds them to a group joins the app group as it is
    /// created.
    #[test]
    fn a_batch_is_the_same_writes_one_at_a_time(ops in ops()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (one, batched) = runtime.block_on(async {
            (replay(&ops, false).await, replay(&ops, true).await)
        });
        prop_assert_eq!(&one.0, &batched.0, "answers");
        prop_assert_eq!(&one.2, &batched.2, "mirror");
        // Each user's events, in an order of their own (see above).
        let sorted = |events: &BTreeMap<String, Vec<(String, Value)>>| {
            events
                .iter()
                .map(|(who, e)| {
                    let mut e: Vec<String> = e.iter().map(|(t, c)| format!("{t} {c}")).collect();
                    e.sort();
                    (who.clone(), e)
                })
                .collect::<BTreeMap<_, _>>()
        };
        prop_assert_eq!(sorted(&one.1), sorted(&batched.1), "events");
        // A user's own events (not its memberships') keep their order.
        let own = |events: &BTreeMap<String, Vec<(String, Value)>>| {
            events
                .iter()
                .map(|(who, e)| {
                    let e: Vec<_> = e.iter().filter(|(t, _)| t.starts_with("user.")).cloned().collect();
                    (who.clone(), e)
                })
                .collect::<BTreeMap<_, _>>()
        };
        prop_assert_eq!(own(&one.1), own(&batched.1), "each user's own events in order");
    }
}
