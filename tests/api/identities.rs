//! The engine follows identities, not the order it hears about them: users
//! who exchange addresses (a swap, a rotation), a chain of renames, a new
//! user taking an address a rename released, in every order of the listing
//! and across engine pages; a change that waits for its address applies in
//! the transaction that releases it; partial items update only what they
//! carry. Through the engine's own entry points (the pull worker's), and
//! through SCIM.

use std::collections::{BTreeMap, BTreeSet};

use dirsync::reconcile::listing::{self, Listing, ListingOptions, ListingStatus};
use dirsync::reconcile::model::{Profile, Snapshot, SnapshotField};
use itertools::Itertools;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::helpers::{TestApp, json, patch_op, spawn_app};

const NOW: i64 = 1_800_000_000_000;

/// Person `n`'s snapshot under `email`: every profile field names the
/// person, so an address carrying another person's profile shows.
fn person(n: usize, email: &str) -> Snapshot {
    Snapshot {
        external_id: Some(format!("ext-{n}")),
        email: Some(email.to_owned()),
        profile: Profile {
            given_name: Some(format!("Given{n}")),
            family_name: Some(format!("Family{n}")),
            department: Some(format!("Dept{n}")),
            title: Some(format!("Title{n}")),
            employee_number: Some(format!("E{n}")),
            ..Profile::default()
        },
        active: true,
        groups: Vec::new(),
        ..Default::default()
    }
}

/// A listing: (person, address) in the order given.
fn users(people: &[(usize, &str)]) -> Vec<(String, Snapshot)> {
    people
        .iter()
        .map(|(n, email)| (format!("src-{n}"), person(*n, email)))
        .collect()
}

/// Feed a listing to the engine, `per_page` users per engine page (each a
/// transaction of its own), and finish it.
async fn run(
    app: &TestApp,
    users: Vec<(String, Snapshot)>,
    per_page: usize,
    options: ListingOptions,
) -> listing::Report {
    let mut run = Listing::begin(&app.store, &app.directory_id, options)
        .await
        .unwrap();
    for page in users.chunks(per_page.max(1)) {
        run.page(&app.store, page.to_vec(), NOW).await.unwrap();
    }
    run.finish(&app.store, true, NOW).await.unwrap()
}

/// Each app user's address and the person whose profile it carries.
async fn who_has(app: &TestApp) -> BTreeMap<String, String> {
    app.app_users()
        .await
        .iter()
        .map(|u| {
            let person = u["employee_number"].as_str().unwrap_or_default();
            // The whole profile must be that one person's.
            let n = person.trim_start_matches('E');
            for (field, prefix) in [
                ("given_name", "Given"),
                ("family_name", "Family"),
                ("department", "Dept"),
                ("title", "Title"),
            ] {
                assert_eq!(
                    u[field].as_str().unwrap_or_default(),
                    format!("{prefix}{n}"),
                    "{u}"
                );
            }
            (u["email"].as_str().unwrap().to_owned(), person.to_owned())
        })
        .collect()
}

