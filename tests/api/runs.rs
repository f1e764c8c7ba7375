//! The run of a connection (`pull::run`) over an in-memory directory source:
//! the recorded run, the cursor, selective imports, the guard and its
//! approval, failures mid-listing, and the lease. The connectors themselves
//! run against the providers' fakes in `pull.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;

use dirsync::admin::PolicyChange;
use dirsync::pull::PullError;
use dirsync::pull::run::{self, Request, RunError, Trigger};
use dirsync::pull::source::{Check, Dropped, GroupPage, MemberPage, Position, Source, UserPage};
use dirsync::reconcile::model::{GroupSnapshot, Profile, Snapshot};
use dirsync::reconcile::policy::OnMissing;
use dirsync::store::pull::Connection;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// A directory in memory: users stamped with a version, so an incremental
/// listing from cursor `N` returns what changed after version N.
#[derive(Clone, Default)]
struct Memory {
    users: BTreeMap<String, (u64, Snapshot)>,
    removed: BTreeMap<String, u64>,
    groups: BTreeMap<String, (String, Vec<String>)>,
    version: u64,
    page_size: usize,
    /// Fail every listing request after this many pages (a 5xx storm).
    fail_after_pages: Option<usize>,
    /// The incremental cursor no longer works.
    cursor_expired: bool,
    pages_served: usize,
    /// Hold a page until released: (entered, release).
    gate: Option<(Arc<Notify>, Arc<Notify>)>,
    /// Pages served before the gate holds one (0: the first).
    gate_after_pages: usize,
    /// Fail member listings after this many groups (a 5xx storm mid-groups).
    fail_after_groups: Option<usize>,
    groups_served: usize,
    /// Values a connector's normalization would have dropped from these
    /// users at the caps, reported with each page that lists them.
    dropped: BTreeMap<String, u64>,
    /// Items of the first page that are no user (their id past its cap),
    /// and the values dropped from them.
    unidentified: u64,
}

fn person(n: usize, department: &str, active: bool) -> Snapshot {
    Snapshot {
        external_id: Some(format!("id-{n}")),
        email: Some(format!("person{n}@example.com")),
        profile: Profile {
            given_name: Some(format!("Given{n}")),
            department: Some(department.into()),
            ..Profile::default()
        },
        active,
        groups: Vec::new(),
        ..Default::default()
    }
}

impl Memory {
    fn with(n: usize) -> Memory {
        let mut m = Memory {
            page_size: 7,
            ..Memory::default()
        };
        for i in 0..n {
            let dept = if i % 2 == 0 { "Engineering" } else { "Sales" };
            m.put(&format!("id-{i}"), person(i, dept, true));
        }
        m
    }

    fn put(&mut self, id: &str, snapshot: Snapshot) {
        self.version += 1;
        self.users.insert(id.into(), (self.version, snapshot));
    }

    fn change(&mut self, id: &str, f: impl FnOnce(&mut Snapshot)) {
        let mut s = self.users[id].1.clone();
        f(&mut s);
        self.put(id, s);
    }

    fn remove(&mut self, id: &str) {
        self.version += 1;
        self.users.remove(id);
        self.removed.insert(id.into(), self.version);
    }

    fn fault(&mut self) -> Result<(), PullError> {
        self.pages_served += 1;
        match self.fail_after_pages {
            Some(n) if self.pages_served > n => Err(PullError::Exhausted {
                attempts: 6,
                last: "503 from the provider: backendError".into(),
            }),
            _ => Ok(()),
        }
    }
}

impl Source for Memory {
    async fn check(&mut self) -> Result<Check, PullError> {
        Ok(Check {
            authenticated: "memory".into(),
            users_read: self.users.len().min(1),
        })
    }

