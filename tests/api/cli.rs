//! The operator's commands as a user types them: the `dirsync` binary against
//! this run's database, while the server serves SCIM from the same database.

use serde_json::{Value, json};

use crate::helpers::{json, spawn_app};

/// Run `dirsync --database-url URL ARGS…`; returns stdout, asserting success.
fn dirsync(db_url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--database-url")
        .arg(db_url)
        .args(args)
        .output()
        .expect("run dirsync");
    assert!(
        out.status.success(),
        "dirsync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn dirsync_json(db_url: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&dirsync(db_url, &args)).expect("json output")
}

#[tokio::test]
async fn an_operator_sets_policy_acts_for_the_host_app_and_reads_events_from_the_cli() {
    let app = spawn_app().await;
    let db = app.db_url.clone();
    let dir = app.directory_id.clone();
    let tenant = app.tenant.clone();

    let shown = dirsync_json(&db, &["directory", "policy", "--directory", &dir]);
    assert_eq!(shown["default_role"], "member");
    assert_eq!(shown["new_user_status"], "pending");
    let policy = dirsync_json(
        &db,
        &[
            "directory",
            "policy",
            "--directory",
            &dir,
            "--default-role",
            "viewer",
            "--on-delete",
            "delete",
            "--max-deactivations",
            "5",
            "--max-deactivation-percent",
            "none",
            "--allowed-domains",
            "example.com,@Example.org",
            "--group-role",
            "Admins=admin",
            "--group-roles",
            "on",
        ],
    );
    assert_eq!(policy["default_role"], "viewer");
    assert_eq!(policy["on_delete"], "delete");
    assert_eq!(
        policy["deactivation_threshold"],
        json!({"max_count": 5, "max_percent": null})
    );
    assert_eq!(
        policy["allowed_domains"],
        json!(["example.com", "example.org"])
    );
    assert_eq!(
        policy["group_roles"],
        json!([{"group": "Admins", "role": "admin"}])
    );
    assert_eq!(policy["group_roles_enabled"], true);

    // The server applies the new policy from the next write.
    let res = app
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada@example.com",
                "emails": [{"value": "ada@example.com", "primary": true}]
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    json(res).await;
    let users = dirsync_json(&db, &["users", "--tenant", &tenant]);
    assert_eq!(users[0]["role"], "viewer");
    assert_eq!(users[0]["status"], "PENDING");

    let user = dirsync_json(
        &db,
        &["user", "signed-in", "--tenant", &tenant, "ADA@example.com"],
    );
    assert_eq!(user["status"], "ACTIVE");
    let user = dirsync_json(
        &db,
        &[
            "user",
            "role",
            "--tenant",
            &tenant,
            "ada@example.com",
            "owner",
        ],
    );
    assert_eq!(user["role"], "owner");
    let user = dirsync_json(
        &db,
        &["user", "deactivate", "--tenant", &tenant, "ada@example.com"],
    );
    assert_eq!(
        (user["status"].as_str(), user["deactivated_by"].as_str()),
        (Some("DEACTIVATED"), Some("admin"))
    );
    let user = dirsync_json(
        &db,
        &["user", "reactivate", "--tenant", &tenant, "ada@example.com"],
    );
    assert_eq!(user["status"], "ACTIVE");

    let events = dirsync_json(&db, &["events", "--tenant", &tenant, "--after", "0"]);
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "user.created",
            "user.updated",
            "user.updated",
            "user.deactivated",
            "user.reactivated"
        ]
    );
    let later = dirsync_json(
        &db,
        &[
            "events", "--tenant", &tenant, "--after", "3", "--limit", "1",
        ],
    );
    assert_eq!(later.as_array().unwrap().len(), 1);
    assert_eq!(later[0]["seq"], 4);
    let text = dirsync(&db, &["events", "--tenant", &tenant, "--after", "4"]);
    assert!(
        text.starts_with("5  ") && text.contains("user.reactivated"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_policy_values_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .arg("--database-url")
            .arg(&app.db_url)
            .args(["directory", "policy", "--directory", &app.directory_id])
            .args(args)
            .output()
            .unwrap()
    };
    for (args, reason) in [
        (
            &["--max-deactivation-percent", "150"][..],
            "between 0 and 100",
        ),
        (
            &["--allowed-domains", "not a domain"][..],
            "not an email domain",
        ),
        (
            &["--require-group-membership", "on"][..],
            "needs at least one mapped group",
        ),
        (&["--group-role", "no-equals-sign"][..], "GROUP=ROLE"),
        (&["--on-delete", "explode"][..], "invalid value"),
    ] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    let unchanged = dirsync_json(
        &app.db_url,
        &["directory", "policy", "--directory", &app.directory_id],
    );
    assert_eq!(unchanged["deactivation_threshold"]["max_percent"], 20.0);
}