/// The events after `seq`, as (type, email, changed fields), in a set: the
/// order of events inside a set follows the listing; their content must not.
async fn events_after(app: &TestApp, seq: i64) -> BTreeSet<(String, String, Vec<String>)> {
    app.events_after(seq)
        .await
        .iter()
        .map(|e| {
            let changed = e["data"]["changed"]
                .as_array()
                .map(|c| c.iter().map(|f| f.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            (
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["user"]["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                changed,
            )
        })
        .collect()
}

/// Every order of `items`.
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    items.iter().cloned().permutations(items.len()).collect()
}

fn updated(email: &str) -> (String, String, Vec<String>) {
    ("user.updated".into(), email.into(), vec!["email".into()])
}

fn created(email: &str) -> (String, String, Vec<String>) {
    ("user.created".into(), email.into(), Vec::new())
}

/// A directory before and after, the app state it must end in, and the
/// events the change must make (person 9 is a bystander).
struct Scenario {
    before: Vec<(usize, &'static str)>,
    after: Vec<(usize, &'static str)>,
    events: Vec<(String, String, Vec<String>)>,
}

fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        (
            "swap",
            Scenario {
                before: vec![(0, "a@x.com"), (1, "b@x.com"), (9, "z@x.com")],
                after: vec![(0, "b@x.com"), (1, "a@x.com"), (9, "z@x.com")],
                events: vec![updated("a@x.com"), updated("b@x.com")],
            },
        ),
        (
            "rotation",
            Scenario {
                before: vec![(0, "a@x.com"), (1, "b@x.com"), (2, "c@x.com")],
                after: vec![(0, "b@x.com"), (1, "c@x.com"), (2, "a@x.com")],
                events: vec![updated("a@x.com"), updated("b@x.com"), updated("c@x.com")],
            },
        ),
        (
            "rename chain",
            Scenario {
                before: vec![(0, "a@x.com"), (1, "b@x.com"), (2, "c@x.com")],
                after: vec![(0, "n@x.com"), (1, "a@x.com"), (2, "b@x.com")],
                events: vec![updated("n@x.com"), updated("a@x.com"), updated("b@x.com")],
            },
        ),
        (
            "released address taken by a new user",
            Scenario {
                before: vec![(0, "a@x.com"), (9, "z@x.com")],
                after: vec![(0, "n@x.com"), (1, "a@x.com"), (9, "z@x.com")],
                events: vec![updated("n@x.com"), created("a@x.com")],
            },
        ),
    ]
}

fn expected_state(after: &[(usize, &str)]) -> BTreeMap<String, String> {
    after
        .iter()
        .map(|(n, e)| ((*e).to_owned(), format!("E{n}")))
        .collect()
}

#[tokio::test]
async fn swaps_rotations_rename_chains_and_released_addresses_apply_whole_in_every_order() {
    for (name, s) in scenarios() {
        for order in permutations(&s.after) {
            // One engine page, and one user per page (a transaction each:
            // the first half of a swap waits for the second).
            for per_page in [order.len(), 1] {
                let app = spawn_app().await;
                run(&app, users(&s.before), 500, ListingOptions::default()).await;
                let seq = app.last_seq().await;
                let report = run(&app, users(&order), per_page, ListingOptions::default()).await;
                let case = format!("{name}, order {order:?}, {per_page} per page");
                assert_eq!(report.status, ListingStatus::Applied, "{case}");
                assert_eq!(report.counts.conflicts, 0, "{case}: {:?}", report.problems);
                assert!(report.problems.is_empty(), "{case}: {:?}", report.problems);
                assert_eq!(who_has(&app).await, expected_state(&s.after), "{case}");
                let events: BTreeSet<_> = s.events.iter().cloned().collect();
                assert_eq!(events_after(&app, seq).await, events, "{case}");
                assert_eq!(
                    app.last_seq().await - seq,
                    s.events.len() as i64,
                    "{case}: one event per user"
                );
                // The next run finds nothing to do and says nothing.
                let seq = app.last_seq().await;
                let again = run(&app, users(&order), per_page, ListingOptions::default()).await;
                assert_eq!(
                    (again.counts.unchanged, again.counts.conflicts),
                    (s.after.len() as u64, 0),
                    "{case}"
                );
                assert_eq!(
                    app.last_seq().await,
                    seq,
                    "{case}: a no-op run emits nothing"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_change_whose_address_is_still_held_waits_and_applies_when_a_later_run_releases_it() {
    let app = spawn_app().await;
    run(
        &app,
        users(&[(0, "a@x.com"), (1, "b@x.com")]),
        500,
        ListingOptions::default(),
    )
    .await;
    // Person 0 takes b@ while person 1 still holds it: a lasting conflict
    // of this run, naming who holds the address; nothing changes.
    let report = run(
        &app,
        users(&[(0, "b@x.com"), (1, "b@x.com")]),
        500,
        ListingOptions::default(),
    )
    .await;
    assert_eq!(report.counts.conflicts, 1, "{:?}", report.problems);
    let holder = app.app_user("b@x.com").await.unwrap();
    assert_eq!(report.problems[0].source_id, "src-0");
    assert_eq!(report.problems[0].outcome, "conflict");
    assert!(
        report.problems[0]
            .reason
            .contains(holder["id"].as_str().unwrap()),
        "{:?}",
        report.problems
    );
    assert_eq!(
        who_has(&app).await,
        expected_state(&[(0, "a@x.com"), (1, "b@x.com")])
    );
    // An incremental run that lists only person 1's rename releases b@:
    // person 0's waiting change applies in that same run.
    let seq = app.last_seq().await;
    let report = run(
        &app,
        users(&[(1, "c@x.com")]),
        500,
        ListingOptions {
            partial: true,
            ..ListingOptions::default()
        },
    )
    .await;
    assert_eq!(
        (report.counts.updated, report.counts.conflicts),
        (2, 0),
        "{report:?}"
    );
    assert_eq!(
        who_has(&app).await,
        expected_state(&[(0, "b@x.com"), (1, "c@x.com")])
    );
    assert_eq!(
        events_after(&app, seq).await,
        BTreeSet::from([updated("b@x.com"), updated("c@x.com")])
    );
}

#[tokio::test]
async fn a_partial_item_updates_only_what_it_carries_and_an_explicit_null_clears() {
    let app = spawn_app().await;
    run(
        &app,
        users(&[(0, "a@x.com")]),
        500,
        ListingOptions::default(),
    )
    .await;
    // A Graph delta item with only the title changed and the department
    // cleared (explicit null); nothing else carried.
    let item = Snapshot {
        external_id: Some("ext-0".into()),
        email: None,
        profile: Profile {
            title: Some("Boss".into()),
            department: None,
            ..Profile::default()
        },
        active: true,
        groups: Vec::new(),
        carried: Some(vec![SnapshotField::Title, SnapshotField::Department]),
        ..Snapshot::default()
    };
    let seq = app.last_seq().await;
    let partial = ListingOptions {
        partial: true,
        ..ListingOptions::default()
    };
    let report = run(&app, vec![("src-0".into(), item.clone())], 500, partial).await;
    assert_eq!(report.counts.updated, 1, "{report:?}");
    let user = app.app_user("a@x.com").await.expect("the address is kept");
    assert_eq!(user["title"], "Boss");
    assert_eq!(user["department"], Value::Null);
    assert_eq!(user["given_name"], "Given0");
    assert_eq!(user["family_name"], "Family0");
    assert_eq!(user["employee_number"], "E0");
    assert_eq!(user["status"], "PENDING");
    let events = app.events_after(seq).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["changed"], json!(["department", "title"]));
    // The same item again changes nothing; a complete listing after it
    // compares with the merged snapshot.
    let again = run(&app, vec![("src-0".into(), item)], 500, partial).await;
    assert_eq!(again.counts.unchanged, 1, "{again:?}");
    let mut full = person(0, "a@x.com");
    full.profile.title = Some("Boss".into());
    full.profile.department = None;
    let report = run(
        &app,
        vec![("src-0".into(), full)],
        500,
        ListingOptions::default(),
    )
    .await;
    assert_eq!(report.counts.unchanged, 1, "{report:?}");
}

#[tokio::test]
async fn a_first_sync_counts_the_users_it_created_already_deactivated() {
    let app = spawn_app().await;
    let mut listing = users(&[(0, "a@x.com"), (1, "b@x.com"), (2, "c@x.com")]);
    listing[1].1.active = false;
    let report = run(&app, listing, 500, ListingOptions::default()).await;
    assert_eq!(
        (report.counts.created, report.counts.created_deactivated),
        (3, 1)
    );
    assert_eq!(
        app.app_user("b@x.com").await.unwrap()["status"],
        "DEACTIVATED"
    );
}

/// A consistent directory before and after (unique addresses on both
/// sides): `n` people, each keeping, exchanging or renaming its address,
/// some joining; and the after-listing in a shuffled order, cut into pages.
/// People and their addresses.
type People = Vec<(usize, String)>;

fn directory_change() -> impl Strategy<Value = (People, People, People, usize)> {
    (2usize..7)
        .prop_flat_map(|n| {
            (
                Just(n),
                Just((0..n + 3).collect::<Vec<usize>>()).prop_shuffle(),
                prop::collection::vec(any::<bool>(), n),
                1usize..4,
            )
        })
        .prop_flat_map(|(n, addresses, joins, per_page)| {
            // Before: the first n addresses; after: a permutation of n + 3
            // addresses restricted to who is present (joiners are new).
            let before: Vec<(usize, String)> = (0..n).map(|p| (p, format!("u{p}@x.com"))).collect();
            let after: Vec<(usize, String)> = (0..n)
                .map(|p| (p, format!("u{}@x.com", addresses[p])))
                .chain(
                    joins
                        .iter()
                        .enumerate()
                        .filter(|(_, j)| **j)
                        .map(|(k, _)| (10 + k, format!("new{k}@x.com"))),
                )
                .collect();
            let shuffled = Just(after.clone()).prop_shuffle();
            (Just(before), Just(after), shuffled, Just(per_page))
        })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn owned(people: &[(usize, String)]) -> Vec<(String, Snapshot)> {
    people
        .iter()
        .map(|(n, email)| (format!("src-{n}"), person(*n, email)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Any order of a listing, cut into any pages, ends in the same state
    /// with the same events as the listing in its own order in one page.
    #[test]
    fn any_permutation_of_a_listing_gives_the_same_state_and_events(
        (before, after, shuffled, per_page) in directory_change(),
    ) {
        block_on(async {
            let mut results = Vec::new();
            for (listing, per_page) in [(after.clone(), 500), (shuffled.clone(), per_page)] {
                let app = spawn_app().await;
                run(&app, owned(&before), 500, ListingOptions::default()).await;
                let seq = app.last_seq().await;
                let report = run(&app, owned(&listing), per_page, ListingOptions::default()).await;
                prop_assert_eq!(report.counts.conflicts, 0, "{:?}", report.problems);
                results.push((who_has(&app).await, events_after(&app, seq).await));
            }
            let expected: BTreeMap<String, String> = after
                .iter()
                .map(|(n, e)| (e.clone(), format!("E{n}")))
                .collect();
            prop_assert_eq!(&results[0].0, &expected);
            prop_assert_eq!(&results[0], &results[1]);
            Ok(())
        })?;
    }
}

// ---- Through SCIM: each PATCH is a set of its own; the first half of a
// swap waits, the second applies both.

fn scim_user(user_name: &str, email: &str, n: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "externalId": format!("ext-{n}"),
        "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
        "title": format!("Title{n}"),
        "emails": [{"value": email, "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": format!("Dept{n}"), "employeeNumber": format!("E{n}")
        },
        "active": true
    })
}

fn new_email(email: &str) -> Value {
    patch_op(json!([{
        "op": "replace",
        "path": "emails",
        "value": [{"value": email, "type": "work", "primary": true}]
    }]))
}

async fn scim_pair(app: &TestApp) -> (String, String) {
    let mut ids = Vec::new();
    for (n, email) in [(0, "a@x.com"), (1, "b@x.com")] {
        let res = app
            .post("/Users", &scim_user(&format!("user{n}"), email, n))
            .await;
        assert_eq!(res.status(), 201);
        ids.push(json(res).await["id"].as_str().unwrap().to_owned());
    }
    (ids[0].clone(), ids[1].clone())
}

#[tokio::test]
async fn two_scim_patches_that_swap_addresses_apply_both_in_either_order() {
    for first in [0, 1] {
        let app = spawn_app().await;
        let (a, b) = scim_pair(&app).await;
        let seq = app.last_seq().await;
        let patches = [(a, "b@x.com"), (b, "a@x.com")];
        let (one, two) = (&patches[first], &patches[1 - first]);
        let res = app
            .patch(&format!("/Users/{}", one.0), &new_email(one.1))
            .await;
        assert_eq!(res.status(), 200);
        // The first half waits: nothing changed yet, no event.
        assert_eq!(
            who_has(&app).await,
            expected_state(&[(0, "a@x.com"), (1, "b@x.com")])
        );
        assert_eq!(app.last_seq().await, seq);
        let res = app
            .patch(&format!("/Users/{}", two.0), &new_email(two.1))
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            who_has(&app).await,
            expected_state(&[(0, "b@x.com"), (1, "a@x.com")]),
            "first PATCH: user {first}"
        );
        assert_eq!(
            events_after(&app, seq).await,
            BTreeSet::from([updated("a@x.com"), updated("b@x.com")])
        );
        assert_eq!(app.last_seq().await - seq, 2);
    }
}

#[tokio::test]
async fn one_bulk_request_that_swaps_addresses_applies_both() {
    let app = spawn_app().await;
    let (a, b) = scim_pair(&app).await;
    let seq = app.last_seq().await;
    let op = |id: &str, email: &str| json!({"method": "PATCH", "path": format!("/Users/{id}"), "data": new_email(email)});
    let res = app
        .post(
            "/Bulk",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [op(&a, "b@x.com"), op(&b, "a@x.com")]
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = json(res).await;
    assert_eq!(crate::helpers::bulk_statuses(&body), vec!["200", "200"]);
    assert_eq!(
        who_has(&app).await,
        expected_state(&[(0, "b@x.com"), (1, "a@x.com")])
    );
    assert_eq!(
        events_after(&app, seq).await,
        BTreeSet::from([updated("a@x.com"), updated("b@x.com")])
    );
}

#[tokio::test]
async fn a_scim_delete_under_on_delete_delete_releases_the_address_to_the_user_waiting_for_it() {
    use dirsync::admin::PolicyChange;
    use dirsync::reconcile::policy::OnDelete;
    let app = spawn_app().await;
    app.set_policy(PolicyChange {
        on_delete: Some(OnDelete::Delete),
        ..PolicyChange::default()
    })
    .await;
    let (a, b) = scim_pair(&app).await;
    // b waits for a@, which user 0 holds; deleting user 0 releases it.
    let res = app
        .patch(&format!("/Users/{b}"), &new_email("a@x.com"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        who_has(&app).await,
        expected_state(&[(0, "a@x.com"), (1, "b@x.com")])
    );
    let res = app.delete(&format!("/Users/{a}")).await;
    assert_eq!(res.status(), 204);
    assert_eq!(who_has(&app).await, expected_state(&[(1, "a@x.com")]));
}
