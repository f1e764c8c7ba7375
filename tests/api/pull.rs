//! Pulls end to end against each provider's fake on port 0: the connection
//! as an operator creates it (sealed credentials), the connector, the run
//! and the engine. Every scenario runs for every provider.

use std::sync::Arc;

use dirsync::admin::{self, PolicyChange};
use dirsync::crypto::SealingKey;
use dirsync::domain::limits::TEXT_BYTES;
use dirsync::pull::connector::{self, Definition};
use dirsync::pull::fake::{self, Org, Running, Shared};
use dirsync::pull::retry::Pacing;
use dirsync::pull::run::{self, Request};
use dirsync::reconcile::policy::OnMissing;
use dirsync::store::pull::Run;
use serde_json::{Value, json};

use crate::helpers::{Served, TestApp, spawn_app};
use crate::host_api::{get, token};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Provider {
    Google,
    Entra,
    Okta,
}

pub const PROVIDERS: [Provider; 3] = [Provider::Google, Provider::Entra, Provider::Okta];

/// A fake provider with a pull directory connected to it.
pub struct Pulled {
    pub app: TestApp,
    pub shared: Arc<Shared>,
    /// Kept for the test's life: the fake stops when dropped.
    _running: Running,
    pub key: SealingKey,
    pub directory_id: String,
}

pub fn start_fake(provider: Provider, shared: Arc<Shared>) -> (Running, Value) {
    match provider {
        Provider::Google => {
            let c = fake::google::Credentials::default();
            let running = fake::google::start(shared, c.clone()).unwrap();
            let def = fake::google::dev_connection(&running, &c);
            (running, def)
        }
        Provider::Entra => {
            let c = fake::graph::Credentials::default();
            let running = fake::graph::start(shared, c.clone()).unwrap();
            let def = fake::graph::dev_connection(&running, &c);
            (running, def)
        }
        Provider::Okta => {
            let c = fake::okta::Credentials::default();
            let running = fake::okta::start(shared, c.clone()).unwrap();
            let def = fake::okta::dev_connection(&running, &c);
            (running, def)
        }
    }
}

pub async fn pulled(provider: Provider, directory: Org, scope: Value) -> Pulled {
    let app = spawn_app().await;
    let shared = Shared::new(directory);
    let (running, mut definition) = start_fake(provider, shared.clone());
    definition["scope"] = scope;
    definition["schedule"] = json!({"enabled": false});
    // The server's own key: runs the dashboard starts open the credentials.
    let key = app
        .key
        .clone()
        .unwrap_or_else(|| SealingKey::parse(SealingKey::generate().expose()).unwrap());
    let definition: Definition = serde_json::from_value(definition).unwrap();
    let view =
        admin::connections::create(&app.store, Some(&key), &app.tenant, "pulled", definition)
            .await
            .unwrap();
    Pulled {
        directory_id: view.directory_id,
        app,
        shared,
        _running: running,
        key,
    }
}

impl Pulled {
    /// Run now; waits the provider asks for are recorded, not slept.
    pub async fn sync_with(&self, request: Request) -> (Run, Vec<std::time::Duration>) {
        self.sync_observed(request, &mut |_| {}).await
    }

    /// Run now, calling `progress` after every page.
    pub async fn sync_observed(
        &self,
        request: Request,
        progress: &mut (dyn FnMut(&run::Progress) + Send),
    ) -> (Run, Vec<std::time::Duration>) {
        let (pacing, waits) = Pacing::recording(4);
        let key = self.key.clone();
        let run = run::run_connection(
            &self.app.store,
            &self.directory_id,
            &request,
            "test",
            move |c| connector::for_connection(Some(&key), c, pacing),
            progress,
        )
        .await
        .unwrap();
        let waits = waits.lock().unwrap().clone();
        (run, waits)
    }

    pub async fn sync(&self) -> Run {
        self.sync_with(Request::manual()).await.0
    }

    pub async fn policy(&self, change: PolicyChange) {
        admin::update_policy(&self.app.store, &self.directory_id, change)
            .await
            .unwrap();
    }

    pub fn user(&self, n: usize) -> fake::Person {
        self.shared.directory().users[n].clone()
    }

    pub async fn app_user(&self, n: usize) -> Value {
        let email = self.user(n).email;
        self.app.app_user(&email).await.unwrap_or(Value::Null)
    }
}