    async fn users(&mut self, at: &Position) -> Result<UserPage, PullError> {
        if self.pages_served == self.gate_after_pages
            && let Some((entered, release)) = self.gate.take()
        {
            entered.notify_one();
            release.notified().await;
        }
        self.fault()?;
        let (since, offset) = match at {
            Position::Start => (0, 0),
            Position::Since(c) if self.cursor_expired => {
                return Err(PullError::CursorExpired(format!("{c} is gone")));
            }
            Position::Since(c) => (c.parse().unwrap(), 0),
            Position::Next(n) => {
                let (since, offset) = n.split_once(':').unwrap();
                (since.parse().unwrap(), offset.parse().unwrap())
            }
        };
        let changed: Vec<(String, Snapshot)> = self
            .users
            .iter()
            .filter(|(_, (v, _))| *v > since)
            .map(|(id, (_, s))| (id.clone(), s.clone()))
            .collect();
        let end = (offset + self.page_size).min(changed.len());
        let last = end == changed.len();
        let mut dropped = Dropped::default();
        for (id, _) in &changed[offset..end] {
            dropped.add(Some(id), self.dropped.get(id).copied().unwrap_or(0));
        }
        if offset == 0 {
            dropped.add(None, self.unidentified);
        }
        Ok(UserPage {
            users: changed[offset..end].to_vec(),
            removed: if last && since > 0 {
                self.removed
                    .iter()
                    .filter(|(_, v)| **v > since)
                    .map(|(id, _)| id.clone())
                    .collect()
            } else {
                Vec::new()
            },
            next: (!last).then(|| format!("{since}:{end}")),
            cursor: last.then(|| self.version.to_string()),
            dropped,
        })
    }

    async fn groups(&mut self, _next: Option<&str>) -> Result<GroupPage, PullError> {
        Ok(GroupPage {
            groups: self
                .groups
                .iter()
                .map(|(id, (name, _))| {
                    (
                        id.clone(),
                        GroupSnapshot {
                            name: name.clone(),
                            external_id: Some(id.clone()),
                        },
                    )
                })
                .collect(),
            next: None,
        })
    }

    async fn members(
        &mut self,
        group_id: &str,
        _next: Option<&str>,
    ) -> Result<MemberPage, PullError> {
        self.groups_served += 1;
        if let Some(n) = self.fail_after_groups
            && self.groups_served > n
        {
            return Err(PullError::Exhausted {
                attempts: 6,
                last: "503 from the provider: backendError".into(),
            });
        }
        Ok(MemberPage {
            users: self.groups[group_id].1.clone(),
            next: None,
        })
    }
}

