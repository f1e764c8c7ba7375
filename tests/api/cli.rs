//! The operator's commands as a user types them: the `dirsync` binary against
//! this run's database, while the server serves SCIM from the same database.

use dirsync::config::ServerSettings;
use dirsync::crypto::SealingKey;
use reqwest::Method;
use rstest::rstest;
use serde_json::{Value, json};

use crate::helpers::{TestApp, json, spawn_app, spawn_app_with};

/// Run `dirsync --database-url URL ARGS…` with these variables set too.
fn run(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--database-url")
        .arg(db_url)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run dirsync")
}

/// Run `dirsync --database-url URL ARGS…`; returns stdout, asserting success.
fn dirsync(db_url: &str, args: &[&str]) -> String {
    let out = run(db_url, args, &[]);
    assert!(
        out.status.success(),
        "dirsync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Run a command that must fail; returns what it said on stderr.
fn dirsync_fails(db_url: &str, args: &[&str]) -> String {
    let out = run(db_url, args, &[]);
    assert!(
        !out.status.success(),
        "dirsync {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8")
}

/// Create the pull directory TENANT/NAME with an Entra connection that
/// never runs (creating one contacts no provider).
fn create_pull_directory(db_url: &str, tenant: &str, name: &str) {
    let key = SealingKey::generate().expose().to_owned();
    let out = run(
        db_url,
        &[
            "connection",
            "create",
            "--tenant",
            tenant,
            "--name",
            name,
            "--provider",
            "entra",
            "--set",
            "tenant_id=contoso.example",
            "--set",
            "client_id=app",
            "--secret-env",
            "DIRSYNC_TEST_ENTRA_SECRET",
            "--no-schedule",
        ],
        &[
            ("DIRSYNC_SECRET_KEY", &key),
            ("DIRSYNC_TEST_ENTRA_SECRET", "not-a-real-secret"),
        ],
    );
    assert!(
        out.status.success(),
        "connection create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// The two ways an operator names a directory.
#[derive(Debug, Clone, Copy)]
enum Reference {
    Id,
    TenantSlashName,
}

impl Reference {
    fn of(self, app: &TestApp) -> String {
        match self {
            Reference::Id => app.directory_id.clone(),
            Reference::TenantSlashName => format!("{}/main", app.tenant),
        }
    }
}

#[rstest]
#[case::by_id(Reference::Id)]
#[case::by_tenant_slash_name(Reference::TenantSlashName)]
#[tokio::test]
async fn token_and_policy_commands_find_a_directory_by_its_id_or_tenant_slash_name(
    #[case] reference: Reference,
) {
    // The CLI is another process: the server sees its revocation within
    // the token cache's TTL (tests/api/tokens.rs), at the next request
    // with the cache off.
    let app = spawn_app_with(ServerSettings {
        token_cache_ttl: std::time::Duration::ZERO,
        ..ServerSettings::for_tests()
    })
    .await;
    let db = app.db_url.clone();
    let dir = reference.of(&app);

    let created = dirsync_json(
        &db,
        &["token", "create", "--directory", &dir, "--label", "okta"],
    );
    assert_eq!(created["directory_id"], app.directory_id.as_str());
    let secret = created["token"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let res = app
        .request_as(secret, Method::GET, "/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let listed = dirsync_json(&db, &["token", "list", "--directory", &dir]);
    let labels: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["label"])
        .collect();
    assert_eq!(labels, [&Value::Null, &json!("okta")]);

    let revoked = dirsync_json(&db, &["token", "revoke", "--directory", &dir, id]);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let res = app
        .request_as(secret, Method::GET, "/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let policy = dirsync_json(
        &db,
        &[
            "directory",
            "policy",
            "--directory",
            &dir,
            "--default-role",
            "viewer",
        ],
    );
    assert_eq!(policy["default_role"], "viewer");
    let shown = dirsync_json(&db, &["directory", "policy", "--directory", &dir]);
    assert_eq!(shown["default_role"], "viewer");
}

#[tokio::test]
async fn a_directory_that_is_not_there_is_named_in_the_answer() {
    let app = spawn_app().await;
    let tenant = &app.tenant;
    for (reference, answer) in [
        (
            format!("{tenant}/nope"),
            format!("directory \"nope\" in tenant \"{tenant}\" not found"),
        ),
        (
            "nope/main".to_owned(),
            "directory \"nope/main\" not found".to_owned(),
        ),
        ("main".to_owned(), "directory \"main\" not found".to_owned()),
    ] {
        let stderr = dirsync_fails(&app.db_url, &["token", "list", "--directory", &reference]);
        assert!(stderr.contains(&answer), "{reference}: {stderr}");
    }
}

#[tokio::test]
async fn a_command_aimed_at_the_wrong_kind_of_directory_says_which_kind_it_is() {
    let app = spawn_app().await;
    let tenant = &app.tenant;
    create_pull_directory(&app.db_url, tenant, "corp");
    let (pull, scim) = (format!("{tenant}/corp"), format!("{tenant}/main"));
    let for_scim_only = format!(
        "directory {pull} is an entra pull directory; SCIM tokens are for SCIM directories"
    );
    let for_pull_only = format!(
        "directory {scim} is a SCIM directory; connections and runs are for pull directories"
    );
    for (args, answer) in [
        (
            vec!["token", "create", "--directory", &pull],
            &for_scim_only,
        ),
        (vec!["token", "list", "--directory", &pull], &for_scim_only),
        (
            vec!["token", "revoke", "--directory", &pull, "some-id"],
            &for_scim_only,
        ),
        (vec!["sync", &scim], &for_pull_only),
        (vec!["runs", &scim], &for_pull_only),
        (vec!["connection", "show", &scim], &for_pull_only),
        (vec!["connection", "test", &scim], &for_pull_only),
        (vec!["connection", "delete", &scim], &for_pull_only),
    ] {
        let stderr = dirsync_fails(&app.db_url, &args);
        assert!(stderr.contains(answer.as_str()), "{args:?}: {stderr}");
    }
    // A policy is for both kinds.
    let policy = dirsync_json(&app.db_url, &["directory", "policy", "--directory", &pull]);
    assert_eq!(policy["on_missing"], "deactivate");
}

#[tokio::test]
async fn tenant_list_and_directory_list_find_what_a_newcomer_created() {
    let app = spawn_app().await;
    let db = app.db_url.clone();
    let tenant = app.tenant.clone();
    create_pull_directory(&db, &tenant, "corp");

    let tenants = dirsync_json(&db, &["tenant", "list"]);
    assert_eq!(tenants, json!([{"id": tenants[0]["id"], "name": tenant}]));
    let text = dirsync(&db, &["tenant", "list"]);
    assert_eq!(
        text,
        format!("{}  {tenant}\n", tenants[0]["id"].as_str().unwrap())
    );

    let directories = dirsync_json(&db, &["directory", "list", "--tenant", &tenant]);
    let summary: Vec<(&str, &str, &str)> = directories
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap(),
                d["kind"].as_str().unwrap(),
                d["vendor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("corp", "entra", "entra"), ("main", "scim", "generic")]
    );
    assert_eq!(directories[1]["id"], app.directory_id.as_str());
    let text = dirsync(&db, &["directory", "list", "--tenant", &tenant]);
    assert!(
        text.contains(&format!("{tenant}/corp  pull from entra"))
            && text.contains(&format!(
                "{}  {tenant}/main  SCIM (generic)",
                app.directory_id
            )),
        "{text}"
    );

    let shown = dirsync(&db, &["connection", "show", &format!("{tenant}/corp")]);
    assert!(
        shown.starts_with(&format!("directory {tenant}/corp (entra): ")),
        "{shown}"
    );

    let stderr = dirsync_fails(&db, &["directory", "list", "--tenant", "nope"]);
    assert!(stderr.contains("tenant \"nope\" not found"), "{stderr}");
}

#[tokio::test]
async fn events_says_when_more_remain_and_the_command_it_prints_reads_them() {
    let app = spawn_app().await;
    let db = app.db_url.clone();
    for name in ["a@example.com", "b@example.com", "c@example.com"] {
        app.create_user(name).await;
    }

    let text = dirsync(&db, &["events", "--tenant", &app.tenant, "--limit", "2"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("1  ") && lines[1].starts_with("2  "),
        "{text}"
    );
    let next = format!("dirsync events --tenant {} --after 2 --limit 2", app.tenant);
    assert_eq!(lines[2], format!("… more events after seq 2: {next}"));

    // The printed command, as an operator would paste it.
    let args: Vec<&str> = next.split(' ').skip(1).collect();
    let rest = dirsync(&db, &args);
    assert!(
        rest.starts_with("3  ") && rest.lines().count() == 1,
        "{rest}"
    );

    // --json stays an array; a script pages until it is empty.
    let page = dirsync_json(&db, &["events", "--tenant", &app.tenant, "--limit", "2"]);
    assert_eq!(page.as_array().unwrap().len(), 2);
    let last = dirsync_json(&db, &["events", "--tenant", &app.tenant, "--after", "3"]);
    assert_eq!(last, json!([]));
    let none = dirsync(&db, &["events", "--tenant", &app.tenant, "--after", "3"]);
    assert_eq!(none, "no events after seq 3\n");
}

#[tokio::test]
async fn serve_on_a_busy_port_fails_naming_the_flag_and_variable_that_choose_another() {
    let app = spawn_app().await;
    // The test's own server holds this address.
    let busy = app.origin.trim_start_matches("http://");
    let stderr = dirsync_fails(
        &app.db_url,
        &["serve", "--listen", busy, "--scheduler", "false"],
    );
    assert!(
        stderr.contains(&format!(
            "cannot listen on {busy} (choose another address with --listen or DIRSYNC_LISTEN)"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn names_that_hold_a_slash_still_resolve_and_a_reference_two_directories_match_is_refused() {
    let app = spawn_app().await;
    let db = app.db_url.clone();
    dirsync(&db, &["tenant", "create", "eu/acme"]);
    dirsync(
        &db,
        &["directory", "create", "--tenant", "eu/acme", "--name", "hr"],
    );
    let token = dirsync_json(&db, &["token", "create", "--directory", "eu/acme/hr"]);
    let listed = dirsync_json(&db, &["directory", "list", "--tenant", "eu/acme"]);
    assert_eq!(token["directory_id"], listed[0]["id"]);

    // Tenant "eu" with directory "acme/hr" makes "eu/acme/hr" name two.
    dirsync(&db, &["tenant", "create", "eu"]);
    dirsync(
        &db,
        &["directory", "create", "--tenant", "eu", "--name", "acme/hr"],
    );
    let stderr = dirsync_fails(&db, &["token", "list", "--directory", "eu/acme/hr"]);
    assert!(
        stderr.contains("\"eu/acme/hr\" names more than one directory: give the directory's id"),
        "{stderr}"
    );
}

#[tokio::test]
async fn events_prune_deletes_what_was_written_before_a_time_and_the_feed_goes_on() {
    let app = spawn_app().await;
    app.create_user("ada@example.com").await;
    app.create_user("bob@example.com").await;
    let db = &app.db_url;
    let tenant = app.tenant.as_str();
    let err = dirsync_fails(db, &["events", "prune", "--before", "yesterday"]);
    assert!(err.contains("RFC 3339"), "{err}");
    let kept: Value = serde_json::from_str(&dirsync(
        db,
        &[
            "events",
            "prune",
            "--before",
            "2000-01-01T00:00:00Z",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(kept["pruned"], 0);
    assert_eq!(app.last_seq().await, 2);
    let out = dirsync(
        db,
        &[
            "events",
            "prune",
            "--before",
            "2999-01-01T00:00:00Z",
            "--tenant",
            tenant,
        ],
    );
    assert!(out.starts_with("2 events written before"), "{out}");
    assert!(app.events_after(0).await.is_empty());
    // Sequence numbers go on from where they were.
    app.create_user("cy@example.com").await;
    let events = app.events_after(0).await;
    assert_eq!(events[0]["seq"], 3);
    let err = dirsync_fails(db, &["events"]);
    assert!(err.contains("--tenant"), "{err}");
}

/// Attribute mapping from the command line: a preview names what would
/// change and writes nothing; the rules set from a file apply to the users
/// already there (`dirsync users` shows their custom attributes); a bad
/// rule is refused with its reason, as the API refuses it.
#[tokio::test]
async fn attribute_mapping_is_previewed_set_and_checked_from_the_command_line() {
    let app = spawn_app().await;
    app.post_created(
        "/Users",
        &json!({
            "userName": "ada@example.com",
            "emails": [{"value": "ada@example.com", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "CC-1"},
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[{"source": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
             "target": "custom.cost_center"}]"#,
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let directory = app.directory_id.as_str();
    let preview = dirsync(
        &app.db_url,
        &[
            "directory",
            "mapping-preview",
            "--directory",
            directory,
            "--rules",
            rules,
        ],
    );
    assert!(
        preview.contains(r#"custom_attributes.cost_center: (none) -> "CC-1""#),
        "{preview}"
    );
    assert_eq!(app.app_users().await[0]["custom_attributes"], json!({}));

    dirsync(
        &app.db_url,
        &[
            "directory",
            "policy",
            "--directory",
            directory,
            "--attribute-mapping",
            rules,
        ],
    );
    let users = dirsync(&app.db_url, &["users", "--tenant", &app.tenant]);
    assert!(users.contains("{cost_center=CC-1}"), "{users}");

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"source": "title", "target": "custom.Cost-Center"}]"#,
    )
    .unwrap();
    let said = dirsync_fails(
        &app.db_url,
        &[
            "directory",
            "policy",
            "--directory",
            directory,
            "--attribute-mapping",
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        said.contains("rule 1") && said.contains("Cost-Center"),
        "{said}"
    );
}

#[tokio::test]
async fn an_operator_previews_a_pull_directory_and_imports_two_of_its_users_from_the_cli() {
    use dirsync::pull::fake::{Org, Shared};
    let app = spawn_app().await;
    let db = app.db_url.clone();
    let mut org = Org::generate(6, 1, 9);
    for u in &mut org.users {
        u.active = true;
    }
    let shared = Shared::new(org);
    let (_fake, mut definition) =
        crate::pull::start_fake(crate::pull::Provider::Okta, shared.clone());
    definition["schedule"] = json!({"enabled": false});
    let secret = SealingKey::generate().expose().to_owned();
    let key = SealingKey::parse(&secret).unwrap();
    dirsync::admin::connections::create(
        &app.store,
        Some(&key),
        &app.tenant,
        "corp",
        serde_json::from_value(definition).unwrap(),
    )
    .await
    .unwrap();
    let dir = format!("{}/corp", app.tenant);
    let env = [("DIRSYNC_SECRET_KEY", secret.as_str())];
    let ok = |args: &[&str]| {
        let out = run(&db, args, &env);
        assert!(
            out.status.success(),
            "dirsync {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let preview: Value =
        serde_json::from_str(&ok(&["connection", "preview", &dir, "--json"])).unwrap();
    assert_eq!(preview.as_array().unwrap().len(), 6, "{preview}");
    let (a, b) = {
        let users = &shared.directory().users;
        (users[1].clone(), users[4].clone())
    };
    let text = ok(&["connection", "preview", &dir, "--search", &a.email]);
    assert!(text.contains(&a.id) && !text.contains(&b.id), "{text}");

    let imported = ok(&[
        "connection",
        "import",
        &dir,
        "--user",
        &a.id,
        "--user",
        &b.id,
    ]);
    assert!(
        imported.starts_with("imported 2, updated 0, unchanged 0, skipped 0, errors 0"),
        "{imported}"
    );
    assert_eq!(app.app_users().await.len(), 2);
    let again = ok(&[
        "connection",
        "import",
        &dir,
        "--user",
        &a.id,
        "--user",
        &b.id,
    ]);
    assert!(
        again.starts_with("imported 0, updated 0, unchanged 2"),
        "{again}"
    );
    let text = ok(&["connection", "preview", &dir, "--search", &a.email]);
    assert!(text.contains("(already a user)"), "{text}");
    let refused = run(&db, &["connection", "import", &dir], &env);
    assert!(!refused.status.success(), "neither --user nor --all");

    // The mapping preview of a pull directory reads the provider.
    let files = tempfile::tempdir().unwrap();
    let rules = files.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"[{"source": "costCenter", "target": "custom.cost_center"}]"#,
    )
    .unwrap();
    let shown = ok(&[
        "directory",
        "mapping-preview",
        "--directory",
        &dir,
        "--rules",
        rules.to_str().unwrap(),
        "--limit",
        "2",
    ]);
    assert!(
        shown.contains(r#"custom_attributes.cost_center: (none) -> "CC-"#),
        "{shown}"
    );
    assert_eq!(app.app_users().await.len(), 2, "the preview wrote nothing");
}