pub fn count(run: &Run, path: &str) -> u64 {
    run.counts
        .pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} in {}", run.counts))
}

fn active_in(dir: &Org) -> usize {
    dir.users.iter().filter(|u| u.active).count()
}

#[tokio::test]
async fn a_first_sync_imports_everyone_and_their_groups_and_a_second_changes_nothing() {
    for provider in PROVIDERS {
        let directory = Org::generate(260, 3, 11);
        let inactive = directory.users.len() - active_in(&directory);
        let p = pulled(provider, directory, json!({})).await;
        let first = p.sync().await;
        assert_eq!(first.status, "succeeded", "{provider:?}: {}", first.errors);
        assert_eq!(count(&first, "/users/created"), 260, "{provider:?}");
        assert_eq!(count(&first, "/groups/created"), 3, "{provider:?}");
        assert_eq!(count(&first, "/groups/members_added"), 260, "{provider:?}");
        let users = p.app.app_users().await;
        assert_eq!(users.len(), 260);
        assert_eq!(
            users
                .iter()
                .filter(|u| u["status"] == "DEACTIVATED" && u["deactivated_by"] == "directory")
                .count(),
            inactive,
            "{provider:?}: inactive accounts arrive deactivated by the directory"
        );
        let user = p.app_user(0).await;
        assert_eq!(
            user["department"],
            p.user(0).department.as_str(),
            "{provider:?}"
        );
        assert_eq!(
            user["given_name"],
            p.user(0).given_name.as_str(),
            "{provider:?}"
        );
        let seq = p.app.last_seq().await;

        let second = p.sync().await;
        assert_eq!(second.status, "succeeded", "{provider:?}");
        assert_eq!(count(&second, "/users/unchanged"), 260, "{provider:?}");
        assert_eq!(count(&second, "/groups/unchanged"), 3, "{provider:?}");
        assert_eq!(
            p.app.last_seq().await,
            seq,
            "{provider:?}: a no-op re-sync emits no event"
        );
    }
}

#[tokio::test]
async fn changed_fields_a_suspension_and_an_email_change_reach_the_same_app_user() {
    for provider in PROVIDERS {
        let mut directory = Org::generate(20, 1, 5);
        for u in &mut directory.users {
            u.active = true;
        }
        let p = pulled(provider, directory, json!({})).await;
        p.sync().await;
        let before = p.app_user(2).await;
        let (id1, id2, id3) = (p.user(1).id, p.user(2).id, p.user(3).id);
        {
            let mut d = p.shared.directory_mut();
            d.update_user(&id1, |u| u.title = "Director".into());
            d.update_user(&id2, |u| u.email = "renamed.two@example.com".into());
            d.update_user(&id3, |u| u.active = false);
        }
        let run = p.sync().await;
        assert_eq!(
            count(&run, "/users/updated"),
            2,
            "{provider:?}: {}",
            run.counts
        );
        assert_eq!(count(&run, "/users/deactivated"), 1, "{provider:?}");
        assert_eq!(p.app_user(1).await["title"], "Director", "{provider:?}");
        let renamed = p.app.app_user("renamed.two@example.com").await.unwrap();
        assert_eq!(
            renamed["id"], before["id"],
            "{provider:?}: the same app user, not a new one"
        );
        assert_eq!(p.app.app_users().await.len(), 20, "{provider:?}");
        let suspended = p.app_user(3).await;
        assert_eq!(
            (
                suspended["status"].as_str(),
                suspended["deactivated_by"].as_str()
            ),
            (Some("DEACTIVATED"), Some("directory")),
            "{provider:?}"
        );

        p.shared
            .directory_mut()
            .update_user(&id3, |u| u.active = true);
        let back = p.sync().await;
        assert_eq!(count(&back, "/users/reactivated"), 1, "{provider:?}");
        assert_eq!(p.app_user(3).await["status"], "PENDING", "{provider:?}");
    }
}