/// A pull directory with a connection row (its credentials are not read:
/// the source is handed to the run directly).
async fn pull_directory(app: &TestApp, scope: Value) -> Connection {
    let now = chrono::Utc::now().timestamp_millis();
    app.store
        .insert_connection(Connection {
            id: uuid::Uuid::now_v7().to_string(),
            directory_id: app.directory_id.clone(),
            tenant_id: app
                .store
                .directory(&app.directory_id)
                .await
                .unwrap()
                .tenant_id,
            provider: "entra".into(),
            settings: json!({}),
            scope,
            schedule: json!({}),
            secret_sealed: "unused".into(),
            cursor: None,
            next_run_at: None,
            lease_owner: None,
            lease_expires_at: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap()
}

async fn sync(app: &TestApp, source: &Memory, request: Request) -> dirsync::store::pull::Run {
    let source = source.clone();
    run::run_connection(
        &app.store,
        &app.directory_id,
        &request,
        "test-worker",
        move |_| Ok(source),
        &mut |_| {},
    )
    .await
    .unwrap()
}

fn count(run: &dirsync::store::pull::Run, path: &str) -> u64 {
    run.counts.pointer(path).and_then(Value::as_u64).unwrap()
}

fn incremental() -> Request {
    Request {
        incremental: true,
        ..Request::manual()
    }
}

#[tokio::test]
async fn a_full_run_is_recorded_with_its_counts_and_a_second_one_changes_nothing() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    let mut dir = Memory::with(30);
    dir.change("id-3", |s| s.active = false);
    dir.groups.insert(
        "g1".into(),
        ("Admins".into(), vec!["id-1".into(), "id-2".into()]),
    );

    let first = sync(&app, &dir, Request::manual()).await;
    assert_eq!(
        (first.status.as_str(), first.mode.as_str()),
        ("succeeded", "full")
    );
    assert_eq!(count(&first, "/users/seen"), 30);
    assert_eq!(count(&first, "/users/created"), 30);
    assert_eq!(count(&first, "/groups/created"), 1);
    assert_eq!(count(&first, "/groups/members_added"), 2);
    assert!(first.finished_at.is_some());
    let user3 = app.app_user("person3@example.com").await.unwrap();
    assert_eq!(
        (user3["status"].as_str(), user3["deactivated_by"].as_str()),
        (Some("DEACTIVATED"), Some("directory"))
    );
    let groups = app.app_groups().await;
    assert_eq!(groups[0]["members"].as_array().unwrap().len(), 2);
    let types = app.event_types_after(0).await;
    assert_eq!(types.last().map(String::as_str), Some("sync.run.finished"));
    let seq = app.last_seq().await;

    let second = sync(&app, &dir, Request::manual()).await;
    assert_eq!(second.status, "succeeded");
    assert_eq!(count(&second, "/users/unchanged"), 30);
    assert_eq!(count(&second, "/groups/unchanged"), 1);
    assert_eq!(
        app.last_seq().await,
        seq,
        "a no-op run emits no event at all"
    );
    let listed = app.store.runs_of(&app.directory_id, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![second.id, first.id]
    );
}

#[tokio::test]
async fn an_incremental_run_applies_only_the_changes_and_removals_since_the_cursor() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    app.set_policy(PolicyChange {
        on_missing: Some(OnMissing::Deactivate),
        ..PolicyChange::default()
    })
    .await;
    let mut dir = Memory::with(20);
    sync(&app, &dir, Request::manual()).await;
    dir.change("id-4", |s| s.profile.title = Some("Director".into()));
    dir.change("id-5", |s| s.active = false);
    dir.remove("id-6");

    let run = sync(&app, &dir, incremental()).await;
    assert_eq!(
        (run.status.as_str(), run.mode.as_str()),
        ("succeeded", "incremental")
    );
    assert_eq!(
        count(&run, "/users/seen"),
        2,
        "only the changed users were listed"
    );
    assert_eq!(count(&run, "/users/updated"), 1);
    assert_eq!(
        count(&run, "/users/deactivated"),
        2,
        "the suspended and the removed user"
    );
    assert_eq!(count(&run, "/users/missing"), 1);
    assert_eq!(
        app.app_user("person4@example.com").await.unwrap()["title"],
        "Director"
    );
    assert_eq!(
        app.app_user("person6@example.com").await.unwrap()["status"],
        "DEACTIVATED"
    );
    assert_eq!(
        app.app_user("person7@example.com").await.unwrap()["status"],
        "PENDING",
        "unlisted is not missing in an incremental run"
    );

    let again = sync(&app, &dir, incremental()).await;
    assert_eq!(
        count(&again, "/users/seen"),
        0,
        "the cursor moved past the changes"
    );
}

#[tokio::test]
async fn an_expired_cursor_falls_back_to_a_full_run() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    let mut dir = Memory::with(10);
    sync(&app, &dir, Request::manual()).await;
    dir.cursor_expired = true;
    let run = sync(&app, &dir, incremental()).await;
    assert_eq!(
        (run.status.as_str(), run.mode.as_str()),
        ("succeeded", "full")
    );
    assert_eq!(count(&run, "/users/seen"), 10);
}

#[tokio::test]
async fn a_listing_cut_short_by_a_provider_outage_is_partial_and_deactivates_no_one() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    app.set_policy(PolicyChange {
        on_missing: Some(OnMissing::Deactivate),
        ..PolicyChange::default()
    })
    .await;
    let mut dir = Memory::with(30);
    sync(&app, &dir, Request::manual()).await;
    dir.change("id-0", |s| s.active = false);
    dir.fail_after_pages = Some(2);
    let run = sync(&app, &dir, Request::manual()).await;
    assert_eq!(run.status, "partial");
    assert_eq!(count(&run, "/users/seen"), 14);
    assert_eq!(count(&run, "/users/deactivated"), 0);
    assert_eq!(count(&run, "/users/missing"), 0);
    assert_eq!(run.errors[0]["kind"], "users");
    assert_eq!(count(&run, "/errors"), 1);
    assert!(
        run.errors[0]["reason"]
            .as_str()
            .unwrap()
            .contains("backendError")
    );
    let users = app.app_users().await;
    assert!(
        users.iter().all(|u| u["status"] == "PENDING"),
        "nobody deactivated, not even the suspended user"
    );

    dir.fail_after_pages = Some(0);
    let failed = sync(&app, &dir, Request::manual()).await;
    assert_eq!(failed.status, "failed", "nothing at all was read");
}

