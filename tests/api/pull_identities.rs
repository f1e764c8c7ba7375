//! Pulls follow identities end to end, through each provider's fake: users
//! who exchange addresses, a rotation, a rename whose released address a new
//! hire takes, listed in either order, by full and incremental runs; and a
//! Microsoft Graph delta round whose items carry only what changed.

use dirsync::pull::fake::{Order, Org, Person};
use dirsync::pull::run::Request;
use dirsync::store::pull::Run;
use serde_json::{Value, json};

use crate::pull::{PROVIDERS, Provider, Pulled, count, pulled};

/// Each live user of the fake must be the app user at its address, with
/// its own profile (no address keeps another person's).
async fn assert_each_address_is_its_person(p: &Pulled, case: &str) {
    let users: Vec<Person> = p.shared.directory().live_users().cloned().collect();
    for user in users {
        let app = p.app.app_user(&user.email).await;
        let app = app.unwrap_or_else(|| panic!("{case}: no app user at {}", user.email));
        assert_eq!(
            app["employee_number"],
            user.employee_number.as_str(),
            "{case}: {app}"
        );
        assert_eq!(app["given_name"], user.given_name.as_str(), "{case}: {app}");
        assert_eq!(
            app["family_name"],
            user.family_name.as_str(),
            "{case}: {app}"
        );
        // A cleared field is no value in the app, not an empty string.
        let department = Some(user.department.as_str()).filter(|d| !d.is_empty());
        assert_eq!(app["department"].as_str(), department, "{case}: {app}");
    }
}

fn incremental() -> Request {
    Request {
        incremental: true,
        ..Request::manual()
    }
}

/// The user events of a run: (type, email, whether `email` is in changed).
async fn user_events(p: &Pulled, after: i64) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = p
        .app
        .events_after(after)
        .await
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("user.")))
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["user"]["email"].as_str().unwrap().to_owned(),
                e["data"]["changed"]
                    .as_array()
                    .is_some_and(|c| c.contains(&json!("email"))),
            )
        })
        .collect();
    out.sort();
    out
}

fn assert_clean(run: &Run, case: &str) {
    assert_eq!(run.status, "succeeded", "{case}: {}", run.errors);
    assert_eq!(count(run, "/users/conflicts"), 0, "{case}: {}", run.errors);
    assert_eq!(run.errors, json!([]), "{case}");
}