#[tokio::test]
async fn a_removed_user_is_deactivated_or_kept_as_on_missing_says() {
    for provider in PROVIDERS {
        for (policy, expected) in [
            (OnMissing::Deactivate, "DEACTIVATED"),
            (OnMissing::Ignore, "PENDING"),
        ] {
            let mut directory = Org::generate(12, 1, 9);
            for u in &mut directory.users {
                u.active = true;
            }
            let p = pulled(provider, directory, json!({})).await;
            p.policy(PolicyChange {
                on_missing: Some(policy),
                ..PolicyChange::default()
            })
            .await;
            p.sync().await;
            let gone = p.user(4).id;
            p.shared.directory_mut().delete_user(&gone);
            let run = p.sync().await;
            assert_eq!(run.status, "succeeded");
            assert_eq!(count(&run, "/users/missing"), 1, "{provider:?} {policy:?}");
            assert_eq!(
                p.app_user(4).await["status"],
                expected,
                "{provider:?} {policy:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_group_scope_imports_its_members_and_a_user_who_leaves_it_is_missing() {
    for provider in PROVIDERS {
        let mut directory = Org::generate(30, 2, 21);
        for u in &mut directory.users {
            u.active = true;
        }
        let group = directory.groups[0].clone();
        let p = pulled(provider, directory, json!({"group": group.id})).await;
        p.policy(PolicyChange {
            on_missing: Some(OnMissing::Deactivate),
            ..PolicyChange::default()
        })
        .await;
        let first = p.sync().await;
        assert_eq!(first.status, "succeeded", "{provider:?}: {}", first.errors);
        assert_eq!(
            count(&first, "/users/created") as usize,
            group.members.len(),
            "{provider:?}"
        );
        let leaving = p.user(group.members[0]).id;
        let joining = p
            .shared
            .directory()
            .users
            .iter()
            .position(|u| {
                !group.members.contains(
                    &p.shared
                        .directory()
                        .users
                        .iter()
                        .position(|x| x.id == u.id)
                        .unwrap(),
                )
            })
            .unwrap();
        let joining_id = p.user(joining).id;
        {
            let mut d = p.shared.directory_mut();
            d.set_member(&group.id, &leaving, false);
            d.set_member(&group.id, &joining_id, true);
        }
        let second = p.sync().await;
        assert_eq!(
            count(&second, "/users/created"),
            1,
            "{provider:?}: the user who joined the scope"
        );
        assert_eq!(
            count(&second, "/users/missing"),
            1,
            "{provider:?}: the user who left it"
        );
        assert_eq!(
            p.app_user(group.members[0]).await["status"],
            "DEACTIVATED",
            "{provider:?}"
        );
        assert_eq!(
            p.app_user(joining).await["status"],
            "PENDING",
            "{provider:?}"
        );
    }
}

#[tokio::test]
async fn throttling_mid_listing_is_waited_out_and_the_run_succeeds() {
    for provider in PROVIDERS {
        let p = pulled(provider, Org::generate(700, 1, 3), json!({})).await;
        p.shared
            .faults
            .retry_after_ms
            .store(1500, std::sync::atomic::Ordering::SeqCst);
        // After the first page, the provider throttles the next two requests.
        let faults = p.shared.clone();
        let mut armed = false;
        let (run, waits) = p
            .sync_observed(Request::manual(), &mut |progress| {
                if progress.pages == 1 && !armed {
                    armed = true;
                    faults.faults.throttle(2);
                }
            })
            .await;
        assert_eq!(run.status, "succeeded", "{provider:?}: {}", run.errors);
        assert_eq!(count(&run, "/users/created"), 700, "{provider:?}");
        assert_eq!(
            waits.len(),
            2,
            "{provider:?}: two waits, one per throttled answer: {waits:?}"
        );
        if provider == Provider::Entra {
            assert!(
                waits.iter().all(|w| w.as_millis() == 1500),
                "Graph's Retry-After is honoured: {waits:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_5xx_storm_mid_listing_ends_partial_and_deactivates_no_one() {
    for provider in PROVIDERS {
        let mut directory = Org::generate(700, 1, 3);
        for u in &mut directory.users {
            u.active = true;
        }
        let p = pulled(provider, directory, json!({})).await;
        p.policy(PolicyChange {
            on_missing: Some(OnMissing::Deactivate),
            ..PolicyChange::default()
        })
        .await;
        p.sync().await;
        let suspended = p.user(0).id;
        p.shared
            .directory_mut()
            .update_user(&suspended, |u| u.active = false);
        // One listing page is served, then every request fails.
        p.shared.faults.cut_after(1);
        let (run, _) = p.sync_with(Request::manual()).await;
        assert_eq!(run.status, "partial", "{provider:?}: {}", run.errors);
        assert_eq!(run.errors[0]["kind"], "users", "{provider:?}");
        assert_eq!(count(&run, "/users/deactivated"), 0, "{provider:?}");
        assert_eq!(count(&run, "/users/missing"), 0, "{provider:?}");
        assert!(
            p.app
                .app_users()
                .await
                .iter()
                .all(|u| u["status"] == "PENDING"),
            "{provider:?}: no one deactivated"
        );

        p.shared.faults.cut_after(0);
        let (failed, _) = p.sync_with(Request::manual()).await;
        assert_eq!(failed.status, "failed", "{provider:?}: nothing was read");
        p.shared.faults.clear();
        let healed = p.sync().await;
        assert_eq!(
            count(&healed, "/users/deactivated"),
            1,
            "{provider:?}: once the listing completes"
        );
    }
}

#[tokio::test]
async fn the_guard_stops_a_mass_removal_until_an_operator_approves_it() {
    for provider in PROVIDERS {
        let mut directory = Org::generate(40, 1, 13);
        for u in &mut directory.users {
            u.active = true;
        }
        let p = pulled(provider, directory, json!({})).await;
        p.policy(PolicyChange {
            on_missing: Some(OnMissing::Deactivate),
            max_deactivation_percent: Some(Some(10.0)),
            ..PolicyChange::default()
        })
        .await;
        p.sync().await;
        let ids: Vec<String> = (0..10).map(|n| p.user(n).id).collect();
        for id in &ids {
            p.shared.directory_mut().delete_user(id);
        }
        let stopped = p.sync().await;
        assert_eq!(stopped.status, "needs_approval", "{provider:?}");
        assert!(
            p.app
                .app_users()
                .await
                .iter()
                .all(|u| u["status"] == "PENDING")
        );
        let key = p.key.clone();
        let approved =
            admin::connections::approve(&p.app.store, Some(&key), &stopped.id, "test", &mut |_| {})
                .await
                .unwrap();
        assert_eq!(approved["status"], "succeeded", "{provider:?}: {approved}");
        assert_eq!(approved["trigger"], "approval");
        assert_eq!(approved["counts"]["users"]["deactivated"], 10);
        let again =
            admin::connections::approve(&p.app.store, Some(&key), &stopped.id, "test", &mut |_| {})
                .await;
        assert!(again.unwrap_err().to_string().contains("already approved"));
    }
}

#[tokio::test]
async fn a_dry_run_reports_the_plan_and_writes_nothing() {
    for provider in PROVIDERS {
        let p = pulled(provider, Org::generate(50, 2, 17), json!({})).await;
        let (run, _) = p
            .sync_with(Request {
                dry_run: true,
                ..Request::manual()
            })
            .await;
        assert_eq!(
            (run.status.as_str(), run.mode.as_str()),
            ("succeeded", "dry_run"),
            "{provider:?}"
        );
        assert_eq!(count(&run, "/users/created"), 50);
        assert_eq!(count(&run, "/groups/created"), 2);
        let plan = run.counts["plan"].as_array().unwrap();
        assert_eq!(plan.len(), 50, "{provider:?}: the changes it would make");
        assert!(plan.iter().all(|c| c["change"] == "create"));
        assert!(p.app.app_users().await.is_empty());
        assert!(p.app.app_groups().await.is_empty());
        assert_eq!(p.app.last_seq().await, 0);
    }
}

// Multi-threaded: a thread waits for the `dirsync runs` process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_title_past_its_cap_is_dropped_the_run_succeeds_and_its_record_says_so_wherever_it_shows()
{
    for provider in PROVIDERS {
        let mut directory = Org::generate(20, 1, 29);
        directory.users[0].title = "T".repeat(TEXT_BYTES + 1);
        let p = pulled(provider, directory, json!({})).await;
        let run = p.sync().await;
        assert_eq!(run.status, "succeeded", "{provider:?}: {}", run.errors);
        assert_eq!(count(&run, "/users/created"), 20, "{provider:?}");
        assert_eq!(
            count(&run, "/values_dropped"),
            1,
            "{provider:?}: {}",
            run.counts
        );
        let user = p.app_user(0).await;
        assert_eq!(user["title"], Value::Null, "{provider:?}: {user}");
        assert_eq!(
            user["department"],
            p.user(0).department.as_str(),
            "{provider:?}: the rest of the user is synced"
        );

        let events = p.app.events_after(0).await;
        let finished: Vec<_> = events
            .iter()
            .filter(|e| e["type"] == "sync.run.finished")
            .collect();
        assert_eq!(finished.len(), 1, "{provider:?}");
        assert_eq!(finished[0]["data"]["run"]["status"], "succeeded");
        assert_eq!(finished[0]["data"]["run"]["counts"]["values_dropped"], 1);
        let (status, shown) = get(
            &p.app,
            &token(&p.app.tenant, "read"),
            &format!("/api/v1/runs/{}", run.id),
        )
        .await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(
            shown["counts"]["values_dropped"], 1,
            "{provider:?}: {shown}"
        );

        let id = p.user(0).id;
        p.shared
            .directory_mut()
            .update_user(&id, |u| u.title = "Director".into());
        let clean = p.sync().await;
        assert_eq!(clean.status, "succeeded", "{provider:?}");
        assert_eq!(count(&clean, "/values_dropped"), 0, "{provider:?}");
        assert_eq!(p.app_user(0).await["title"], "Director", "{provider:?}");

        let key = SealingKey::generate().expose().to_owned();
        let (ok, listed, err) = dirsync(&p.app.db_url, &key, &["runs", &p.directory_id]);
        assert!(ok, "{err}");
        let said = "1 provider value longer than dirsync keeps dropped";
        assert_eq!(
            listed.matches(said).count(),
            1,
            "{provider:?}: the first run says it, the clean one does not: {listed}"
        );
    }
}

#[tokio::test]
async fn an_incremental_graph_run_reads_only_the_delta_and_an_expired_delta_falls_back_to_full() {
    let mut directory = Org::generate(300, 2, 19);
    for u in &mut directory.users {
        u.active = true;
    }
    let p = pulled(Provider::Entra, directory, json!({})).await;
    p.policy(PolicyChange {
        on_missing: Some(OnMissing::Deactivate),
        ..PolicyChange::default()
    })
    .await;
    p.sync().await;
    let (changed, gone) = (p.user(7).id, p.user(8).id);
    p.shared
        .directory_mut()
        .update_user(&changed, |u| u.title = "Principal".into());
    p.shared.directory_mut().delete_user(&gone);
    let incremental = Request {
        incremental: true,
        ..Request::manual()
    };
    let (run, _) = p.sync_with(incremental.clone()).await;
    assert_eq!(
        (run.status.as_str(), run.mode.as_str()),
        ("succeeded", "incremental")
    );
    assert_eq!(
        count(&run, "/users/seen"),
        1,
        "only the delta: {}",
        run.counts
    );
    assert_eq!(count(&run, "/users/updated"), 1);
    assert_eq!(count(&run, "/users/deactivated"), 1, "the deleted user");
    assert_eq!(p.app_user(8).await["status"], "DEACTIVATED");

    fake::graph::expire_delta_tokens(&p.shared);
    let (full, _) = p.sync_with(incremental).await;
    assert_eq!(
        (full.status.as_str(), full.mode.as_str()),
        ("succeeded", "full")
    );
    assert_eq!(count(&full, "/users/seen"), 299);
}

#[tokio::test]
async fn a_bad_secret_fails_the_run_with_the_providers_reason_and_changes_nothing() {
    for provider in PROVIDERS {
        let app = spawn_app().await;
        let shared = Shared::new(Org::generate(5, 1, 3));
        let (_running, mut definition) = start_fake(provider, shared);
        definition["secret"] = match provider {
            // A well-formed key file whose key the fake does not know.
            Provider::Google => {
                let mut key: Value =
                    serde_json::from_str(definition["secret"].as_str().unwrap()).unwrap();
                key["private_key"] =
                    include_str!("../../src/pull/fake/google_other_key.pem").into();
                key.to_string().into()
            }
            Provider::Entra | Provider::Okta => "not-the-secret".into(),
        };
        let key = SealingKey::parse(SealingKey::generate().expose()).unwrap();
        admin::connections::create(
            &app.store,
            Some(&key),
            &app.tenant,
            "bad",
            serde_json::from_value(definition).unwrap(),
        )
        .await
        .unwrap();
        let directory = format!("{}/bad", app.tenant);
        let err = admin::connections::test(&app.store, Some(&key), &directory)
            .await
            .unwrap_err()
            .to_string();
        let expected = match provider {
            Provider::Google => "Invalid JWT Signature",
            Provider::Entra => "AADSTS7000215",
            Provider::Okta => "E0000011",
        };
        assert!(err.contains(expected), "{provider:?}: {err}");
        let run = admin::connections::sync(
            &app.store,
            Some(&key),
            &directory,
            &Request::manual(),
            "test",
            &mut |_| {},
        )
        .await
        .unwrap();
        assert_eq!(run["status"], "failed", "{provider:?}");
        assert!(
            run["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{provider:?}: {run}"
        );
        assert!(app.app_users().await.is_empty());
    }
}

/// `dirsync ARGS…` against this run's database with the sealing key and
/// every log line on; (success, stdout, stderr).
fn dirsync(db_url: &str, key: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--database-url")
        .arg(db_url)
        .args(args)
        .env("DIRSYNC_SECRET_KEY", key)
        .env("RUST_LOG", "trace")
        .output()
        .expect("run dirsync");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// Multi-threaded: the fake answers the `dirsync` process from this test's
// runtime while a thread waits for that process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_connects_tests_syncs_and_reads_runs_and_no_secret_is_ever_shown_or_logged() {
    for provider in PROVIDERS {
        let app = spawn_app().await;
        let shared = Shared::new(Org::generate(40, 2, 23));
        let (_running, definition) = start_fake(provider, shared.clone());
        let secret = definition["secret"].as_str().unwrap().to_owned();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), definition.to_string()).unwrap();
        let key = SealingKey::generate().expose().to_owned();
        let directory = format!("{}/corp", app.tenant);
        let path = file.path().to_str().unwrap();
        let mut transcript = String::new();
        let mut run = |args: &[&str]| {
            let (ok, out, err) = dirsync(&app.db_url, &key, args);
            transcript.push_str(&out);
            transcript.push_str(&err);
            assert!(ok, "{provider:?} dirsync {args:?}: {err}");
            out
        };
        let created: Value = serde_json::from_str(&run(&[
            "connection",
            "create",
            "--tenant",
            &app.tenant,
            "--name",
            "corp",
            "--file",
            path,
            "--no-schedule",
            "--json",
        ]))
        .unwrap();
        assert!(
            created["credentials"]
                .as_str()
                .unwrap()
                .starts_with("sealed with key "),
            "{created}"
        );
        let shown: Value =
            serde_json::from_str(&run(&["connection", "show", &directory, "--json"])).unwrap();
        assert_eq!(shown["directory_id"], created["directory_id"]);
        let tested = run(&["connection", "test", &directory]);
        assert!(tested.starts_with("ok: "), "{tested}");
        let synced: Value = serde_json::from_str(&run(&["sync", &directory, "--json"])).unwrap();
        assert_eq!(synced["status"], "succeeded", "{provider:?}: {synced}");
        assert_eq!(synced["counts"]["users"]["created"], 40);
        let text = run(&["sync", &directory]);
        assert!(
            text.contains("succeeded") && text.contains("40 unchanged"),
            "{text}"
        );
        let runs: Value = serde_json::from_str(&run(&["runs", &directory, "--json"])).unwrap();
        assert_eq!(runs.as_array().unwrap().len(), 2);

        // The server's request logs: a scrape with the metrics token, and
        // SCIM requests with the directory's token (once where a careless
        // client puts it, in the query string).
        let metrics_token = format!("metrics-{}", uuid::Uuid::new_v4().simple());
        let served = Served::start(
            &app.db_url,
            &[
                ("DIRSYNC_SECRET_KEY", key.as_str()),
                ("DIRSYNC_METRICS_TOKEN", metrics_token.as_str()),
            ],
        );
        let scraped = app
            .client
            .get(format!("{}/metrics", served.origin))
            .bearer_auth(&metrics_token)
            .send()
            .await
            .unwrap();
        assert_eq!(scraped.status(), 200);
        let request_id = format!("logged-{}", uuid::Uuid::new_v4().simple());
        let listed = app
            .client
            .get(format!("{}/scim/v2/Users", served.origin))
            .bearer_auth(&app.token)
            .header("x-request-id", &request_id)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 200);
        let in_query = app
            .client
            .get(format!(
                "{}/scim/v2/Users?access_token={}",
                served.origin, app.token
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(in_query.status(), 401);
        let log = served.stop();
        assert!(
            log.lines()
                .any(|l| l.contains("request answered") && l.contains(&request_id)),
            "a request's log line carries its id"
        );
        transcript.push_str(&log);

        // What must never show: the credentials (or, for a key file, any
        // line of its private key), the sealing key, the access tokens, the
        // directory's SCIM token and the metrics token.
        let mut never: Vec<String> = vec![
            secret.clone(),
            key.clone(),
            app.token.clone(),
            metrics_token,
        ];
        if let Ok(file) = serde_json::from_str::<Value>(&secret) {
            never.extend(
                file["private_key"]
                    .as_str()
                    .unwrap()
                    .lines()
                    .filter(|l| l.len() > 20)
                    .map(str::to_owned),
            );
        }
        never.extend(shared.issued_tokens());
        if provider != Provider::Okta {
            // (Okta's SSWS token is the secret itself: no access token.)
            assert!(
                shared.issued_tokens().len() >= 2,
                "{provider:?}: the runs did authenticate"
            );
        }
        for needle in &never {
            assert!(
                !transcript.contains(needle.as_str()),
                "{provider:?}: a secret appeared in the CLI's output or the logs"
            );
        }
        assert!(
            transcript.contains("TRACE") || transcript.contains("DEBUG"),
            "the logs were on"
        );
        let stored = app
            .store
            .connection_of(created["directory_id"].as_str().unwrap())
            .await
            .unwrap();
        for needle in &never {
            assert!(
                !stored.secret_sealed.contains(needle.as_str())
                    && !stored.settings.to_string().contains(needle.as_str())
            );
        }
    }
}

#[tokio::test]
async fn credentials_are_refused_without_a_server_key_and_rotation_reseals_them_under_a_new_one() {
    let app = spawn_app().await;
    let shared = Shared::new(Org::generate(5, 1, 29));
    let (_running, definition) = start_fake(Provider::Entra, shared);
    let refused = admin::connections::create(
        &app.store,
        None,
        &app.tenant,
        "corp",
        serde_json::from_value(definition.clone()).unwrap(),
    )
    .await;
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("DIRSYNC_SECRET_KEY")
    );
    assert!(app.store.connection_of(&app.directory_id).await.is_err());

    let old = SealingKey::parse(SealingKey::generate().expose()).unwrap();
    let new = SealingKey::parse(SealingKey::generate().expose()).unwrap();
    admin::connections::create(
        &app.store,
        Some(&old),
        &app.tenant,
        "corp",
        serde_json::from_value(definition).unwrap(),
    )
    .await
    .unwrap();
    let directory = format!("{}/corp", app.tenant);
    assert_eq!(
        admin::connections::rotate_key(&app.store, Some(&old), &new)
            .await
            .unwrap(),
        1
    );
    let err = admin::connections::test(&app.store, Some(&old), &directory)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rotate"),
        "the old key no longer opens it: {err}"
    );
    admin::connections::test(&app.store, Some(&new), &directory)
        .await
        .unwrap();
    assert_eq!(
        admin::connections::rotate_key(&app.store, Some(&new), &new)
            .await
            .unwrap(),
        0,
        "already under the new key"
    );
    let shown = admin::connections::show(&app.store, &directory)
        .await
        .unwrap();
    assert_eq!(shown.credentials, format!("sealed with key {}", new.id()));
    let token = admin::create_token(&app.store, &shown.directory_id, None).await;
    assert_eq!(
        token.unwrap_err().to_string(),
        format!(
            "directory {directory} is an entra pull directory; SCIM tokens are for SCIM directories"
        )
    );
}

#[tokio::test]
async fn the_scheduler_runs_what_is_due_once_then_incrementally_until_a_full_run_is_due_again() {
    let p = pulled(Provider::Entra, Org::generate(30, 1, 31), json!({})).await;
    let store = &p.app.store;
    let connection = store.connection_of(&p.directory_id).await.unwrap();
    // Every run is due now; a full run every third.
    let mut row = connection.clone();
    row.schedule = json!({"enabled": true, "interval_secs": 3600, "full_every": 3});
    dirsync::store::pull::save_connection(store.connection(), row)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let (pacing, _) = Pacing::recording(2);
    let mut modes = Vec::new();
    for _ in 0..4 {
        store.set_next_run(&connection.id, Some(now)).await.unwrap();
        let ran = dirsync::pull::scheduler::tick(store, Some(&p.key), "replica-a", &pacing)
            .await
            .unwrap();
        assert_eq!(ran.len(), 1);
        assert_eq!(ran[0].trigger, "schedule");
        modes.push(ran[0].mode.clone());
        let idle = dirsync::pull::scheduler::tick(store, Some(&p.key), "replica-a", &pacing)
            .await
            .unwrap();
        assert!(idle.is_empty(), "not due again until its next run");
        let next = store
            .connection_of(&p.directory_id)
            .await
            .unwrap()
            .next_run_at
            .unwrap();
        assert!(
            next > now + 3_000_000 && next < now + 4_000_000,
            "an hour on, within the jitter"
        );
    }
    assert_eq!(modes, ["full", "incremental", "incremental", "full"]);
    assert_eq!(p.app.app_users().await.len(), 30);
}

/// A child process that is killed when dropped, passed or panicking.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's walk-through: `dirsync dev fake-directory` in the
/// background, then a connection from the file it writes, and a sync.
#[tokio::test]
async fn a_newcomer_pulls_from_the_fake_directory_the_dev_command_runs() {
    use std::io::BufRead;
    for provider in ["google", "entra", "okta"] {
        let app = spawn_app().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fake-connection.json");
        let fake = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .args([
                "dev",
                "fake-directory",
                provider,
                "--users",
                "25",
                "--groups",
                "2",
                "--connection-file",
            ])
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut fake = Killed(fake);
        // Its first line says where it listens; the file is written before it.
        let mut first = String::new();
        // (The reader stays open: the fake goes on printing.)
        let mut stdout = std::io::BufReader::new(fake.0.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        assert!(
            first.starts_with(&format!("fake {provider} directory with 25 users")),
            "{first}"
        );
        let key = SealingKey::generate().expose().to_owned();
        let path = file.to_str().unwrap();
        let (ok, _, err) = dirsync(
            &app.db_url,
            &key,
            &[
                "connection",
                "create",
                "--tenant",
                &app.tenant,
                "--name",
                "corp",
                "--file",
                path,
            ],
        );
        assert!(ok, "{provider}: {err}");
        let (ok, out, err) = dirsync(
            &app.db_url,
            &key,
            &["sync", &format!("{}/corp", app.tenant), "--json"],
        );
        drop(fake);
        assert!(ok, "{provider}: {err}");
        let run: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(run["status"], "succeeded", "{provider}: {run}");
        assert_eq!(run["counts"]["users"]["created"], 25, "{provider}");
        assert_eq!(run["counts"]["groups"]["created"], 2, "{provider}");
        // Users the directory already had disabled are created deactivated,
        // and the run's summary says how many.
        let inactive = app
            .app_users()
            .await
            .iter()
            .filter(|u| u["status"] == "DEACTIVATED")
            .count();
        assert!(inactive > 0, "{provider}: the fake disables about 1 in 20");
        assert_eq!(
            run["counts"]["users"]["created_deactivated"], inactive,
            "{provider}"
        );
        let (ok, out, err) = dirsync(
            &app.db_url,
            &key,
            &["runs", &format!("{}/corp", app.tenant)],
        );
        assert!(ok, "{provider}: {err}");
        assert!(
            out.contains(&format!("25 created ({inactive} already deactivated)")),
            "{provider}: {out}"
        );
    }
}

#[tokio::test]
async fn an_incremental_okta_run_reads_only_users_updated_since_the_last_run() {
    let mut directory = Org::generate(300, 2, 37);
    for u in &mut directory.users {
        u.active = true;
    }
    let p = pulled(Provider::Okta, directory, json!({})).await;
    let first = p.sync().await;
    assert_eq!(count(&first, "/users/created"), 300);
    let (changed, suspended) = (p.user(7).id, p.user(8).id);
    p.shared
        .directory_mut()
        .update_user(&changed, |u| u.title = "Principal".into());
    p.shared
        .directory_mut()
        .update_user(&suspended, |u| u.active = false);
    let incremental = Request {
        incremental: true,
        ..Request::manual()
    };
    let (run, _) = p.sync_with(incremental.clone()).await;
    assert_eq!(
        (run.status.as_str(), run.mode.as_str()),
        ("succeeded", "incremental")
    );
    // lastUpdated is read with a minute of overlap: users the first run saw
    // change within it come back unchanged, never missed.
    assert_eq!(count(&run, "/users/updated"), 1, "{}", run.counts);
    assert_eq!(count(&run, "/users/deactivated"), 1);
    assert_eq!(count(&run, "/users/created"), 0);
    assert_eq!(p.app_user(7).await["title"], "Principal");
    assert_eq!(p.app_user(8).await["status"], "DEACTIVATED");
    assert_eq!(p.app.app_users().await.len(), 300);
}
