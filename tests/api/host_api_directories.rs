//! The host application's API for its directories: SCIM directories with
//! the base URL, tokens and policy their IdP needs; pull directories with
//! their connection, runs started in the background against a fake
//! provider, and the approval of a run the guard stopped; a directory's
//! removal. Secrets never come back after the answer that created them.

use std::sync::Arc;

use dirsync::config::ServerSettings;
use dirsync::pull::fake::{self, Running, Shared};
use dirsync::pull::run::LEASE_TTL_MS;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{SCIM_JSON, TestApp, patch_op, spawn_app, spawn_app_keyed};
use crate::host_api::{call, get, token};
use crate::pull::{Provider, start_fake};

fn admin(app: &TestApp) -> String {
    token(&app.tenant, "read write admin")
}

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, body, _) = call(app, Some(token), method, path, body).await;
    (status, body)
}

/// A pull directory created through the API, connected to a fake Okta
/// holding `users` people in two groups; its id.
async fn connected(app: &TestApp, users: usize) -> (Running, Arc<Shared>, String) {
    let shared = Shared::new(fake::Org::generate(users, 2, 11));
    let (running, mut body) = start_fake(Provider::Okta, shared.clone());
    body["name"] = json!("Okta");
    body["schedule"] = json!({"enabled": false});
    let (status, created) = send(
        app,
        &admin(app),
        Method::POST,
        "/api/v1/connections",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["directory_id"].as_str().unwrap().to_owned();
    (running, shared, id)
}

/// The first run to finish after event `after`, as its `sync.run.finished`
/// event carries it, and that event's sequence number. A long-poll of the
/// feed: the request returns when the run commits.
async fn finished_run(app: &TestApp, after: i64) -> (Value, i64) {
    let (status, page) = get(
        app,
        &token(&app.tenant, "read"),
        &format!("/api/v1/events?type=sync.run.finished&after={after}&wait=30"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let event = &page["data"][0];
    assert!(event.is_object(), "no run finished: {page}");
    (event["data"]["run"].clone(), event["seq"].as_i64().unwrap())
}

/// Start a sync through the API; the run's id.
async fn start_sync(app: &TestApp, directory_id: &str, body: Option<Value>) -> String {
    let (status, started, headers) = call(
        app,
        Some(&token(&app.tenant, "write")),
        Method::POST,
        &format!("/api/v1/connections/{directory_id}/sync"),
        body,
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    assert_eq!(
        headers["location"],
        format!("/api/v1/runs/{run_id}").as_str()
    );
    run_id
}

#[tokio::test]
async fn a_scim_directory_is_created_listed_and_read_with_the_base_url_its_idp_is_given() {
    let app = spawn_app().await;
    let t = admin(&app);
    let (status, created) = send(
        &app,
        &t,
        Method::POST,
        "/api/v1/directories",
        Some(json!({"name": "Entra", "vendor": "Entra"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (
            created["kind"].as_str(),
            created["vendor"].as_str(),
            created["scim_base_url"].as_str()
        ),
        (Some("scim"), Some("entra"), Some(app.base.as_str()))
    );
    let id = created["id"].as_str().unwrap();
    let read = token(&app.tenant, "read");
    let (status, same) = get(&app, &read, &format!("/api/v1/directories/{id}")).await;
    assert_eq!((status, &same), (200, &created));
    // Its name in the tenant names it too; in another tenant, nothing.
    let (status, same) = get(&app, &read, "/api/v1/directories/Entra").await;
    assert_eq!((status, &same), (200, &created));
    dirsync::admin::create_tenant(&app.store, "other")
        .await
        .unwrap();
    let (status, _) = get(&app, &token("other", "read"), "/api/v1/directories/Entra").await;
    assert_eq!(status, 404);

    // The tenant's two directories, a page of one at a time.
    let (_, first) = get(&app, &read, "/api/v1/directories?limit=1").await;
    assert_eq!(first["data"][0]["id"], app.directory_id.as_str());
    let next = first["next_cursor"].as_str().unwrap();
    let (_, second) = get(
        &app,
        &read,
        &format!("/api/v1/directories?limit=1&after={next}"),
    )
    .await;
    assert_eq!(second["data"][0]["id"], id);
    assert!(second["next_cursor"].is_null(), "{second}");

    for body in [
        json!({"name": ""}),
        json!({"name": "x", "vendor": "myspace"}),
        json!({"name": "x", "colour": "red"}),
        json!({"vendor": "okta"}),
    ] {
        let (status, problem) = send(
            &app,
            &t,
            Method::POST,
            "/api/v1/directories",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {problem}");
    }
    let (status, _) = send(
        &app,
        &t,
        Method::POST,
        "/api/v1/directories",
        Some(json!({"name": "Entra"})),
    )
    .await;
    assert_eq!(status, 409, "a directory name is unique in its tenant");
    let (status, _) = get(&app, &read, "/api/v1/directories/nothing").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_scim_tokens_secret_shows_once_and_revoking_it_shuts_its_idp_out() {
    let app = spawn_app().await;
    let t = admin(&app);
    let path = format!("/api/v1/directories/{}/tokens", app.directory_id);
    let (status, created, headers) = call(
        &app,
        Some(&t),
        Method::POST,
        &path,
        Some(json!({"label": "Entra provisioning"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["cache-control"], "no-store");
    let secret = created["token"].as_str().unwrap().to_owned();
    let token_id = created["id"].as_str().unwrap().to_owned();
    let res = app
        .request_as(&secret, Method::GET, "/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the IdP's requests with it are let in");

    // Listed without the secret.
    let (status, listed) = get(&app, &token(&app.tenant, "read"), &path).await;
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(&secret), "{listed}");
    let shown = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == token_id.as_str())
        .unwrap();
    assert_eq!(shown["label"], "Entra provisioning");
    assert!(secret.starts_with(shown["prefix"].as_str().unwrap()));
    assert!(shown["revoked_at"].is_null());
    assert!(shown.get("token").is_none(), "{shown}");

    // No body: a token without a label.
    let (status, unlabelled) = send(&app, &t, Method::POST, &path, None).await;
    assert_eq!((status, &unlabelled["token"].is_string()), (201, &true));

    for body in [
        json!({"label": "x".repeat(201)}),
        json!({"label": "ok", "scope": "all"}),
    ] {
        let (status, _) = send(&app, &t, Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
    }

    let (status, revoked) = send(
        &app,
        &t,
        Method::DELETE,
        &format!("{path}/{token_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert!(revoked.get("token").is_none(), "{revoked}");
    let res = app
        .request_as(&secret, Method::GET, "/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a revoked token is refused");
    let (status, _) = send(&app, &t, Method::DELETE, &format!("{path}/nothing"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_policy_is_read_and_replaced_whole_and_checked_as_the_cli_checks_it() {
    let app = spawn_app().await;
    let t = admin(&app);
    let path = format!("/api/v1/directories/{}/policy", app.directory_id);
    let (status, initial) = get(&app, &token(&app.tenant, "read"), &path).await;
    assert_eq!(status, 200);
    assert_eq!(initial["default_role"], "member");
    assert_eq!(
        initial["deactivation_threshold"],
        json!({"max_count": null, "max_percent": 20.0})
    );

    let (status, replaced) = send(
        &app,
        &t,
        Method::PUT,
        &path,
        Some(json!({
            "default_role": "viewer",
            "new_user_status": "active",
            "on_delete": "delete",
            "on_missing": "ignore",
            "deactivation_threshold": {"max_count": 5, "max_percent": null},
            "allowed_domains": ["@Example.com"],
            "group_roles_enabled": true,
            "group_roles": [{"group": "Admins", "role": "admin"}],
            "require_group_membership": true,
        })),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        replaced["allowed_domains"],
        json!(["example.com"]),
        "cleaned as the CLI cleans it"
    );
    assert_eq!(replaced["deactivation_threshold"]["max_count"], 5);
    assert!(replaced["deactivation_threshold"]["max_percent"].is_null());
    let stored = dirsync::admin::policy(&app.store, &app.directory_id)
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(&stored).unwrap(), replaced);

    // What the body leaves out takes its default.
    let (status, partial) = send(
        &app,
        &t,
        Method::PUT,
        &path,
        Some(json!({"default_role": "guest", "deactivation_threshold": {"max_count": 3}})),
    )
    .await;
    assert_eq!(status, 200, "{partial}");
    assert_eq!(partial["new_user_status"], "pending");
    assert_eq!(partial["group_roles"], json!([]));
    assert_eq!(
        partial["deactivation_threshold"],
        json!({"max_count": 3, "max_percent": 20.0})
    );

    for body in [
        json!({"default_rol": "x"}),
        json!({"deactivation_threshold": {"max_percnt": 5}}),
        json!({"group_roles": [{"group": "A", "role": "admin", "weight": 1}]}),
        json!({"on_delete": "shred"}),
        json!({"deactivation_threshold": {"max_percent": 150}}),
        json!({"require_group_membership": true}),
        json!({"default_role": ""}),
        json!({"allowed_domains": ["not a domain"]}),
        json!({"group_roles": [{"group": " ", "role": "admin"}]}),
        json!({"group_roles": [{"group": "A", "role": "bad\u{7}role"}]}),
    ] {
        let (status, problem) = send(&app, &t, Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {problem}");
    }
    let (_, after) = get(&app, &t, &path).await;
    assert_eq!(after, partial, "a refused policy changes nothing");
    let (status, _) = send(
        &app,
        &token(&app.tenant, "read write"),
        Method::PUT,
        &path,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 403, "a policy is the admin's");
}

#[tokio::test]
async fn deleting_a_directory_takes_its_groups_with_their_events_and_leaves_its_users() {
    let app = spawn_app().await;
    let ada = app.create_user("ada@example.com").await;
    app.create_group("Team", &[&ada]).await;
    // A second directory of the tenant sends the same person; the profile
    // is the first directory's.
    let (second, second_token) = app.other_directory(false).await;
    let res = app
        .request_as(&second_token, Method::POST, "/Users")
        .header("content-type", SCIM_JSON)
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada@example.com",
                "name": {"givenName": "Other", "familyName": "Family"},
                "emails": [{"value": "ada@example.com", "primary": true}],
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let in_second = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = admin(&app);
    let (_, user) = get(&app, &t, "/api/v1/users/by-email/ada@example.com").await;
    assert_eq!(user["given_name"], "Given");
    let user_id = user["id"].as_str().unwrap().to_owned();

    let seq = app.last_seq().await;
    let path = format!("/api/v1/directories/{}", app.directory_id);
    let (status, removal) = send(&app, &t, Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{removal}");
    assert_eq!(removal, json!({"groups_deleted": 1, "users_unlinked": 1}));
    assert_eq!(
        app.event_types_after(seq).await,
        ["group.deleted", "directory.deleted"]
    );

    // The user stays as it was, linked from the second directory only.
    let (_, kept) = get(&app, &t, &format!("/api/v1/users/{user_id}")).await;
    assert_eq!(kept, user);
    let (_, links) = get(&app, &t, &format!("/api/v1/users/{user_id}/directories")).await;
    assert_eq!(links.as_array().unwrap().len(), 1, "{links}");
    assert_eq!(links[0]["directory_id"], second.as_str());
    let (_, groups) = get(&app, &t, "/api/v1/groups").await;
    assert_eq!(groups["data"], json!([]));
    assert_eq!(app.get("/Users").await.status(), 401, "its tokens went too");
    let (status, _) = get(&app, &t, &path).await;
    assert_eq!(status, 404);
    let (status, _) = send(&app, &t, Method::DELETE, &path, None).await;
    assert_eq!(status, 404);

    // The profile was released: the second directory's next word sets it.
    let res = app
        .request_as(&second_token, Method::PATCH, &format!("/Users/{in_second}"))
        .header("content-type", SCIM_JSON)
        .body(
            patch_op(json!([{"op": "replace", "path": "name.givenName", "value": "Grace"}]))
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, now) = get(&app, &t, &format!("/api/v1/users/{user_id}")).await;
    assert_eq!(now["given_name"], "Grace");
}

#[tokio::test]
async fn a_connection_is_created_read_changed_tested_and_deleted_and_never_shows_its_credentials() {
    let app = spawn_app().await;
    let t = admin(&app);
    let shared = Shared::new(fake::Org::generate(5, 1, 7));
    let (_fake, definition) = start_fake(Provider::Okta, shared);
    let secret = definition["secret"].as_str().unwrap().to_owned();
    let mut body = definition.clone();
    body["name"] = json!("Okta");
    body["schedule"] = json!({"enabled": false});

    for (field, value) in [
        ("secret", Value::Null),
        ("colour", json!("red")),
        ("provider", json!("myspace")),
        (
            "settings",
            json!({"org_url": "http://okta.example.com", "auth": "ssws"}),
        ),
        ("name", json!("")),
        ("schedule", json!({"jitter": 2})),
    ] {
        let mut bad = body.clone();
        bad[field] = value;
        let (status, problem) =
            send(&app, &t, Method::POST, "/api/v1/connections", Some(bad)).await;
        assert_eq!(status, 400, "{field}: {problem}");
        assert!(!problem.to_string().contains(&secret), "{problem}");
    }

    let (status, created) = send(
        &app,
        &t,
        Method::POST,
        "/api/v1/connections",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(!created.to_string().contains(&secret), "{created}");
    assert!(
        created["credentials"]
            .as_str()
            .unwrap()
            .starts_with("sealed with key "),
        "{created}"
    );
    let id = created["directory_id"].as_str().unwrap().to_owned();
    let (status, _) = send(&app, &t, Method::POST, "/api/v1/connections", Some(body)).await;
    assert_eq!(status, 409, "one directory of a name in a tenant");

    // Its directory pulls: no SCIM base URL, no SCIM tokens.
    let (_, directory) = get(&app, &t, &format!("/api/v1/directories/{id}")).await;
    assert_eq!(
        (
            directory["kind"].as_str(),
            directory["scim_base_url"].is_null()
        ),
        (Some("okta"), true)
    );
    let (status, _) = send(
        &app,
        &t,
        Method::POST,
        &format!("/api/v1/directories/{id}/tokens"),
        None,
    )
    .await;
    assert_eq!(
        status, 409,
        "a pull directory takes no SCIM token (wrong_kind)"
    );

    let path = format!("/api/v1/connections/{id}");
    let (status, read) = get(&app, &token(&app.tenant, "read"), &path).await;
    assert_eq!((status, &read), (200, &created));

    let write = token(&app.tenant, "read write");
    let test_path = format!("{path}/test");
    let run_test = || send(&app, &write, Method::POST, &test_path, None);
    let (status, passed) = run_test().await;
    assert_eq!(status, 200, "{passed}");
    assert_eq!(passed["ok"], true, "{passed}");
    assert!(passed["users_read"].as_u64().unwrap() > 0, "{passed}");

    let (status, changed) = send(
        &app,
        &t,
        Method::PATCH,
        &path,
        Some(json!({
            "schedule": {"enabled": true, "interval_secs": 600},
            "scope": {"department": "Sales"},
        })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["schedule"]["interval_secs"], 600);
    assert!(changed["next_run_at"].is_string(), "{changed}");
    assert_eq!(changed["scope"]["department"], "Sales");
    assert_eq!(changed["settings"], created["settings"]);

    // Credentials the provider refuses: the test answers why, in its words.
    let (status, _) = send(
        &app,
        &t,
        Method::PATCH,
        &path,
        Some(json!({"secret": "not-the-token"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, failed) = run_test().await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("Invalid token provided"),
        "{failed}"
    );
    let (_, _) = send(
        &app,
        &t,
        Method::PATCH,
        &path,
        Some(json!({"secret": secret})),
    )
    .await;
    assert_eq!(run_test().await.1["ok"], true);

    for change in [
        json!({"provider": "google"}),
        json!({"settings": {"org_url": "http://okta.example.com", "auth": "ssws"}}),
        json!({"schedule": {"interval_secs": 0}}),
        json!({"scope": {"team": "x"}}),
        json!({"secret": ""}),
    ] {
        let (status, problem) = send(&app, &t, Method::PATCH, &path, Some(change.clone())).await;
        assert_eq!(status, 400, "{change}: {problem}");
    }
    let (_, kept) = get(&app, &t, &path).await;
    assert!(!kept.to_string().contains(&secret), "{kept}");
    for field in ["settings", "scope", "schedule"] {
        assert_eq!(
            kept[field], changed[field],
            "{field}: a refused change changes nothing"
        );
    }

    let (status, deleted) = send(&app, &t, Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{deleted}");
    let (status, _) = get(&app, &t, &path).await;
    assert_eq!(status, 404);
    let (status, _) = get(&app, &t, &format!("/api/v1/directories/{id}")).await;
    assert_eq!(status, 200, "the directory stays");
    // A SCIM directory has no connection: the wrong kind of directory.
    let scim = format!("/api/v1/connections/{}", app.directory_id);
    assert_eq!(get(&app, &t, &scim).await.0, 409);
    let (status, _) = send(&app, &t, Method::POST, &format!("{scim}/test"), None).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn without_a_server_key_a_connection_cannot_be_created() {
    let app = spawn_app_keyed(ServerSettings::for_tests(), None).await;
    let (_fake, mut body) = start_fake(Provider::Okta, Shared::new(fake::Org::generate(1, 0, 1)));
    body["name"] = json!("Okta");
    let (status, problem) = send(
        &app,
        &admin(&app),
        Method::POST,
        "/api/v1/connections",
        Some(body),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("DIRSYNC_SECRET_KEY"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_sync_runs_in_the_background_and_its_runs_are_read_back_newest_first() {
    let app = spawn_app().await;
    let (_fake, shared, id) = connected(&app, 12).await;
    let read = token(&app.tenant, "read");
    let seq = app.last_seq().await;
    let first = start_sync(&app, &id, None).await;
    let (finished, seq) = finished_run(&app, seq).await;
    assert_eq!(finished["id"], first.as_str());
    let (status, run) = get(&app, &read, &format!("/api/v1/runs/{first}")).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        (
            run["status"].as_str(),
            run["mode"].as_str(),
            run["trigger"].as_str()
        ),
        (Some("succeeded"), Some("full"), Some("manual")),
        "{run}"
    );
    assert_eq!(run["counts"]["users"]["created"], 12, "{run}");
    let (_, users) = get(
        &app,
        &read,
        &format!("/api/v1/users?directory={id}&limit=100"),
    )
    .await;
    assert_eq!(users["data"].as_array().unwrap().len(), 12);

    // A selective run of one changed user, asked for with a body.
    let user = shared.directory().users[0].clone();
    shared
        .directory_mut()
        .update_user(&user.id, |u| u.title = "Director".into());
    // The first run's lease went back with its record: the next starts at
    // once.
    let selective = start_sync(&app, &id, Some(json!({"only": [user.email]}))).await;
    let (finished, _) = finished_run(&app, seq).await;
    assert_eq!(finished["id"], selective.as_str());
    assert_eq!(
        (
            finished["mode"].as_str(),
            finished["counts"]["users"]["updated"].as_u64()
        ),
        (Some("selective"), Some(1)),
        "{finished}"
    );

    // The history, newest first, a run a page.
    let runs = format!("/api/v1/connections/{id}/runs");
    let (_, newest) = get(&app, &read, &format!("{runs}?limit=1")).await;
    assert_eq!(newest["data"][0]["id"], selective.as_str());
    let after = newest["next_cursor"].as_str().unwrap();
    let (_, older) = get(&app, &read, &format!("{runs}?limit=1&after={after}")).await;
    assert_eq!(older["data"][0]["id"], first.as_str());
    assert!(older["next_cursor"].is_null(), "{older}");
    let before = older["prev_cursor"].as_str().unwrap();
    let (_, back) = get(&app, &read, &format!("{runs}?limit=1&before={before}")).await;
    assert_eq!(back["data"], newest["data"]);

    // The full run left a cursor for incremental runs: a new schedule keeps
    // it, a new scope starts over with a full run.
    let connection = format!("/api/v1/connections/{id}");
    assert_eq!(
        get(&app, &read, &connection).await.1["incremental_cursor"],
        true
    );
    let t = admin(&app);
    for (change, cursor) in [
        (
            json!({"schedule": {"enabled": false, "interval_secs": 900}}),
            true,
        ),
        (json!({"scope": {"department": "Sales"}}), false),
    ] {
        let (status, changed) =
            send(&app, &t, Method::PATCH, &connection, Some(change.clone())).await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(changed["incremental_cursor"], cursor, "{change}");
    }

    let write = token(&app.tenant, "write");
    let sync = format!("/api/v1/connections/{id}/sync");
    for body in [
        json!({"dry": true}),
        json!({"only": "everyone"}),
        json!({"only": vec!["a@example.com"; 1001]}),
    ] {
        let (status, problem) = send(&app, &write, Method::POST, &sync, Some(body.clone())).await;
        assert_eq!(status, 400, "{problem}");
    }
    let raw = app
        .client
        .post(format!("{}{sync}", app.origin))
        .bearer_auth(&write)
        .header("content-type", "text/plain")
        .body("full")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 415);
    let scim = format!("/api/v1/connections/{}/sync", app.directory_id);
    let (status, _) = send(&app, &write, Method::POST, &scim, None).await;
    assert_eq!(
        status, 409,
        "a SCIM directory has no connection to run (wrong_kind)"
    );
    let (status, _) = get(&app, &read, "/api/v1/runs/nothing").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn while_a_run_holds_the_lease_a_sync_a_change_and_a_removal_are_409() {
    let app = spawn_app().await;
    let (_fake, _shared, id) = connected(&app, 3).await;
    let connection = app.store.connection_of(&id).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        app.store
            .take_lease(&connection.id, "another-replica", now, LEASE_TTL_MS)
            .await
            .unwrap()
    );
    let t = admin(&app);
    let (status, busy) = send(
        &app,
        &t,
        Method::POST,
        &format!("/api/v1/connections/{id}/sync"),
        None,
    )
    .await;
    assert_eq!(
        (status, busy["code"].as_str()),
        (409, Some("run_in_progress")),
        "{busy}"
    );
    assert!(
        busy["detail"].as_str().unwrap().contains("another-replica"),
        "{busy}"
    );
    let path = format!("/api/v1/connections/{id}");
    let (status, shown) = get(&app, &t, &path).await;
    assert_eq!(
        (status, shown["running_on"].as_str()),
        (200, Some("another-replica"))
    );
    let (status, _) = send(
        &app,
        &t,
        Method::PATCH,
        &path,
        Some(json!({"schedule": {"enabled": false}})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = send(
        &app,
        &t,
        Method::DELETE,
        &format!("/api/v1/directories/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 409);
    let (status, busy) = send(&app, &t, Method::DELETE, &path, None).await;
    assert_eq!(
        (status, busy["code"].as_str()),
        (409, Some("run_in_progress")),
        "deleting the connection under a run: {busy}"
    );

    // Once the lease is free, the run goes ahead.
    app.store
        .release_lease(&connection.id, "another-replica")
        .await
        .unwrap();
    let seq = app.last_seq().await;
    let run_id = start_sync(&app, &id, None).await;
    assert_eq!(finished_run(&app, seq).await.0["id"], run_id.as_str());
}

#[tokio::test]
async fn a_run_the_guard_stopped_is_approved_through_the_api() {
    let app = spawn_app().await;
    let (_fake, shared, id) = connected(&app, 20).await;
    let t = admin(&app);
    let (status, _) = send(
        &app,
        &t,
        Method::PUT,
        &format!("/api/v1/directories/{id}/policy"),
        Some(json!({"deactivation_threshold": {"max_count": 2, "max_percent": null}})),
    )
    .await;
    assert_eq!(status, 200);
    let seq = app.last_seq().await;
    let first = start_sync(&app, &id, None).await;
    let (run, seq) = finished_run(&app, seq).await;
    assert_eq!(
        (run["id"].as_str(), run["status"].as_str()),
        (Some(first.as_str()), Some("succeeded"))
    );

    // Five active users leave the directory: more than the guard allows.
    let leaving: Vec<String> = shared
        .directory()
        .users
        .iter()
        .filter(|u| u.active)
        .take(5)
        .map(|u| u.id.clone())
        .collect();
    for user in &leaving {
        shared.directory_mut().delete_user(user);
    }
    let stopped = start_sync(&app, &id, None).await;
    let (run, seq) = finished_run(&app, seq).await;
    assert_eq!(run["id"], stopped.as_str());
    let (_, run) = get(&app, &t, &format!("/api/v1/runs/{stopped}")).await;
    assert_eq!(
        (run["status"].as_str(), run["deactivations"].as_i64()),
        (Some("needs_approval"), Some(5)),
        "{run}"
    );
    // Whom it would deactivate, and why: the five who left, two per page.
    let mut held = Vec::new();
    let mut path = format!("/api/v1/runs/{stopped}/deactivations?limit=2");
    loop {
        let (status, page) = get(&app, &t, &path).await;
        assert_eq!(status, 200, "{page}");
        for d in page["data"].as_array().unwrap() {
            assert_eq!(d["reason"], "missing", "{d}");
            assert_eq!(d["user"]["status"], "PENDING", "not deactivated yet: {d}");
            held.push(d["user"]["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                path = format!("/api/v1/runs/{stopped}/deactivations?limit=2&after={next}")
            }
            None => break,
        }
    }
    let mut leaving_emails: Vec<String> = leaving
        .iter()
        .map(|id| {
            let d = shared.directory();
            let u = d.users.iter().find(|u| &u.id == id).unwrap();
            u.email.to_lowercase()
        })
        .collect();
    held.sort();
    leaving_emails.sort();
    assert_eq!(held, leaving_emails);
    // The operator reads the same list from the command line, following
    // the hint its last line gives.
    let mut printed = Vec::new();
    let mut args = vec![
        "runs".to_owned(),
        "deactivations".to_owned(),
        stopped.clone(),
        "--limit".to_owned(),
        "3".to_owned(),
    ];
    loop {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .args(["--database-url", &app.db_url])
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut hint = None;
        for line in text.lines() {
            match line.strip_prefix("… more: dirsync ") {
                Some(rest) => hint = Some(rest.split(' ').map(str::to_owned).collect()),
                None => {
                    let fields: Vec<&str> = line.split("  ").collect();
                    assert_eq!(fields[2..], ["PENDING", "missing"], "{line}");
                    printed.push(fields[1].to_owned());
                }
            }
        }
        match hint {
            Some(next) => args = next,
            None => break,
        }
    }
    printed.sort();
    assert_eq!(printed, leaving_emails);

    let approve = format!("/api/v1/runs/{stopped}/approve");
    let (status, _) = send(
        &app,
        &token(&app.tenant, "read"),
        Method::POST,
        &approve,
        None,
    )
    .await;
    assert_eq!(status, 403, "approving needs write");
    let (status, started, _) = call(
        &app,
        Some(&token(&app.tenant, "write")),
        Method::POST,
        &approve,
        None,
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let approval = started["run_id"].as_str().unwrap();
    let (run, _) = finished_run(&app, seq).await;
    assert_eq!(
        (
            run["id"].as_str(),
            run["trigger"].as_str(),
            run["status"].as_str(),
            run["counts"]["users"]["deactivated"].as_u64()
        ),
        (Some(approval), Some("approval"), Some("succeeded"), Some(5)),
        "{run}"
    );
    let (_, run) = get(&app, &t, &format!("/api/v1/runs/{stopped}")).await;
    assert_eq!(run["approved_by_run_id"], approval, "{run}");

    // Only a stopped run is approved.
    let (status, problem) = send(
        &app,
        &t,
        Method::POST,
        &format!("/api/v1/runs/{first}/approve"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not needs_approval"),
        "{problem}"
    );
    let (status, _) = send(&app, &t, Method::POST, "/api/v1/runs/nothing/approve", None).await;
    assert_eq!(status, 404);
}

/// A body each operation accepts, so that only the token's scope decides.
fn valid_body(method: &Method, path: &str) -> Option<Value> {
    match (method.as_str(), path) {
        ("POST", "/api/v1/directories") => Some(json!({"name": "x"})),
        ("POST", "/api/v1/connections") => Some(json!({"name": "x", "provider": "okta"})),
        ("PUT" | "PATCH", _) => Some(json!({})),
        _ => None,
    }
}

#[tokio::test]
async fn each_operation_needs_its_scope() {
    let app = spawn_app().await;
    let dir = &app.directory_id;
    let cases = [
        (Method::GET, "/api/v1/directories".to_owned(), "read"),
        (Method::GET, format!("/api/v1/directories/{dir}"), "read"),
        (
            Method::GET,
            format!("/api/v1/directories/{dir}/policy"),
            "read",
        ),
        (
            Method::GET,
            format!("/api/v1/directories/{dir}/tokens"),
            "read",
        ),
        (Method::GET, format!("/api/v1/connections/{dir}"), "read"),
        (
            Method::GET,
            format!("/api/v1/connections/{dir}/runs"),
            "read",
        ),
        (Method::GET, "/api/v1/runs/x".to_owned(), "read"),
        (
            Method::POST,
            format!("/api/v1/connections/{dir}/test"),
            "write",
        ),
        (
            Method::POST,
            format!("/api/v1/connections/{dir}/sync"),
            "write",
        ),
        (
            Method::GET,
            "/api/v1/runs/x/deactivations".to_owned(),
            "read",
        ),
        (Method::POST, "/api/v1/runs/x/approve".to_owned(), "write"),
        (Method::POST, "/api/v1/directories".to_owned(), "admin"),
        (
            Method::DELETE,
            format!("/api/v1/directories/{dir}"),
            "admin",
        ),
        (
            Method::PUT,
            format!("/api/v1/directories/{dir}/policy"),
            "admin",
        ),
        (
            Method::POST,
            format!("/api/v1/directories/{dir}/tokens"),
            "admin",
        ),
        (
            Method::DELETE,
            format!("/api/v1/directories/{dir}/tokens/x"),
            "admin",
        ),
        (Method::POST, "/api/v1/connections".to_owned(), "admin"),
        (Method::PATCH, format!("/api/v1/connections/{dir}"), "admin"),
        (
            Method::DELETE,
            format!("/api/v1/connections/{dir}"),
            "admin",
        ),
    ];
    for (method, path, needed) in cases {
        // The scopes just short of the one needed.
        let short = match needed {
            "read" => "",
            "write" => "read",
            _ => "read write",
        };
        let body = valid_body(&method, &path);
        let (status, problem) = send(
            &app,
            &token(&app.tenant, short),
            method.clone(),
            &path,
            body,
        )
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (403, Some("insufficient_scope")),
            "{method} {path} with {short:?}"
        );
    }
}