#[tokio::test]
async fn many_groups_apply_several_to_a_transaction_and_what_was_listed_before_an_outage_stays() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    let mut dir = Memory::with(6);
    // More groups than one transaction takes, so they span several.
    for g in 0..150 {
        let members = (0..3).map(|i| format!("id-{}", (g + i) % 6)).collect();
        dir.groups
            .insert(format!("g{g:03}"), (format!("Group {g:03}"), members));
    }
    let first = sync(&app, &dir, Request::manual()).await;
    assert_eq!(first.status, "succeeded");
    assert_eq!(count(&first, "/groups/created"), 150);
    assert_eq!(count(&first, "/groups/members_added"), 450);
    let groups = app.app_groups().await;
    assert_eq!(groups.len(), 150);
    assert!(
        groups
            .iter()
            .all(|g| g["members"].as_array().unwrap().len() == 3)
    );

    // 100 groups gone (more than one transaction's worth of deletions).
    let gone: Vec<String> = dir.groups.keys().take(100).cloned().collect();
    for g in &gone {
        dir.groups.remove(g);
    }
    let second = sync(&app, &dir, Request::manual()).await;
    assert_eq!(count(&second, "/groups/deleted"), 100);
    assert_eq!(count(&second, "/groups/unchanged"), 50);
    assert_eq!(app.app_groups().await.len(), 50);

    // The provider fails after 70 of 120 groups: the 70 listed before
    // apply, including those still held back for a shared transaction,
    // and no group is deleted for not having been listed.
    for g in 200..270 {
        let members = vec!["id-0".to_string()];
        dir.groups
            .insert(format!("g{g:03}"), (format!("Group {g:03}"), members));
    }
    dir.fail_after_groups = Some(70);
    let third = sync(&app, &dir, Request::manual()).await;
    assert_eq!(third.status, "partial");
    assert_eq!(third.errors[0]["kind"], "groups");
    let names: Vec<String> = app
        .app_groups()
        .await
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 70, "{names:?}");
    assert!(names.contains(&"Group 149".to_string()));
    assert!(names.contains(&"Group 219".to_string()));
    assert!(!names.contains(&"Group 220".to_string()));
}

#[tokio::test]
async fn a_failed_incremental_run_keeps_the_cursor_so_the_next_one_sees_the_changes() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    let mut dir = Memory::with(30);
    dir.page_size = 5;
    sync(&app, &dir, Request::manual()).await;
    for i in 0..12 {
        dir.change(&format!("id-{i}"), |s| s.profile.title = Some("New".into()));
    }
    dir.fail_after_pages = Some(dir.pages_served + 1);
    let cut = sync(&app, &dir, incremental()).await;
    assert_eq!(cut.status, "partial");
    dir.fail_after_pages = None;
    let next = sync(&app, &dir, incremental()).await;
    assert_eq!(count(&next, "/users/seen"), 12);
}