#[tokio::test]
async fn swaps_rotations_and_released_addresses_reach_each_person_through_every_provider() {
    for provider in PROVIDERS {
        // Google has no change feed: every run is full.
        let modes: &[bool] = match provider {
            Provider::Google => &[false],
            _ => &[false, true],
        };
        for &is_incremental in modes {
            for order in [Order::AsCreated, Order::Reversed] {
                let case = format!("{provider:?}, incremental {is_incremental}, {order:?}");
                let p = pulled(provider, Org::generate(20, 2, 11), json!({})).await;
                let first = p.sync().await;
                assert_clean(&first, &case);
                let ids: Vec<String> = (0..20).map(|n| p.user(n).id).collect();
                let id = |n: usize| ids[n].clone();
                let (renamed_from, joiner) = {
                    let mut dir = p.shared.directory_mut();
                    dir.order = order;
                    assert!(dir.swap_emails(&id(3), &id(7)));
                    assert!(dir.rotate_emails(&[id(10), id(11), id(12)]));
                    let released = dir.users[15].email.clone();
                    assert!(dir.set_email(&id(15), "moved.15@example.com"));
                    let mut joiner = dir.users[0].clone();
                    joiner.id = "joiner-0000-4000-8000-000000000099".into();
                    joiner.email = released.clone();
                    joiner.given_name = "Newton".into();
                    joiner.employee_number = "E-NEW".into();
                    dir.add_user(joiner);
                    (released, "E-NEW")
                };
                let seq = p.app.last_seq().await;
                let request = if is_incremental {
                    incremental()
                } else {
                    Request::manual()
                };
                let (run, _) = p.sync_with(request.clone()).await;
                assert_clean(&run, &case);
                assert_eq!(
                    (count(&run, "/users/created"), count(&run, "/users/updated")),
                    (1, 6),
                    "{case}: {}",
                    run.counts
                );
                assert_each_address_is_its_person(&p, &case).await;
                let joined = p.app.app_user(&renamed_from).await.unwrap();
                assert_eq!(joined["employee_number"], joiner, "{case}");
                // One user.updated naming the email per person who moved,
                // one user.created for the new hire; nothing else.
                let events = user_events(&p, seq).await;
                let moved = events
                    .iter()
                    .filter(|(t, _, email)| t == "user.updated" && *email)
                    .count();
                assert_eq!((events.len(), moved), (7, 6), "{case}: {events:?}");
                // The next run of the same kind has nothing to do.
                let seq = p.app.last_seq().await;
                let (again, _) = p.sync_with(request).await;
                assert_clean(&again, &case);
                assert_eq!(
                    (
                        count(&again, "/users/updated"),
                        count(&again, "/users/created")
                    ),
                    (0, 0),
                    "{case}: {}",
                    again.counts
                );
                assert_eq!(
                    p.app.last_seq().await,
                    seq,
                    "{case}: a no-op run emits nothing"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_graph_delta_round_of_partial_items_updates_only_what_they_carry() {
    let p = pulled(Provider::Entra, Org::generate(12, 1, 5), json!({})).await;
    p.sync().await;
    let before = p.app_user(4).await;
    let ids: Vec<String> = (0..12).map(|n| p.user(n).id).collect();
    let id = |n: usize| ids[n].clone();
    {
        let mut dir = p.shared.directory_mut();
        dir.partial_delta = true;
        assert!(dir.update_user(&id(4), |u| u.title = "Boss".into()));
        // Cleared in the directory: an explicit null in the delta item.
        assert!(dir.update_user(&id(5), |u| u.department = String::new()));
        assert!(dir.swap_emails(&id(6), &id(8)));
    }
    let (run, _) = p.sync_with(incremental()).await;
    assert_eq!(run.mode, "incremental");
    assert_clean(&run, "partial round");
    assert_eq!(count(&run, "/users/updated"), 4, "{}", run.counts);
    let after = p.app_user(4).await;
    assert_eq!(after["title"], "Boss");
    for field in [
        "given_name",
        "family_name",
        "display_name",
        "department",
        "employee_number",
        "status",
    ] {
        assert_eq!(after[field], before[field], "{field} must keep its value");
    }
    assert_eq!(p.app_user(5).await["department"], Value::Null);
    assert_eq!(
        p.app_user(5).await["given_name"],
        p.user(5).given_name.as_str()
    );
    assert_each_address_is_its_person(&p, "partial round").await;
    let seq = p.app.last_seq().await;
    let (again, _) = p.sync_with(incremental()).await;
    assert_eq!(count(&again, "/users/updated"), 0, "{}", again.counts);
    assert_eq!(p.app.last_seq().await, seq);
}

#[tokio::test]
async fn a_partial_item_without_the_department_stays_in_a_department_scope() {
    let directory = Org::generate(12, 1, 5);
    let department = directory.users[4].department.clone();
    let p = pulled(
        Provider::Entra,
        directory,
        json!({"department": department}),
    )
    .await;
    p.sync().await;
    assert_eq!(p.app_user(4).await["status"], "PENDING");
    {
        let mut dir = p.shared.directory_mut();
        dir.partial_delta = true;
        let id = dir.users[4].id.clone();
        assert!(dir.update_user(&id, |u| u.title = "Boss".into()));
    }
    let (run, _) = p.sync_with(incremental()).await;
    assert_clean(&run, "scoped partial round");
    let user = p.app_user(4).await;
    assert_eq!(user["title"], "Boss");
    assert_eq!(
        user["status"], "PENDING",
        "a title change is no departure from the scope"
    );
    assert_eq!(count(&run, "/users/missing"), 0, "{}", run.counts);
}
