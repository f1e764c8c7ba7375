//! Pull-side previews through the host API, against each provider's fake:
//! a pull directory's mapping preview (the provider read, nothing written),
//! the import wizard's preview (search, department, whether a user exists)
//! and its selective import (a run of mode `import` through the engine),
//! and a provider that refuses, which is a problem with its reason.

use std::collections::BTreeSet;

use dirsync::pull::fake::{Org, Running, Shared};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::host_api::{call, token};
use crate::pull::{PROVIDERS, Provider, start_fake};

/// A server with a pull directory `corp` connected (through the API) to a
/// fake provider serving `directory`.
struct Connected {
    app: TestApp,
    shared: std::sync::Arc<Shared>,
    _fake: Running,
    jwt: String,
}

impl Connected {
    async fn new(provider: Provider, directory: Org) -> Connected {
        Connected::scoped(provider, directory, Value::Null).await
    }

    /// With the connection's `scope` (null: none).
    async fn scoped(provider: Provider, directory: Org, scope: Value) -> Connected {
        let app = spawn_app().await;
        let shared = Shared::new(directory);
        let (fake, mut definition) = start_fake(provider, shared.clone());
        if !scope.is_null() {
            definition["scope"] = scope;
        }
        definition["name"] = json!("corp");
        definition["schedule"] = json!({"enabled": false});
        let jwt = token(&app.tenant, "admin write read");
        let (status, body, _) = call(
            &app,
            Some(&jwt),
            Method::POST,
            "/api/v1/connections",
            Some(definition),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        Connected {
            app,
            shared,
            _fake: fake,
            jwt,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, body, _) = call(
            &self.app,
            Some(&self.jwt),
            Method::POST,
            &format!("/api/v1{path}"),
            Some(body),
        )
        .await;
        (status, body)
    }

    fn person(&self, id: &str) -> dirsync::pull::fake::Person {
        self.shared
            .directory()
            .users
            .iter()
            .find(|u| u.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no user {id} in the fake"))
    }
}

fn all_active(users: usize) -> Org {
    let mut directory = Org::generate(users, 1, 33);
    for u in &mut directory.users {
        u.active = true;
    }
    directory
}

fn ids(data: &Value) -> BTreeSet<String> {
    data.as_array()
        .unwrap()
        .iter()
        .map(|u| u["source_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_pull_directorys_mapping_preview_reads_the_provider_and_writes_nothing() {
    let c = Connected::new(Provider::Entra, all_active(8)).await;
    let seq = c.app.last_seq().await;
    let rules = json!([{
        "source": "onPremisesExtensionAttributes.extensionAttribute3",
        "target": "custom.cost_center",
    }]);
    let (status, body) = c
        .post(
            "/directories/corp/policy/preview",
            json!({"attribute_mapping": rules, "limit": 3}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{body}");
    for user in data {
        let person = c.person(user["source_id"].as_str().unwrap());
        assert_eq!(
            user["before"]["email"],
            person.email.to_lowercase(),
            "{user}"
        );
        assert!(
            user["before"]["profile"]["custom"].is_null(),
            "no rule in force: {user}"
        );
        assert_eq!(
            user["after"]["profile"]["custom"]["cost_center"],
            person.cost_center.as_str(),
            "the extension attribute was asked for and mapped: {user}"
        );
        assert_eq!(user["changed"], json!(["custom_attributes.cost_center"]));
    }
    // Nothing written: no app user, no event, no run.
    assert!(c.app.app_users().await.is_empty());
    assert_eq!(c.app.last_seq().await, seq);
    let (status, runs, _) = call(
        &c.app,
        Some(&c.jwt),
        Method::GET,
        "/api/v1/connections/corp/runs",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(runs["data"], json!([]), "{runs}");
}

#[tokio::test]
async fn the_wizard_preview_filters_by_department_and_search_for_every_provider() {
    for provider in PROVIDERS {
        let c = Connected::new(provider, all_active(12)).await;
        let department = c.shared.directory().users[0].department.clone();
        let expected: BTreeSet<String> = c
            .shared
            .directory()
            .users
            .iter()
            .filter(|u| u.department == department)
            .map(|u| u.id.clone())
            .collect();
        assert!(
            expected.len() < 12,
            "{provider:?}: the filter must leave some out"
        );
        let (status, body) = c
            .post(
                "/connections/corp/preview",
                json!({"department": department.to_uppercase(), "limit": 100}),
            )
            .await;
        assert_eq!(status, 200, "{provider:?}: {body}");
        assert_eq!(ids(&body["data"]), expected, "{provider:?}: {body}");
        for user in body["data"].as_array().unwrap() {
            let person = c.person(user["source_id"].as_str().unwrap());
            assert_eq!(user["email"], person.email.to_lowercase(), "{provider:?}");
            assert_eq!(user["given_name"], person.given_name.as_str());
            assert_eq!(user["family_name"], person.family_name.as_str());
            assert_eq!(user["department"], person.department.as_str());
            assert_eq!(user["title"], person.title.as_str());
            assert_eq!(user["exists"], false, "{provider:?}: {user}");
        }
        // A search by part of an email, in another case.
        let wanted = c.shared.directory().users[5].clone();
        let local = wanted.email.split('@').next().unwrap().to_uppercase();
        let (status, body) = c
            .post("/connections/corp/preview", json!({"search": local}))
            .await;
        assert_eq!(status, 200, "{provider:?}: {body}");
        assert!(
            ids(&body["data"]).contains(&wanted.id),
            "{provider:?}: {body}"
        );
        // No body: the first users, up to the default.
        let (status, body) = c.post("/connections/corp/preview", json!({})).await;
        assert_eq!(status, 200, "{provider:?}: {body}");
        assert_eq!(body["data"].as_array().unwrap().len(), 12, "{provider:?}");
        assert!(c.app.app_users().await.is_empty(), "{provider:?}");
    }
}

#[tokio::test]
async fn importing_two_selected_users_creates_exactly_them_with_events_and_again_is_unchanged() {
    for provider in PROVIDERS {
        let c = Connected::new(provider, all_active(10)).await;
        let (a, b) = {
            let dir = c.shared.directory();
            (dir.users[2].clone(), dir.users[7].clone())
        };
        let seq = c.app.last_seq().await;
        let (status, summary) = c
            .post("/connections/corp/import", json!({"users": [a.id, b.id]}))
            .await;
        assert_eq!(status, 200, "{provider:?}: {summary}");
        assert_eq!(summary["imported"], 2, "{provider:?}: {summary}");
        for field in ["updated", "unchanged", "skipped", "errors"] {
            assert_eq!(summary[field], 0, "{provider:?} {field}: {summary}");
        }
        let emails: BTreeSet<String> = c
            .app
            .app_users()
            .await
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            emails,
            BTreeSet::from([a.email.to_lowercase(), b.email.to_lowercase()]),
            "{provider:?}"
        );
        let types = c.app.event_types_after(seq).await;
        assert_eq!(
            types.iter().filter(|t| *t == "user.created").count(),
            2,
            "{provider:?}: {types:?}"
        );
        assert!(
            types
                .iter()
                .all(|t| t.starts_with("user.created") || t == "sync.run.finished"),
            "{provider:?}: {types:?}"
        );
        let (status, run, _) = call(
            &c.app,
            Some(&c.jwt),
            Method::GET,
            &format!("/api/v1/runs/{}", summary["run_id"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(run["mode"], "import", "{run}");

        // The preview now knows them.
        let (_, preview) = c
            .post("/connections/corp/preview", json!({"limit": 100}))
            .await;
        let existing: BTreeSet<String> = preview["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["exists"] == true)
            .map(|u| u["source_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(existing, BTreeSet::from([a.id.clone(), b.id.clone()]));

        let seq = c.app.last_seq().await;
        let (status, again) = c
            .post("/connections/corp/import", json!({"users": [a.id, b.id]}))
            .await;
        assert_eq!(status, 200, "{provider:?}: {again}");
        assert_eq!(again["unchanged"], 2, "{provider:?}: {again}");
        assert_eq!(again["imported"], 0, "{provider:?}: {again}");
        assert_eq!(again["updated"], 0, "{provider:?}: {again}");
        assert!(
            !c.app
                .event_types_after(seq)
                .await
                .iter()
                .any(|t| t.starts_with("user.")),
            "{provider:?}"
        );
        assert_eq!(c.app.app_users().await.len(), 2, "{provider:?}");
    }
}

#[tokio::test]
async fn an_import_names_its_users_or_all_and_a_user_the_provider_lacks_is_skipped() {
    let c = Connected::new(Provider::Okta, all_active(4)).await;
    for body in [
        json!({}),
        json!({"users": []}),
        json!({"users": ["x"], "all": true}),
    ] {
        let (status, problem) = c.post("/connections/corp/import", body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
    }
    let known = c.shared.directory().users[1].id.clone();
    let (status, summary) = c
        .post(
            "/connections/corp/import",
            json!({"users": [known, "00u-nobody"]}),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["imported"], 1, "{summary}");
    assert_eq!(summary["skipped"], 1, "{summary}");
    let (status, summary) = c
        .post("/connections/corp/import", json!({"all": true}))
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["imported"], 3, "{summary}");
    assert_eq!(summary["unchanged"], 1, "{summary}");
}

#[tokio::test]
async fn an_import_of_named_users_reads_just_them_and_never_lists_the_directory() {
    use std::sync::atomic::Ordering::SeqCst;
    for provider in PROVIDERS {
        // More users than any provider's page: a listing would take pages.
        let c = Connected::new(provider, all_active(450)).await;
        let (a, b) = {
            let dir = c.shared.directory();
            (dir.users[17].clone(), dir.users[401].clone())
        };
        let listed = c.shared.users_listed.load(SeqCst);
        let seq = c.app.last_seq().await;
        // One by id, one by email, one the provider does not have.
        let (status, summary) = c
            .post(
                "/connections/corp/import",
                json!({"users": [a.id, b.email, "nobody@example.invalid"]}),
            )
            .await;
        assert_eq!(status, 200, "{provider:?}: {summary}");
        assert_eq!(summary["imported"], 2, "{provider:?}: {summary}");
        assert_eq!(summary["skipped"], 1, "{provider:?}: {summary}");
        for field in ["updated", "unchanged", "errors"] {
            assert_eq!(summary[field], 0, "{provider:?} {field}: {summary}");
        }
        assert_eq!(
            summary["problems"],
            json!([{
                "kind": "not_found",
                "reason": "no such user in the directory (or outside the connection's scope)",
                "source_id": "nobody@example.invalid",
            }]),
            "{provider:?}: the unknown name, and only it, is reported"
        );
        assert_eq!(
            c.shared.users_listed.load(SeqCst),
            listed,
            "{provider:?}: the users were read, not listed"
        );
        assert_eq!(
            c.shared.user_reads(),
            vec![
                a.id.clone(),
                b.email.clone(),
                "nobody@example.invalid".into()
            ],
            "{provider:?}"
        );
        let emails: BTreeSet<String> = c
            .app
            .app_users()
            .await
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            emails,
            BTreeSet::from([a.email.to_lowercase(), b.email.to_lowercase()]),
            "{provider:?}"
        );
        let types = c.app.event_types_after(seq).await;
        assert_eq!(
            types.iter().filter(|t| *t == "user.created").count(),
            2,
            "{provider:?}: {types:?}"
        );
        assert!(
            types
                .iter()
                .all(|t| t.starts_with("user.created") || t == "sync.run.finished"),
            "{provider:?}: {types:?}"
        );

        // Naming a user twice (by id and by email) takes them once.
        let (status, again) = c
            .post(
                "/connections/corp/import",
                json!({"users": [a.id, a.email]}),
            )
            .await;
        assert_eq!(status, 200, "{provider:?}: {again}");
        assert_eq!(again["unchanged"], 1, "{provider:?}: {again}");
        assert_eq!(
            again["skipped"], 1,
            "{provider:?}: as a listing counts it: {again}"
        );
        assert_eq!(again["problems"], json!([]), "{provider:?}: {again}");
        assert_eq!(c.shared.users_listed.load(SeqCst), listed, "{provider:?}");

        // `all` lists.
        let (status, all) = c
            .post("/connections/corp/import", json!({"all": true}))
            .await;
        assert_eq!(status, 200, "{provider:?}: {all}");
        assert_eq!(all["imported"], 448, "{provider:?}: {all}");
        assert!(
            c.shared.users_listed.load(SeqCst) > listed,
            "{provider:?}: an import of all lists"
        );
    }
}

#[tokio::test]
async fn a_group_scoped_import_lists_its_group_and_a_named_user_outside_it_is_not_found() {
    use std::sync::atomic::Ordering::SeqCst;
    for provider in PROVIDERS {
        let mut directory = all_active(40);
        directory.groups[0].members = vec![3, 9, 27];
        let group = directory.groups[0].clone();
        let inside = directory.users[group.members[0]].id.clone();
        let outside = directory
            .users
            .iter()
            .enumerate()
            .find(|(i, _)| !group.members.contains(i))
            .map(|(_, u)| u.id.clone())
            .unwrap();
        let c = Connected::scoped(provider, directory, json!({"group": group.id})).await;
        let listed = c.shared.users_listed.load(SeqCst);
        let (status, summary) = c
            .post(
                "/connections/corp/import",
                json!({"users": [inside, outside]}),
            )
            .await;
        assert_eq!(status, 200, "{provider:?}: {summary}");
        assert_eq!(summary["imported"], 1, "{provider:?}: {summary}");
        assert_eq!(summary["skipped"], 1, "{provider:?}: {summary}");
        assert_eq!(
            summary["problems"][0]["source_id"],
            json!(outside.to_lowercase()),
            "{provider:?}: {summary}"
        );
        assert!(
            c.shared.users_listed.load(SeqCst) > listed,
            "{provider:?}: the provider applies the group scope, so it is listed"
        );
        assert!(c.shared.user_reads().is_empty(), "{provider:?}");
    }
}

#[tokio::test]
async fn a_provider_that_refuses_is_a_problem_with_its_reason_for_every_preview_and_import() {
    let c = Connected::new(Provider::Entra, all_active(4)).await;
    let (status, body, _) = call(
        &c.app,
        Some(&c.jwt),
        Method::PATCH,
        "/api/v1/connections/corp",
        Some(json!({"secret": "not-the-secret"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rules = json!([{"source": "jobTitle", "target": "custom.job"}]);
    for (path, body) in [
        ("/connections/corp/preview", json!({})),
        ("/connections/corp/import", json!({"all": true})),
        (
            "/directories/corp/policy/preview",
            json!({"attribute_mapping": rules}),
        ),
    ] {
        let (status, problem) = c.post(path, body).await;
        assert_eq!(status, 424, "{path}: {problem}");
        assert_eq!(problem["code"], "provider_error", "{path}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("AADSTS7000215"),
            "{path}: the provider's own reason: {problem}"
        );
    }
    assert!(c.app.app_users().await.is_empty());
}