#[tokio::test]
async fn the_guard_stops_a_run_at_needs_approval_and_approval_applies_what_was_weighed() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    app.set_policy(PolicyChange {
        on_missing: Some(OnMissing::Deactivate),
        max_deactivations: Some(Some(3)),
        ..PolicyChange::default()
    })
    .await;
    let mut dir = Memory::with(20);
    sync(&app, &dir, Request::manual()).await;
    for i in 0..5 {
        dir.remove(&format!("id-{i}"));
    }
    let stopped = sync(&app, &dir, Request::manual()).await;
    assert_eq!(stopped.status, "needs_approval");
    assert_eq!(stopped.deactivations, 5);
    assert!(
        app.app_users()
            .await
            .iter()
            .all(|u| u["status"] == "PENDING")
    );

    // One more leaves: more than was approved, so the guard trips again.
    dir.remove("id-5");
    let too_many = sync(
        &app,
        &dir,
        Request {
            approves: Some((stopped.id.clone(), 5)),
            trigger: Trigger::Approval,
            ..Request::manual()
        },
    )
    .await;
    assert_eq!(too_many.status, "needs_approval");

    let approved = sync(
        &app,
        &dir,
        Request {
            approves: Some((too_many.id.clone(), 6)),
            trigger: Trigger::Approval,
            ..Request::manual()
        },
    )
    .await;
    assert_eq!(approved.status, "succeeded");
    assert_eq!(count(&approved, "/users/deactivated"), 6);
}

#[tokio::test]
async fn a_stopped_run_keeps_whom_it_would_deactivate_and_why_and_its_approval_links_back() {
    use dirsync::store::pages::{self, Anchor};
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    app.set_policy(PolicyChange {
        on_missing: Some(OnMissing::Deactivate),
        max_deactivations: Some(Some(2)),
        ..PolicyChange::default()
    })
    .await;
    let mut dir = Memory::with(20);
    sync(&app, &dir, Request::manual()).await;
    // Two leave the directory, one is disabled in it: three deactivations.
    dir.remove("id-3");
    dir.remove("id-14");
    dir.change("id-7", |s| s.active = false);
    let stopped = sync(&app, &dir, Request::manual()).await;
    assert_eq!(
        (stopped.status.as_str(), stopped.deactivations),
        ("needs_approval", 3)
    );
    let mut held: Vec<(String, String)> = Vec::new();
    let mut from = Anchor::Start;
    loop {
        // Two per page: the walk crosses a page boundary.
        let page = pages::held_back(app.store.connection(), &stopped.id, &from, 2)
            .await
            .unwrap();
        held.extend(page.rows.iter().map(|(u, r)| (u.email.clone(), r.clone())));
        match (page.more_after, page.rows.last()) {
            (true, Some((last, _))) => from = Anchor::After(last.id.clone()),
            _ => break,
        }
    }
    held.sort();
    assert_eq!(
        held,
        [
            ("person14@example.com".to_owned(), "missing".to_owned()),
            ("person3@example.com".to_owned(), "missing".to_owned()),
            ("person7@example.com".to_owned(), "directory".to_owned()),
        ]
    );
    // Nothing was deactivated meanwhile.
    assert!(
        app.app_users()
            .await
            .iter()
            .all(|u| u["status"] == "PENDING")
    );

    // The approval carries out exactly those three, and the stopped run
    // names it from the same transaction as its record.
    let approved = sync(
        &app,
        &dir,
        Request {
            approves: Some((stopped.id.clone(), 3)),
            trigger: Trigger::Approval,
            ..Request::manual()
        },
    )
    .await;
    assert_eq!(approved.status, "succeeded");
    let stopped = app.store.run(&stopped.id).await.unwrap();
    assert_eq!(
        stopped.approved_by_run_id.as_deref(),
        Some(approved.id.as_str())
    );
    let mut deactivated: Vec<String> = app
        .app_users()
        .await
        .iter()
        .filter(|u| u["status"] == "DEACTIVATED")
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    deactivated.sort();
    let mut expected: Vec<String> = held.into_iter().map(|(e, _)| e).collect();
    expected.sort();
    assert_eq!(deactivated, expected);
    // A run the guard let through holds nothing back.
    let page = pages::held_back(app.store.connection(), &approved.id, &Anchor::Start, 10)
        .await
        .unwrap();
    assert!(page.rows.is_empty());
}

