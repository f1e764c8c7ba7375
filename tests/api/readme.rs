//! The README's host API walk-through runs as written: its block, against a
//! server with the README's key, the tenant the walk-through before it made
//! and the pull section's directory with its fake provider, with `cargo run
//! -q --` standing for the built binary.

use dirsync::config::{ApiSettings, ServerSettings};
use dirsync::pull::fake::{self, Shared};
use dirsync::pull::run::Request;
use serde_json::json;

use crate::helpers::spawn_app_with;
use crate::pull::{Provider, start_fake};

/// The fenced block after `marker`, and the key the README exports.
pub(crate) fn block(readme: &str, marker: &str) -> String {
    let after = &readme[readme.find(marker).expect("marker")..];
    let start = after.find("```sh\n").expect("block") + "```sh\n".len();
    let end = after[start..].find("```").expect("block end");
    after[start..start + end].to_owned()
}

pub(crate) fn readme_secret(readme: &str) -> String {
    let line = readme
        .lines()
        .find(|l| l.starts_with("export DIRSYNC_API_JWT_SECRET="))
        .expect("the README exports the API key");
    line.trim_start_matches("export DIRSYNC_API_JWT_SECRET=")
        .to_owned()
}

#[tokio::test]
async fn the_readmes_host_api_walkthrough_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let secret = readme_secret(&readme);
    let app = spawn_app_with(ServerSettings {
        api: ApiSettings {
            jwt_secrets: vec![secret.clone()],
            ..ApiSettings::for_tests()
        },
        ..ServerSettings::for_tests()
    })
    .await;
    // What the walk-through before it left: tenant acme, Barbara Jensen.
    dirsync::admin::create_tenant(&app.store, "acme")
        .await
        .unwrap();
    let dir = dirsync::admin::create_directory(&app.store, "acme", "entra", "entra")
        .await
        .unwrap();
    let token = dirsync::admin::create_token(&app.store, &dir.id, None)
        .await
        .unwrap()
        .token;
    for (n, email) in [
        (0, "bjensen@example.com"),
        (1, "jsmith@example.com"),
        (2, "kdoe@example.com"),
    ] {
        let res = app
            .request_as(&token, reqwest::Method::POST, "/Users")
            .header("content-type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": email, "externalId": format!("e{n}"),
                    "emails": [{"value": email, "primary": true}]
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    // What the pull section left: globex/corp, synced once from a fake
    // Entra ID that still runs.
    let people = 40;
    let shared = Shared::new(fake::Org::generate(people, 3, 7));
    let (_fake, mut definition) = start_fake(Provider::Entra, shared);
    definition["schedule"] = json!({"enabled": false});
    dirsync::admin::create_tenant(&app.store, "globex")
        .await
        .unwrap();
    dirsync::admin::connections::create(
        &app.store,
        app.key.as_ref(),
        "globex",
        "corp",
        serde_json::from_value(definition).unwrap(),
    )
    .await
    .unwrap();
    let first = dirsync::admin::connections::sync(
        &app.store,
        app.key.as_ref(),
        "globex/corp",
        &Request::manual(),
        "readme",
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(first["status"], "succeeded", "{first}");

    let script = block(&readme, "<!-- host-api:")
        .replace("http://127.0.0.1:8080", &app.origin)
        .replace(
            "cargo run -q --",
            "\"$DIRSYNC_BIN\" --database-url \"$DIRSYNC_DB\"",
        );
    let started = std::time::Instant::now();
    // The script calls the server this test runs: off the runtime's threads.
    let (db_url, env_secret) = (app.db_url.clone(), secret.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("DIRSYNC_BIN", env!("CARGO_BIN_EXE_dirsync"))
            .env("DIRSYNC_DB", &db_url)
            .env("DIRSYNC_API_JWT_SECRET", &env_secret)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each curl printed one JSON document: the pages, the sign-in, the wait.
    let answers: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(answers.len(), 5, "{stdout}");
    assert_eq!(answers[0]["data"].as_array().unwrap().len(), 2);
    assert_eq!(answers[1]["data"][0]["email"], "jsmith@example.com");
    assert_eq!(answers[2]["status"], "ACTIVE");
    assert_eq!(answers[3]["data"], json!([]));
    // The sync the block started, read back once it ended: nothing moved.
    let run = &answers[4];
    assert_eq!(
        (
            run["status"].as_str(),
            run["trigger"].as_str(),
            run["counts"]["users"]["seen"].as_u64(),
            run["counts"]["users"]["unchanged"].as_u64()
        ),
        (
            Some("succeeded"),
            Some("manual"),
            Some(people as u64),
            Some(people as u64)
        ),
        "{run}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "the long-poll waited"
    );
}