#[tokio::test]
async fn a_running_run_shows_how_many_users_it_has_seen() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut gated = Memory::with(1_200);
    gated.page_size = 100;
    // Held on the seventh page: 600 users read, the first 500 applied.
    gated.gate_after_pages = 6;
    gated.gate = Some((entered.clone(), release.clone()));
    let running = {
        let store = app.store.clone();
        let directory_id = app.directory_id.clone();
        tokio::spawn(async move {
            run::run_connection(
                &store,
                &directory_id,
                &Request::manual(),
                "worker",
                move |_| Ok(gated),
                &mut |_| {},
            )
            .await
        })
    };
    entered.notified().await;
    let runs = app.store.runs_of(&app.directory_id, 1).await.unwrap();
    assert_eq!(runs[0].status, "running");
    assert_eq!(count(&runs[0], "/users/seen"), 500, "{}", runs[0].counts);
    release.notify_one();
    let done = running.await.unwrap().unwrap();
    assert_eq!(
        (
            done.status.as_str(),
            count(&done, "/users/seen"),
            count(&done, "/users/created")
        ),
        ("succeeded", 1_200, 1_200)
    );
}

#[tokio::test]
async fn a_dry_run_writes_nothing_but_its_record() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    let dir = Memory::with(12);
    let run = sync(
        &app,
        &dir,
        Request {
            dry_run: true,
            ..Request::manual()
        },
    )
    .await;
    assert_eq!(
        (run.status.as_str(), run.mode.as_str()),
        ("succeeded", "dry_run")
    );
    assert_eq!(count(&run, "/users/created"), 12);
    assert!(app.app_users().await.is_empty());
    assert_eq!(app.last_seq().await, 0);
    let conn = app.store.connection_of(&app.directory_id).await.unwrap();
    assert_eq!(conn.cursor, None, "a dry run does not move the cursor");
}

#[tokio::test]
async fn a_selective_import_brings_in_only_the_named_users_or_department_and_marks_no_one_missing()
{
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    app.set_policy(PolicyChange {
        on_missing: Some(OnMissing::Deactivate),
        ..PolicyChange::default()
    })
    .await;
    let dir = Memory::with(10);
    let only = sync(
        &app,
        &dir,
        Request {
            only: vec!["Person1@Example.com".into(), "id-2".into()],
            ..Request::manual()
        },
    )
    .await;
    assert_eq!(count(&only, "/users/created"), 2);
    assert_eq!(only.mode, "selective", "never counted as a full run");
    assert_eq!(
        count(&only, "/groups/seen"),
        0,
        "a selective run leaves groups alone"
    );
    let sales = sync(
        &app,
        &dir,
        Request {
            department: Some("sales".into()),
            ..Request::manual()
        },
    )
    .await;
    assert_eq!(
        count(&sales, "/users/created"),
        4,
        "Sales: 1, 3, 5, 7, 9 less the one already imported"
    );
    assert_eq!(count(&sales, "/users/missing"), 0);
    assert_eq!(app.app_users().await.len(), 6);
    assert!(
        app.app_users()
            .await
            .iter()
            .all(|u| u["status"] == "PENDING")
    );
}

#[tokio::test]
async fn a_run_counts_the_values_dropped_from_the_users_it_takes_in_and_from_items_without_an_id() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    // id-0 and id-8 are in Engineering, id-1 in Sales; a page is 7 users.
    let mut dir = Memory::with(10);
    dir.dropped = BTreeMap::from([("id-0".into(), 2), ("id-1".into(), 1), ("id-8".into(), 1)]);
    dir.unidentified = 1;
    let selected = |request: Request| sync(&app, &dir, request);
    let only = selected(Request {
        only: vec!["id-0".into()],
        ..Request::manual()
    })
    .await;
    assert_eq!(
        count(&only, "/values_dropped"),
        2 + 1,
        "id-0's, and the item without an id: {}",
        only.counts
    );
    let sales = selected(Request {
        department: Some("Sales".into()),
        ..Request::manual()
    })
    .await;
    assert_eq!(count(&sales, "/values_dropped"), 1 + 1, "{}", sales.counts);
    let full = selected(Request::manual()).await;
    assert_eq!(full.status, "succeeded", "{}", full.errors);
    assert_eq!(count(&full, "/values_dropped"), 2 + 1 + 1 + 1);

    let clean = sync(&app, &Memory::with(10), Request::manual()).await;
    assert_eq!(count(&clean, "/values_dropped"), 0);
}

#[tokio::test]
async fn a_department_scope_makes_users_who_leave_it_missing() {
    let app = spawn_app().await;
    pull_directory(&app, json!({"department": "Engineering"})).await;
    app.set_policy(PolicyChange {
        on_missing: Some(OnMissing::Deactivate),
        ..PolicyChange::default()
    })
    .await;
    let mut dir = Memory::with(10);
    let first = sync(&app, &dir, Request::manual()).await;
    assert_eq!(count(&first, "/users/created"), 5);
    dir.change("id-0", |s| s.profile.department = Some("Sales".into()));
    let second = sync(&app, &dir, Request::manual()).await;
    assert_eq!(count(&second, "/users/missing"), 1);
    assert_eq!(
        app.app_user("person0@example.com").await.unwrap()["status"],
        "DEACTIVATED"
    );
}

#[tokio::test]
async fn a_run_refuses_to_start_while_another_worker_holds_the_lease_and_takes_over_an_expired_one()
{
    let app = spawn_app().await;
    let conn = pull_directory(&app, json!({})).await;
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        app.store
            .take_lease(&conn.id, "replica-a", now, 60_000)
            .await
            .unwrap()
    );
    let dir = Memory::with(3);
    let busy = run::run_connection(
        &app.store,
        &app.directory_id,
        &Request::manual(),
        "replica-b",
        move |_| Ok(dir),
        &mut |_| {},
    )
    .await;
    match busy {
        Err(RunError::Busy(why)) => assert!(why.contains("replica-a"), "{why}"),
        other => panic!("{other:?}"),
    }
    // replica-a died mid-run: its run stays "running" until someone takes over.
    app.store
        .insert_run(dirsync::store::pull::Run {
            id: uuid::Uuid::now_v7().to_string(),
            connection_id: conn.id.clone(),
            directory_id: conn.directory_id.clone(),
            tenant_id: conn.tenant_id.clone(),
            trigger: "schedule".into(),
            mode: "full".into(),
            status: "running".into(),
            started_at: now,
            finished_at: None,
            counts: json!({}),
            errors: json!([]),
            deactivations: 0,
            approved_by_run_id: None,
        })
        .await
        .unwrap();
    assert!(
        app.store
            .take_lease(&conn.id, "replica-a", now - 120_000, 60_000)
            .await
            .unwrap(),
        "the owner may always renew"
    );
    let run = sync(&app, &Memory::with(3), Request::manual()).await;
    assert_eq!(run.status, "succeeded");
    let runs = app.store.runs_of(&app.directory_id, 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        vec!["succeeded", "failed"]
    );
    let conn = app.store.connection_of(&app.directory_id).await.unwrap();
    assert_eq!(conn.lease_owner, None, "the lease is given back");
    assert!(
        conn.next_run_at.is_some_and(|at| at > now),
        "the next run is scheduled"
    );
}

#[tokio::test]
async fn two_workers_racing_for_one_connection_run_it_once() {
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut gated = Memory::with(40);
    gated.gate = Some((entered.clone(), release.clone()));
    let first = {
        let store = app.store.clone();
        let directory_id = app.directory_id.clone();
        tokio::spawn(async move {
            run::run_connection(
                &store,
                &directory_id,
                &Request::manual(),
                "replica-a",
                move |_| Ok(gated),
                &mut |_| {},
            )
            .await
        })
    };
    // replica-a is inside its run, holding the lease.
    entered.notified().await;
    let dir = Memory::with(40);
    let second = run::run_connection(
        &app.store,
        &app.directory_id,
        &Request::manual(),
        "replica-b",
        move |_| Ok(dir),
        &mut |_| {},
    )
    .await;
    assert!(matches!(second, Err(RunError::Busy(_))), "{second:?}");
    release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status, "succeeded");
    assert_eq!(count(&first, "/users/created"), 40);
    assert_eq!(
        app.store
            .runs_of(&app.directory_id, 10)
            .await
            .unwrap()
            .len(),
        1,
        "one run recorded"
    );
}

#[tokio::test]
async fn a_selection_narrows_the_connections_department_scope_and_never_widens_it() {
    let app = spawn_app().await;
    pull_directory(&app, json!({"department": "Engineering"})).await;
    let dir = Memory::with(10);
    let sales = sync(
        &app,
        &dir,
        Request {
            department: Some("Sales".into()),
            ..Request::manual()
        },
    )
    .await;
    assert_eq!(
        count(&sales, "/users/created"),
        0,
        "Sales is outside the connection's scope"
    );
    let one = sync(
        &app,
        &dir,
        Request {
            only: vec!["id-2".into(), "id-3".into()],
            ..Request::manual()
        },
    )
    .await;
    assert_eq!(count(&one, "/users/created"), 1, "id-3 is in Sales");
}

#[tokio::test]
async fn the_later_word_on_a_user_in_one_listing_wins() {
    /// Lists every user, then user 0 again, suspended (as Okta lists the
    /// deprovisioned after the rest).
    #[derive(Clone)]
    struct Twice(Memory);
    impl Source for Twice {
        async fn check(&mut self) -> Result<Check, PullError> {
            self.0.check().await
        }
        async fn users(&mut self, at: &Position) -> Result<UserPage, PullError> {
            if matches!(at, Position::Next(n) if n == "again") {
                let mut s = person(0, "Engineering", true);
                s.active = false;
                return Ok(UserPage {
                    users: vec![("id-0".into(), s)],
                    cursor: None,
                    ..UserPage::default()
                });
            }
            let mut page = self.0.users(&Position::Start).await?;
            page.next = Some("again".into());
            page.cursor = None;
            Ok(page)
        }
        async fn groups(&mut self, next: Option<&str>) -> Result<GroupPage, PullError> {
            self.0.groups(next).await
        }
        async fn members(
            &mut self,
            group_id: &str,
            next: Option<&str>,
        ) -> Result<MemberPage, PullError> {
            self.0.members(group_id, next).await
        }
    }
    let app = spawn_app().await;
    pull_directory(&app, json!({})).await;
    let mut dir = Memory::with(5);
    dir.page_size = 100;
    let source = Twice(dir);
    let run = run::run_connection(
        &app.store,
        &app.directory_id,
        &Request::manual(),
        "w",
        move |_| Ok(source),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(count(&run, "/users/seen"), 5);
    assert_eq!(
        app.app_user("person0@example.com").await.unwrap()["status"],
        "DEACTIVATED"
    );
}

#[tokio::test]
async fn a_scheduled_run_that_is_no_longer_due_does_not_run_and_a_stopped_incremental_run_keeps_its_cursor()
 {
    let app = spawn_app().await;
    let conn = pull_directory(&app, json!({})).await;
    app.set_policy(PolicyChange {
        on_missing: Some(OnMissing::Deactivate),
        max_deactivations: Some(Some(1)),
        ..PolicyChange::default()
    })
    .await;
    let mut dir = Memory::with(10);
    sync(&app, &dir, Request::manual()).await;
    let scheduled = Request {
        trigger: Trigger::Schedule,
        ..Request::manual()
    };
    let source = dir.clone();
    let late = run::run_connection(
        &app.store,
        &app.directory_id,
        &scheduled,
        "w",
        move |_| Ok(source),
        &mut |_| {},
    )
    .await;
    assert!(
        matches!(late, Err(RunError::Busy(_))),
        "its next run is an hour away: {late:?}"
    );

    let cursor = app
        .store
        .connection_of(&app.directory_id)
        .await
        .unwrap()
        .cursor;
    dir.remove("id-1");
    dir.remove("id-2");
    let stopped = sync(&app, &dir, incremental()).await;
    assert_eq!(stopped.status, "needs_approval");
    let after = app
        .store
        .connection_of(&conn.directory_id)
        .await
        .unwrap()
        .cursor;
    assert_eq!(
        after, cursor,
        "the removals it held back are listed again next time"
    );
    let again = sync(&app, &dir, incremental()).await;
    assert_eq!(
        (again.status.as_str(), again.deactivations),
        ("needs_approval", 2),
        "the same removals, weighed again"
    );
}
